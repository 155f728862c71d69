# The hostile-input suite with what each case measured kept (tests/hostile, docs/hostile.md).
.PHONY: bench-hostile

bench-hostile: setup ## The hostile-input suite (tests/hostile, ~3 min; also part of make test), writing per wire the peak RSS growth and the other client's p99 to reports/hostile.json
	@HOSTILE_REPORT=reports/hostile.json $(PY) -m pytest -q -p no:cacheprovider tests/hostile $(ARGS)
