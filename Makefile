# Quick start: `make demo` (set up + separate the bundled example), `make test` (set up + run the tests).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test complexity clean

$(BIN)/fastuss: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/fastuss

demo: setup
	$(BIN)/fastuss demo

complexity: setup
	$(BIN)/fastuss complexity

# pytest exits 5 when it collects no tests; that is a failure here, not a pass.
test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
