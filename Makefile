# One entry point for setting up and checking the project; see README.md.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: setup demo test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

demo: setup
	$(PY) zmq_subscriber.py demo

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# The benchmark (doc/performance.md): quick by default, BENCH_FULL=1 for the 1M-message run.
bench: setup
	$(PY) -m bench.run $(if $(BENCH_FULL),--full,)
