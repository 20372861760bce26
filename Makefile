# Two commands set up a fresh machine: `make demo` and `make test` (both build .venv first).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed
DEMO_OUT ?= runs/demo

.PHONY: setup demo test test-fast bench bench-smoke clean gpu-check

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

# One GPU, at most ~5 minutes: every CUDA path (docs/performance.md). Skips with a message where there is no GPU.
# GPU_PYTHON: a python whose torch has CUDA (the venv's torch is the CPU build pinned by constraints.txt).
GPU_PYTHON ?= $(PY)
gpu-check:
	@if [ "$(GPU_PYTHON)" = "$(PY)" ]; then $(MAKE) --no-print-directory setup; fi
	$(GPU_PYTHON) -m benchmarks.gpu_check --out runs/gpu-check/gpu_check.json
