# Set-up and the two commands of the README: `make demo` and `make test`.
# Each target creates the virtual environment and installs what it needs.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test test-large demo clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

test-large: $(STAMP)
	$(BIN)/python -m pytest -m large

demo: $(STAMP)
	$(BIN)/python examples/train_mnist.py --epochs 3 --out runs/demo

clean:
	rm -rf $(VENV) runs .pytest_cache
