# Two commands on a fresh machine: `make demo` and `make test` (both idempotent).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install install-dev demo test test-all lint bench docs docs-serve clean

# `install` (and `demo`): the package and the server extra, what the README's commands use;
# `install-dev` (and every target below `demo`): the dev extras too (tests, linters, docs).
install: $(STAMP)
install-dev: $(DEV_STAMP)

# Re-install only when the package definition changes. torch is pinned to the
# local CPU wheel first so that no multi-GB CUDA build is pulled in.
define venv_with
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24,<27"
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[$(1)]'
endef

$(STAMP): pyproject.toml
	$(call venv_with,server)
	touch $(STAMP)

$(DEV_STAMP): pyproject.toml
	$(call venv_with,dev)
	touch $(DEV_STAMP) $(STAMP)

demo: install
	$(BIN)/ebrm demo

test: install-dev
	$(BIN)/python -m ruff check src tests benchmarks experiments examples
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

test-all: install-dev
	$(BIN)/python -m pytest -q -m "slow or not slow"

lint: install-dev
	$(BIN)/python -m ruff check --fix src tests benchmarks experiments examples
	$(BIN)/python -m ruff format src tests benchmarks experiments examples

bench: install-dev
	$(BIN)/python benchmarks/bench_energy.py
	$(BIN)/python benchmarks/bench_extract.py
	$(BIN)/python benchmarks/bench_server.py

# The documentation site, offline; warnings (a broken link, a missing page, an unresolved
# API reference) are errors. `make test` runs the same build (tests/test_docs.py).
docs: install-dev
	$(BIN)/mkdocs build --strict

docs-serve: install-dev
	$(BIN)/mkdocs serve

clean:
	rm -rf $(VENV) runs site .pytest_cache
