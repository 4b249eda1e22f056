# The two fresh-machine commands (README.md):  make demo   |   make test
VENV ?= .venv
PYTEST_ARGS ?= -q

.PHONY: setup setup-test demo test test-architectures bench

setup:
	bash scripts/setup.sh

setup-test:
	bash scripts/setup.sh --test

demo: setup
	$(VENV)/bin/cnnlens demo --out cnnlens-demo

test: setup-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# the whole torchvision architecture x method matrix (`make test` runs a subset); about 2 min on
# 2 cores. MATRIX_REPORT=docs/architectures.md also writes the outcome table.
MATRIX_REPORT ?=
test-architectures: setup-test
	CNNLENS_FULL_MATRIX=1 CNNLENS_MATRIX_REPORT=$(MATRIX_REPORT) \
		$(VENV)/bin/python -m pytest -m architectures tests/architectures tests/attribution/test_gates.py $(PYTEST_ARGS)
