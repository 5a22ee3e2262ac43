# The two quick-start commands: `make demo` and `make test`. Each sets up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/.installed  ## run the whole pipeline on the bundled sample data, then write its report
	$(BIN)/eges run --events data/events.parquet --items data/items.parquet --out out/sample
	$(BIN)/eges report --out out/sample

test: $(BIN)/.installed  ## lint and run the test suite
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/python -m pytest -q

bench: $(BIN)/.installed  ## the benchmarks (slow; run them alone on the machine)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf out .pytest_cache
