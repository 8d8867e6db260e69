# The README's two commands. Each bootstraps .venv on first use.
#   make reproduce   execute every notebook (PRESET=classroom by default) into outputs/<notebook>/,
#                    two at a time on a machine with 2 or more cores (JOBS=1 for one after another)
#   make test        the whole test suite (notebooks executed with the smoke preset)
# Variables: PRESET=smoke|classroom|paper, PYTHON=python3, TORCH_SPEC (e.g. a CUDA build of torch).
# The flower extra (Flower 1.42, Python >= 3.11) is installed so that notebook 05 and its tests run a deployment.

PYTHON ?= python3
VENV ?= .venv
PRESET ?= classroom
JOBS ?=
# The CPU wheel of torch is installed first so that monai does not pull a multi-GB CUDA build.
# The optional extra "privacy" (Opacus, lesson 07) is installed too, so that make test runs every lesson.
# GPU users: make reproduce TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu124"
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.fedlab-installed

.PHONY: reproduce test lint clean-outputs

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e ".[notebooks,dev,flower,privacy]"
	@touch $(STAMP)

reproduce: $(STAMP)
	$(BIN)/python -m fedlab.reproduce --preset $(PRESET) $(if $(JOBS),--jobs $(JOBS))

# Tests run tiny models, for which one CPU thread per process is fastest (and robust on a busy machine).
TEST_ENV := FEDLAB_PRESET=smoke TQDM_DISABLE=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

test: $(STAMP)
	$(BIN)/python -m ruff check fedlab tests bench
	$(TEST_ENV) $(BIN)/python -m pytest
	$(TEST_ENV) FEDLAB_OUTPUT_ROOT=$$(mktemp -d) $(BIN)/python -m pytest -p no:cacheprovider --nbval-lax notebooks/

lint: $(STAMP)
	$(BIN)/python -m ruff check fedlab tests bench

clean-outputs:
	rm -rf outputs
