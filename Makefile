# Quick start: `make demo` (set up + separate the bundled example), `make test` (set up + lint + run the tests).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo lint test complexity graphs clean

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

# ruff (lint + format check, settings in pyproject.toml) and mypy over the package (it ships py.typed).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy fastuss_fx

# pytest exits 5 when it collects no tests; that is a failure here, not a pass.
test: setup lint
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

# The ONNX graphs shipped beside the trained weights (fastuss_fx/pretrained/onnx/), which let a base install
# run without torch: rebuild them after new weights or a model/export change (tests/test_shipped_graphs.py says when).
graphs: setup
	$(BIN)/python scripts/ship_graphs.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
