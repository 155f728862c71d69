# The web trading screen served by turbo-dex at / (transports/http/routes_screen.py, docs/screen.md): its charting
# library, TradingView's lightweight-charts, pinned in transports/http/screen (package.json + package-lock.json) and
# served by us under /screen/vendor (no CDN). The browser tests drive Debian's chromium with Playwright for Python.
SCREEN_DIR       := transports/http/screen
SCREEN_NPM_STAMP := build/.screen-npm-stamp
CHROMIUM_STAMP   := build/.chromium-stamp
SETUP_STEPS += $(SCREEN_NPM_STAMP) $(CHROMIUM_STAMP)

.PHONY: test-screen screen-timings

# npm ci of the pinned package into transports/http/screen/node_modules (git-ignored): no global install.
# Under CI=true a failed install fails the build; elsewhere it warns (the screen then has no charts and its tests fail).
$(SCREEN_NPM_STAMP): $(SCREEN_DIR)/package.json $(SCREEN_DIR)/package-lock.json
	@scripts/npm-ci.sh $(SCREEN_DIR) $@ "the screen's candle chart will not load"

# Debian's chromium for the browser tests (Playwright drives it by its path: no browser download).
# Under CI=true a failed install fails the build.
$(CHROMIUM_STAMP):
	@if command -v chromium >/dev/null; then \
		mkdir -p build && touch $@; \
	else \
		echo "installing chromium (apt-get)"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
		rc=0; \
		( $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium ) || rc=$$?; \
		if [ $$rc = 0 ] && command -v chromium >/dev/null; then \
			mkdir -p build && touch $@; \
		elif [ "$$CI" = "true" ]; then \
			echo "chromium install failed (exit $$rc)" >&2; exit 1; \
		else \
			echo "warning: chromium install failed (exit $$rc): the browser tests will fail" >&2; \
		fi; \
	fi

test-screen: setup ## Browser tests of the web screen (headless Debian chromium via Playwright) and the ccxt class
	@PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(PY) -m pytest -q tests/integration/screen tests/integration/ccxt

screen-timings: setup ## Page load time and update-to-page time under the demo's load; writes reports/screen-timings.json
	@PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(PY) -m traders.screen_timings --out reports/screen-timings.json $(ARGS)
