# FIX 4.4 transport (dex-fix): transports/fix. The interop test drives it with jspurefix, an independent
# FIX engine for Node, pinned in tests/fix/interop (package.json + package-lock.json).
FIX_INTEROP_DIR   := tests/fix/interop
FIX_INTEROP_STAMP := build/.fix-npm-stamp
SETUP_STEPS += $(FIX_INTEROP_STAMP)

.PHONY: fix-server test-fix

# npm ci of the pinned packages into tests/fix/interop/node_modules (git-ignored): no global install.
# Under CI=true a failed install fails the build; elsewhere it warns (the interop test then fails, never skips).
$(FIX_INTEROP_STAMP): $(FIX_INTEROP_DIR)/package.json $(FIX_INTEROP_DIR)/package-lock.json
	@scripts/npm-ci.sh $(FIX_INTEROP_DIR) $@ "the FIX interop test will fail"

fix-server: setup ## Start the FIX 4.4 acceptor (dex-fix) on 127.0.0.1:9878 (ARGS: --port --passwords FILE --state-dir ...)
	@$(PY) -m transports.fix.server $(ARGS)

test-fix: setup ## FIX tests only: session layer, order entry, market data, jspurefix interop
	@$(PY) -m pytest -q tests/fix
