# The two fresh-machine commands (README.md):  make demo   |   make test
VENV ?= .venv
PYTEST_ARGS ?= -q

.PHONY: setup setup-test demo test bench

setup:
	bash scripts/setup.sh

setup-test:
	bash scripts/setup.sh --test

demo: setup
	$(VENV)/bin/cnnlens demo --out cnnlens-demo

test: setup-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)
