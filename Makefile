# Two commands set up a fresh machine: `make demo` and `make test` (both build .venv first).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed
DEMO_OUT ?= runs/demo

.PHONY: setup demo test test-fast bench bench-smoke clean gpu-check gpu-paths check-official mutation check-slurm

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ifa-bench sweep experiments/synthetic.yaml --out $(DEMO_OUT) --resume
	$(VENV)/bin/ifa-bench report $(DEMO_OUT) --out $(DEMO_OUT)/report
	$(VENV)/bin/ifa-bench check $(DEMO_OUT) --against reports/published_demo.yaml --tolerance 1.0

test: $(STAMP)
	$(PY) tools/test_lanes.py -q -ra --durations=15

bench: $(STAMP)
	$(PY) -m perf.run --out runs/bench
	$(PY) -m perf.train_throughput --out runs/bench
	$(PY) -m perf.loader_throughput --out runs/bench

bench-smoke: $(STAMP)
	$(PY) -m perf.run --smoke --out runs/bench-smoke
	$(PY) -m perf.train_throughput --smoke --out runs/bench-smoke
	$(PY) -m perf.loader_throughput --smoke --out runs/bench-smoke

# Mutation check of the critical modules (tools/mutation_run.py, docs/contributing/testing.md). Not in CI. Each module runs on its
# own, with only its tests: `make mutation MUTATE=losses` runs one (names: tools/mutation_run.py MODULES).
# MUTATION_BUDGET: seconds per module before it is interrupted; MUTATION_JOBS: mutmut workers (for `kernels`, run
# by cosmic-ray: files mutated at once); the summary fails below MUTATION_MIN percent.
MUTATION_JOBS   ?= 2
MUTATION_MIN    ?= 90
MUTATION_BUDGET ?= 1200
MUTATE          ?=
mutation: $(STAMP)
	$(PIP) install -q -c constraints.txt -e '.[dev,mutation]'
	$(PY) -m tools.mutation_run --budget $(MUTATION_BUDGET) --jobs $(MUTATION_JOBS) $(foreach m,$(MUTATE),--module $(m))
	$(PY) -m tools.mutation_summary --min $(MUTATION_MIN)

clean:
	rm -rf $(VENV) runs .pytest_cache mutants mutation-results

# One GPU, at most 5 minutes: issue 27's table for both IFA formulations and its acceptance checks (perf/gpu_table.py,
# docs/performance.md). Skips with a message where there is no GPU; `make gpu-check GPU_CHECK_ARGS=--dry-run` runs it
# on the CPU at small sizes. gpu-paths: every CUDA path of the suite (longer).
# GPU_PYTHON: a python whose torch has CUDA (the venv's torch is the CPU build pinned by constraints.txt).
GPU_PYTHON ?= $(PY)
GPU_CHECK_ARGS ?=
gpu-check:
	@if [ "$(GPU_PYTHON)" = "$(PY)" ]; then $(MAKE) --no-print-directory setup; fi
	$(GPU_PYTHON) -m perf.gpu_check --out runs/gpu-check/gpu_check.json $(GPU_CHECK_ARGS)

gpu-paths:
	@if [ "$(GPU_PYTHON)" = "$(PY)" ]; then $(MAKE) --no-print-directory setup; fi
	$(GPU_PYTHON) -m perf.gpu_check --paths --out runs/gpu-check/gpu_paths.json

# The official Cityscapes evaluator (own venv: cityscapesscripts 2.3.0 needs numpy < 2.4) vs `ifa-bench eval`.
OFFICIAL_VENV := .venv-official
check-official: $(STAMP)
	test -x $(OFFICIAL_VENV)/bin/python || ($(PYTHON) -m venv $(OFFICIAL_VENV) && \
		$(OFFICIAL_VENV)/bin/pip install -q "cityscapesscripts==2.3.0" "numpy<2.4")
	rm -rf runs/check-official
	$(PY) tools/check_official.py prepare runs/check-official
	$(OFFICIAL_VENV)/bin/python tools/check_official.py official runs/check-official

# Parity with mmsegmentation 1.2.2 in its own venv (never the project's): built once, then the check runs.
# perf/mmseg_train_peer.py runs the engine beside mmseg in it too (hence tensorboard and tqdm).
MMSEG_VENV  := .venv-mmseg
MMSEG_STAMP := $(MMSEG_VENV)/.installed
MMSEG_SIZE  ?= 512x1024

$(MMSEG_STAMP): constraints.txt
	$(PYTHON) -m venv $(MMSEG_VENV)
	$(MMSEG_VENV)/bin/pip install -q --upgrade pip
	$(MMSEG_VENV)/bin/pip install -q -c constraints.txt torch mmsegmentation==1.2.2 mmengine==0.10.7 \
		mmcv-lite==2.1.0 ftfy regex pydantic psutil tensorboard tqdm
	$(MMSEG_VENV)/bin/python tools/mmseg_parity/patch_mmcv_ops.py
	touch $(MMSEG_STAMP)

# The engine against mmseg's own training loop (perf/mmseg_train_peer.py), same models and batches, one run.
.PHONY: bench-mmseg-peer
bench-mmseg-peer: $(MMSEG_STAMP)
	PYTHONPATH=$(CURDIR) $(MMSEG_VENV)/bin/python -W ignore -m perf.mmseg_train_peer --out runs/bench

.PHONY: check-mmseg
check-mmseg: $(MMSEG_STAMP)
	PYTHONPATH=$(CURDIR) $(MMSEG_VENV)/bin/python -W ignore tools/mmseg_parity/check_mmseg.py --size $(MMSEG_SIZE)

# deploy/slurm-sweep.sbatch on a real Slurm on this machine (tests/deploy/test_slurm.py; docs/cluster.md "Under
# Slurm"): one job, a resubmission, two jobs on one node at once, a cancelled job, a 2-node job (the second node in a
# network namespace), nothing left behind. As root; installs Debian's slurm-wlm and munge when missing. About 3
# minutes on an idle 2-core host; .ci/run runs it after `make test` where it runs as root.
check-slurm: $(STAMP)
	@if ! command -v slurmctld > /dev/null || ! command -v munged > /dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge; fi
	IFA_SLURM_TEST=1 $(PY) -m pytest tests/deploy/test_slurm.py -m slurm -v -s -rs -p no:cacheprovider
