# Two commands do all set-up on a fresh clone:  `make demo`  and  `make test`.
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
PIP   := $(PY) -m pip --disable-pip-version-check -q
export DGLBACKEND := pytorch

# The interpreter the venv is made with: python3.11 where there is one, else python3. It must be 3.11 (checked
# before anything is installed): dgl 1.1.3 ships wheels for CPython <= 3.11, and pyproject says >=3.11,<3.12.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || echo python3)
# An existing venv is checked by its own interpreter (it may have been made with another python).
VENV_PYTHON = $(if $(wildcard $(PY)),$(PY),$(PYTHON))
NEEDS_311 := sketchgraph needs Python 3.11: dgl 1.1.3 ships wheels for CPython <= 3.11
comma := ,
# What to do about it: PYTHON alone cannot help once a venv of another python exists (the venv is checked, and kept).
FIX_311 = $(if $(wildcard $(PY)),remove $(VENV) (make clean$(if $(filter-out .venv,$(VENV)), VENV=$(VENV))) and rerun$(comma) \
  with PYTHON=/path/to/python3.11 if python3.11 is not on PATH,set PYTHON=/path/to/python3.11)

.PHONY: demo test lint install dev bench clean check-python

check-python:
	@$(VENV_PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || { \
	  echo "$(NEEDS_311) (found: $$($(VENV_PYTHON) --version 2>/dev/null || echo no $(VENV_PYTHON))$(if $(wildcard $(PY)), in $(VENV))); $(FIX_311)" >&2; \
	  exit 1; }

# Runtime install: the CPU build of torch first, then us. PyPI's Linux torch wheel pulls GBs of CUDA packages; the
# CPU build comes from PyTorch's CPU index (its 2.13.0+cpu outranks PyPI's 2.13.0) or from a local wheel where pip
# is configured with one (find-links). Torch alone comes from that index (--no-deps: its dependencies come with ours,
# from the usual index). Offline, the unreachable index costs a few warnings; `make demo TORCH_INDEX=`
# skips it, and TORCH_INDEX=https://download.pytorch.org/whl/cu126 (say) installs a CUDA build instead.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
$(VENV)/.installed: pyproject.toml | check-python
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --no-deps "torch==2.13.0" $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install -e ".[dev]"
	touch $@

install: $(VENV)/.installed
dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(VENV)/bin/sketchgraph demo --out out/demo

test: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .

# The speed figures in the README (each script prints its own table; none is a timed test).
bench: $(VENV)/.installed-dev
	$(PY) benchmarks/bench_prepare.py
	$(PY) benchmarks/bench_simplify.py --quick
	$(PY) benchmarks/bench_collate.py
	$(PY) benchmarks/bench_model.py --threads 2
	if [ -d prepared/spg20 ]; then $(PY) benchmarks/bench_train.py --data prepared/spg20; \
	else echo "bench_train.py skipped: prepare SPG-20 first (python -m data_prep.spg ../shared/data/spg20 prepared/spg20)"; fi
	$(PY) benchmarks/bench_predict.py
	$(PY) benchmarks/bench_serve.py

clean:
	rm -rf $(VENV) out build *.egg-info
