# Two commands set up a fresh machine: `make demo` and `make test` (both build .venv first).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed
DEMO_OUT ?= runs/demo

.PHONY: setup demo test test-fast bench bench-smoke clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ifa-bench sweep experiments/synthetic.yaml --out $(DEMO_OUT) --resume
	$(VENV)/bin/ifa-bench report $(DEMO_OUT) --out $(DEMO_OUT)/report

test: $(STAMP)
	$(PY) -m pytest -q -ra

bench: $(STAMP)
	$(PY) -m benchmarks.run --out runs/bench

bench-smoke: $(STAMP)
	$(PY) -m benchmarks.run --smoke --out runs/bench-smoke

clean:
	rm -rf $(VENV) runs .pytest_cache

# Parity with mmsegmentation 1.2.2 in its own venv (never the project's): built once, then the check runs.
MMSEG_VENV  := .venv-mmseg
MMSEG_STAMP := $(MMSEG_VENV)/.installed
MMSEG_SIZE  ?= 512x1024

$(MMSEG_STAMP): constraints.txt
	$(PYTHON) -m venv $(MMSEG_VENV)
	$(MMSEG_VENV)/bin/pip install -q --upgrade pip
	$(MMSEG_VENV)/bin/pip install -q -c constraints.txt torch mmsegmentation==1.2.2 mmengine==0.10.7 \
		mmcv-lite==2.1.0 ftfy regex pydantic
	$(MMSEG_VENV)/bin/python tools/mmseg_parity/patch_mmcv_ops.py
	touch $(MMSEG_STAMP)

.PHONY: check-mmseg
check-mmseg: $(MMSEG_STAMP)
	PYTHONPATH=$(CURDIR) $(MMSEG_VENV)/bin/python -W ignore tools/mmseg_parity/check_mmseg.py --size $(MMSEG_SIZE)
