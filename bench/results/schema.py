"""The sweep's results table: one row per trial. Sweeps write it; reports and the check read it."""

# The table's files in a sweep folder, and where a row's trial folder is (its `trial_dir` column).
RESULTS_CSV = "results.csv"
RESULTS_PARQUET = "results.parquet"
PER_CLASS_CSV = "per_class_iou.csv"
TRIALS = "trials"


def trial_rel(key: str) -> str:
    """A trial folder relative to the sweep folder (also its prefix under a --storage URI)."""
    return f"{TRIALS}/{key}"


IDENTITY = ["trial_id", "config_hash", "sweep_name", "status", "error", "attempts", "trial_dir"]
# status: "completed" | "failed" | "running" | "pending"; error: "" unless failed.

CONFIG = [
    "dataset", "backbone", "stem", "output_stride", "head", "formulation", "seed", "iterations", "batch_size",
    "crop", "num_classes", "eval_mode", "eval_scales", "eval_flip", "ifa_query", "ifa_query_stride", "compile",
]
# crop: "HxW"; eval_scales: "1.0" or "0.5,0.75,1.0"; compile: "false", "true" or "eval" (model.compile,
# compile_setting).
# formulation: IFA's formulation ("reference"/"fused"), "" for other heads: what ran (a completed row's measurement,
# else its training), or before that what `auto` runs as on the trial's device (bench/config/formulation.py).
# ifa_query_stride: the stride IFA is queried at (1 = label resolution, 4 = its own grid, upsampled); empty for other
# heads (bench/config/query_stride.py).
# Extra sweep axes appear as extra columns named "cfg.<dotted.key>".

# How IFA ran, beside the config (it does not tell models apart): ifa_kernels: its kernels ("torch"/"triton"; "" before
# the trial ran and for other heads).
RAN = ["ifa_kernels"]

METRICS = ["miou", "macc", "aacc", "boundary_iou"]  # percent, single evaluation protocol of the row

INTERVALS = ["miou_ci_low", "miou_ci_high"]  # 95% bootstrap interval of miou over val images (bench/engine/evaluation/bootstrap.py)

# The GPU around the reported round of CUDA timings, through NVML (bench/measure/gpu_state.py); empty on CPU:
# gpu_state: "nvml" | "unavailable: <why>" | ""; clocks MHz, power W, temperature C, before and after the round;
# gpu_throttle: NVML's throttle reasons after it ("sw_power_cap,...", "" when none).
GPU_STATE = ["gpu_state", "gpu_sm_clock_mhz_before", "gpu_sm_clock_mhz_after", "gpu_mem_clock_mhz_before",
             "gpu_mem_clock_mhz_after", "gpu_power_w_before", "gpu_power_w_after", "gpu_temp_c_before",
             "gpu_temp_c_after", "gpu_throttle"]

MEASUREMENTS = [
    "gmacs", "gmacs_backbone", "gmacs_head", "params_m", "params_backbone_m", "params_head_m",
    "latency_ms_median", "latency_ms_p90", "latency_ms_mean", "latency_ms_std", "peak_mem_mb", "measure_input",
    # where, when and under which conditions (one measurement per model per sweep, shared by its seeds):
    "measure_key", "measure_batch", "measure_dtype", "measure_threads", "measure_device", "measure_device_name",
    "measure_node", "measure_started_at", "measure_finished_at",
    "latency_ms_min", "latency_ms_iqr", "latency_runs", "latency_noisy", "loadavg_before", "loadavg_after",
    "latency_processes", "latency_se_pct", "latency_span_s", "unsupported_ops", "latency_noisy_reason",
    *GPU_STATE, "latency_bound_s",
]
# measure_input: "HxW"; peak_mem_mb: MiB; measure_device: "cpu" | "cuda"; measure_device_name: CPU or GPU model;
# measure_*_at: ISO-8601 UTC; latency_noisy: the pooled result stayed imprecise (docs/measurement.md); loadavg_*:
# host 1-minute load average before/after the timed runs; latency_processes: fresh processes pooled (0: timed in the
# measuring process); latency_se_pct: the pool's relative standard error, percent (over 20-s blocks of its time, or
# over its processes' medians when it spans less than two blocks); latency_span_s: seconds the pool spanned.
# latency_bound_s: the measurement phase's time bound (measure.max_phase_s) when it cut this pool short (the row is
# then noisy); empty otherwise. bench.measure.conditions.conditions_text(row) phrases them.

# latency_noisy_reason: why latency_noisy is set ("" when it is not): the GPU's state changed during the reported round
# (bench/measure/gpu_state.py), or the rounds never settled (bench/measure/noise_rule.py).
# unsupported_ops: the operators fvcore met and did not count ("op*calls,..."; empty: none), so GMACs leave them out.
# The sweep adds these two to a measurement; bench.measure.model.measure_model returns every other one.
SWEEP_MEASUREMENTS = ["measure_key", "measure_node"]

ENVIRONMENT = ["device", "device_name", "torch_version", "ray_version", "dtype", "threads", "python_version", "hostname"]

TIMING = ["train_time_s", "finished_at"]

PROVENANCE = ["ifa_bench_version", "git_commit", "git_dirty"]
# the code that trained the row (bench/results/provenance.py): git_dirty empty when unknown (an install without git).

RESULT_COLUMNS = IDENTITY + CONFIG + RAN + METRICS + INTERVALS + MEASUREMENTS + ENVIRONMENT + TIMING + PROVENANCE

# The type of every column: the writer (bench/results/row.py) stores it, reports/load.py reads it back. Any column not
# named here is text ("" when absent); extra `cfg.*` axis columns are typed by their values.
FLOAT, INT, BOOL, TEXT = "float64", "Int64", "boolean", "text"
_INT = ["attempts", "output_stride", "seed", "iterations", "batch_size", "num_classes", "measure_batch",
        "measure_threads", "latency_runs", "latency_processes", "threads"]
_BOOL = ["eval_flip", "latency_noisy", "git_dirty"]
_TEXT_MEASUREMENTS = ["measure_input", "measure_key", "measure_dtype", "measure_device", "measure_device_name",
                      "measure_node", "measure_started_at", "measure_finished_at", "unsupported_ops",
                      "latency_noisy_reason", "gpu_state", "gpu_throttle"]
_FLOAT = (METRICS + INTERVALS + [c for c in MEASUREMENTS if c not in _INT + _BOOL + _TEXT_MEASUREMENTS]
          + ["train_time_s"])
COLUMN_TYPES = {c: INT if c in _INT else BOOL if c in _BOOL else FLOAT if c in _FLOAT else TEXT
                for c in RESULT_COLUMNS}


def columns_of_type(kind: str) -> set[str]:
    return {c for c, t in COLUMN_TYPES.items() if t == kind}

# per_class_iou.csv beside results.csv, long format:
PER_CLASS_COLUMNS = ["trial_id", "config_hash", "dataset", "backbone", "head", "seed", "class_index", "class_name", "iou"]

# Training curves: <sweep>/<trial_dir>/metrics.jsonl, the engine's format (docs/architecture.md).


def compile_setting(value) -> str:
    """The `compile` column's text for a model.compile value: "false", "true" or "eval". Results written while the
    column was boolean read as "true"/"false" (True/False, and an absent value or column as "false")."""
    if value is None or (isinstance(value, float) and value != value):
        return "false"
    text = str(value).strip().lower()
    if text in ("true", "1", "1.0"):
        return "true"
    if text in ("false", "0", "0.0", "", "nan", "none", "<na>"):
        return "false"
    if text == "eval":
        return "eval"
    raise ValueError(value)
