# The two quick-start commands: `make demo` and `make test`. Each sets up .venv on first use and installs what it
# needs: the demo eges and its report extra (matplotlib), the tests every extra (torch and pyspark too, about
# 2.4 GB). Each target has its own stamp, so `make demo` then `make test` adds the test extras to the same .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Order-only on the interpreter: creating .venv does not make a stamp stale; editing pyproject.toml does.
$(BIN)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[report]'
	touch $@

$(BIN)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/.installed-demo  ## run the whole pipeline on the bundled sample data, then write its report
	$(BIN)/eges run --events data/events.parquet --items data/items.parquet --out out/sample
	$(BIN)/eges report --out out/sample

test: lint  ## lint and run the test suite (needs Chromium and Java; .ci/run installs them)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(BIN)/.installed-test
	$(BIN)/ruff check src tests benchmarks examples

bench: $(BIN)/.installed-test  ## the benchmarks (slow; run them alone on the machine)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf out .pytest_cache
