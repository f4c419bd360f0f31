# `make run` and `make test` do all set-up themselves on a fresh machine (a venv in .venv).
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
# Development and CI read the datasets in place from ../shared/data when it exists.
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/MNIST),)
export REPLAB_DATA ?= $(SHARED_DATA)
endif

# Test processes for the default suite: the CPUs this process may use (nproc follows the
# affinity mask); each pytest-xdist worker then takes its share of them (tests/conftest.py).
TEST_JOBS ?= $(shell nproc 2>/dev/null || echo 1)

.PHONY: setup run test test-slow lint bench fidelity clean

# torch and torchvision at the pinned versions (pyproject.toml). PyPI's Linux wheels bundle CUDA
# (several GB), so a machine without an NVIDIA driver takes PyTorch's CPU wheels; when that index
# cannot be reached, one line says so and the default index serves them. TORCH_INDEX=cpu|cu128|...
# or TORCH_INDEX_URL=<index URL> chooses the index instead; TORCH_INDEX= (empty) means the default.
TORCH_PINS      := torch==2.14.1 torchvision==0.29.1
TORCH_INDEXES   := https://download.pytorch.org/whl
# "yes" when this machine has a loaded NVIDIA driver (NVIDIA_DRIVER=yes or = decides instead)
NVIDIA_DRIVER   ?= $(shell test -e /proc/driver/nvidia/version && echo yes)
ifeq ($(origin TORCH_INDEX_URL)$(origin TORCH_INDEX),undefinedundefined)
TORCH_INDEX_URL := $(if $(NVIDIA_DRIVER),,$(TORCH_INDEXES)/cpu)
else
TORCH_INDEX_URL ?= $(if $(TORCH_INDEX),$(TORCH_INDEXES)/$(TORCH_INDEX),)
endif
# pip gives up on an unreachable index at once instead of retrying for minutes; its messages
# go to a log, so the fallback is one line
TORCH_TRY       := --retries 0 --timeout 15
TORCH_LOG       := $(VENV)/torch-index.log
TORCH_FALLBACK  := echo "replab: torch could not be installed from $(TORCH_INDEX_URL) (pip's\
 messages: $(TORCH_LOG)); installing it from the default index instead" >&2\
 && $(PY) -m pip install -q $(TORCH_PINS)

# The venv with torch and torchvision, then replab with its test and notebook tools.
$(VENV)/.torch: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(if $(TORCH_INDEX_URL),$(PY) -m pip install -q $(TORCH_PINS) $(TORCH_TRY) --index-url \
	$(TORCH_INDEX_URL) 2>$(TORCH_LOG) || { $(TORCH_FALLBACK); })
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(PY) -m pip install -q -e '.[dev,notebook]'
	touch $@

setup: $(VENV)/.installed                ## create .venv and install replab with its test tools

run: setup                               ## the main job: replab's default study on the bundled digits
	$(VENV)/bin/replab run

test: setup                              ## the default test suite (what CI runs first)
	$(PY) -m pytest -q -m "not slow" -n $(TEST_JOBS) --dist worksteal

test-slow: setup                         ## long suites (DDP, PostgreSQL, kill/resume); CI runs them too
	$(PY) -m pytest -q -m slow; code=$$?; [ $$code -eq 5 ] && echo "no slow tests yet" && exit 0; exit $$code

lint: setup                              ## ruff (lint rules and formatting), then mypy on replab/
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check replab tests benchmarks
	$(VENV)/bin/mypy

bench: setup                             ## CPU benchmarks; figures in benchmarks/README.md
	$(PY) benchmarks/a1_loader.py

# Every MNIST/Fashion-MNIST reference figure at full settings over 3 seeds, in runs/fidelity/
# (resumable: finished runs are reused); then docs/fidelity.md and the README's table.
# Pass options through FIDELITY_ARGS, e.g. make fidelity FIDELITY_ARGS="--jobs 2 --only A1,E3"
FIDELITY_ARGS ?=
fidelity: setup                          ## re-measure the published figures; writes docs/fidelity.md
	$(PY) benchmarks/fidelity.py --write $(FIDELITY_ARGS)

clean:
	rm -rf runs .pytest_cache
