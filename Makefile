# Two entry points for users: `make book` (build the book on the mini zoo) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: book test bench lab clean zoo zoo-report

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest tests

book: $(STAMP)
	mkdir -p book/_generated
	$(PY) -m reprolib methods --markdown > book/_generated/methods.md
	$(VENV)/bin/jupyter-book build book --config _config.yml --path-output book -W --keep-going

zoo: $(STAMP)
	$(PY) -m reprolib.zoo build --profile $(or $(PROFILE),mini)

zoo-report: $(STAMP)
	$(PY) -m reprolib.zoo report --profile $(or $(PROFILE),mini) --out results/zoo/$(or $(PROFILE),mini).json

bench: $(STAMP)
	$(PY) bench/merge_bench.py

clean:
	rm -rf book/_build book/executed
