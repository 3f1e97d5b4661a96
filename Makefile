# One command for the tests: `make test`. It creates .venv if needed.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: test env bench clean-env

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

env: $(VENV)/.installed

test: env
	$(PY) -m pytest -q

bench: env
	$(PY) benchmarks/train_speed.py

clean-env:
	rm -rf $(VENV)
