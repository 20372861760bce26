"""What a sweep will cost before it runs: per trial and in all, the resources requested, the wall time, device-hours
(CPU-hours = CPUs x wall hours for CPU trials, GPU-hours = GPUs x wall hours for GPU trials) and the sweep's wall
time at its concurrency (docs/sweeps.md, "Cost before launch").

The per-model costs (ModelCost) come from `--calibrate N` (bench/sweep/cost/calibrate.py) or from what an earlier sweep
of the same model recorded in the sweep folder (`from_records`); with neither a trial has no estimate. A trial's
wall time is modelled as

    trial overhead + setup + iterations x s/iteration + checkpoints x checkpoint + evaluations x val images x s/image

and the sweep's as the sweep's overhead + the measurement phase + the trials scheduled in order on `concurrency`
slots (Tune's grid: each free slot takes the next pending trial); the overheads are Overheads.
"""
from __future__ import annotations

import hashlib
import heapq
import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Optional

from bench.files.json_records import read_json
from bench.results.schema import TRIALS
from bench.measure.noise_rule import BLOCK_S, CUDA_ROUND_MIN_S, CUDA_WARMUP_S, SETTLE_ROUNDS
from bench.results.text_table import plural

# The fixed costs are dominated by starting Python processes that import torch and Ray (Ray's own processes, each
# trial's worker, the measurement task and its isolated peak-memory process), so they are modelled as multiples of
# one such start-up, which --calibrate times here and now (calibrate.time_startup): under load it grows with
# everything else. The multiples were fitted to one run of the (shortened) synthetic demo on the shared 2-core
# development machine (docs/sweeps.md, "Cost before launch"): there a new trial's worker took about one start-up
# to begin, and the trial inside it ran about one more beyond the calibrated work; Ray's start and stop, Tune's
# first trial and the tables about four; a model's measurement about one beyond its forwards.
TRIAL_STARTUPS = 2.0  # a trial: its worker's start, the engine's imports, Tune reporting, records
SWEEP_STARTUPS = 4.0  # the embedded Ray and Tune starting and stopping, the results tables
MEASURE_STARTUPS = 1.0  # per measured model: the measurement task, the isolated peak-memory process
DEFAULT_STARTUP_S = 5.0  # without --calibrate: an assumed start-up (idle 2-core machine)
# The latency pool grows past measure.processes while it is imprecise (up to 4x: bench/measure/processes/fresh_processes.py).
# On the idle 2-core machine six pooled measurements took 4-12 processes at the default 3, 8.5 on average
# (docs/performance.md, round 4), and six in round 6 (models taking turns over measure.span_s) 3-11, 6.3 on average:
# the estimate plans for 2.8x for a pool without a span.
EXPECTED_POOL_FACTOR = 2.8
# A pool with a span grows until its standard error over 20-s blocks is under 3.5%, which took about this much pool
# time whatever span_s asked for: 2.8 x 60 s in round 6 (pools of 76-368 s at 60 s); in round 9, 86-156 s at 60 s,
# and at 240 s no pool grew (265-271 s).
EXPECTED_PRECISE_SPAN_S = 168.0
# Schedule-only keys: they change how long a trial runs, not what one iteration of it costs.
_SCHEDULE_KEYS = ("iterations", "log_every", "checkpoint_every", "eval_every", "keep_checkpoints", "warmup_iters")


@dataclass(frozen=True)
class ModelCost:
    s_per_iter: float
    setup_s: float = 0.0  # dataset and model build before the first iteration
    checkpoint_s: float = 0.0  # one checkpoint write
    eval_s_per_image: Optional[float] = None
    val_images: Optional[int] = None
    forward_s: Optional[float] = None  # one inference at measure.input_size (the measurement phase's unit)
    source: str = ""


@dataclass(frozen=True)
class Overheads:
    startup_s: float = DEFAULT_STARTUP_S  # one fresh Python importing torch, Ray Tune and the engine
    source: str = "assumed"

    @property
    def trial_s(self) -> float:
        return TRIAL_STARTUPS * self.startup_s

    @property
    def sweep_s(self) -> float:
        return SWEEP_STARTUPS * self.startup_s

    @property
    def measure_s(self) -> float:
        return MEASURE_STARTUPS * self.startup_s


@dataclass(frozen=True)
class TrialCost:
    trial_id: str
    config_hash: str
    resources: str  # "1 CPU", "2 CPU 1 GPU x 2 workers"
    state: str  # new / started / done
    wall_s: Optional[float]  # None: no estimate; 0 for a done trial
    device_hours: Optional[float]
    unit: str  # "CPU-h" or "GPU-h"
    source: str


def cost_key(cfg) -> str:
    """What one iteration of a trial costs depends on its model, data and training options, not on its seed or
    schedule: the config hash without those (so seeds and iteration counts of a model share a calibration)."""
    d = cfg.model_dump(mode="json")
    d.pop("seed", None)
    d.pop("name", None)
    for k in _SCHEDULE_KEYS:
        d.get("train", {}).pop(k, None)
    blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def device_unit(res) -> tuple[float, str]:
    """(devices one trial holds, unit): GPUs for a GPU trial, else CPUs."""
    if res.gpus > 0:
        return res.gpus * res.workers, "GPU-h"
    return res.cpus * res.workers, "CPU-h"


def resources_text(res) -> str:
    text = f"{res.cpus:g} CPU" + (f" {res.gpus:g} GPU" if res.gpus else "")
    text += "".join(f" {v:g} {k}" for k, v in (res.custom or {}).items())
    if res.workers > 1:
        text += f" x {res.workers} workers ({res.placement})"
    return text


def _count_evals(train) -> int:
    every = train.eval_every
    middle = 0 if not every else len([i for i in range(every, train.iterations, every)])
    return middle + 1  # the final evaluation


def _count_checkpoints(train) -> int:
    return train.iterations // train.checkpoint_every + (1 if train.iterations % train.checkpoint_every else 0)


def trial_wall_s(cfg, res, cost: ModelCost, overheads: Overheads = Overheads()) -> float:
    """The modelled wall time of one trial (module docstring). With DDP workers one iteration's work is split
    over them: a rough 1/workers of the single-process step (communication not modelled)."""
    t = cfg.train
    train_s = t.iterations * cost.s_per_iter / max(1, res.workers)
    ckpt_s = _count_checkpoints(t) * cost.checkpoint_s
    eval_s = 0.0
    if cost.eval_s_per_image is not None and cost.val_images:
        eval_s = _count_evals(t) * cost.val_images * cost.eval_s_per_image / max(1, res.workers)
    return overheads.trial_s + cost.setup_s + train_s + ckpt_s + eval_s


def measure_s(cfg, cost: ModelCost, overheads: Overheads = Overheads(), device: str = "cpu") -> float:
    """The measurement phase for one model: the MAC count's and the memory probe's forwards, the warm-up and at
    least one turn of timed runs in each of its fresh latency processes (one start-up each), as many as the pool is
    expected to grow to (_expected_slots). The turns fill the pool's span, which the models of a phase share:
    measure_span_s. Timed in the measuring process
    (`processes` 0, and always on `device` "cuda") it takes two rounds of `runs` at least, settling needing two
    (bench.measure.latency); on CUDA the warm-up and each round also last a least time."""
    if not cfg.measure.enabled or cost.forward_s is None:
        return 0.0
    m = cfg.measure
    processes = 0 if not m.latency or device == "cuda" else _expected_slots(m)
    fixed = overheads.measure_s + processes * overheads.startup_s + 2 * cost.forward_s
    if not m.latency:
        return fixed
    if processes > 0:
        return fixed + (m.warmup + m.runs) * processes * cost.forward_s
    warmup_s, round_s = m.warmup * cost.forward_s, m.runs * cost.forward_s
    if device == "cuda":
        warmup_s, round_s = max(warmup_s, CUDA_WARMUP_S), max(round_s, CUDA_ROUND_MIN_S)
    return fixed + warmup_s + SETTLE_ROUNDS * round_s


def measure_span_s(cfg, device: str = "cpu") -> float:
    """The least time the phase's latency pool takes by its span (measure.span_s; the models take turns, so the pool
    spans it once for all of them), grown as measure_s grows the process count. CUDA has no pool."""
    m = cfg.measure
    if not (m.latency and m.processes > 0) or device == "cuda":
        return 0.0
    return m.span_s * _expected_slots(m) / m.processes


def _expected_slots(m) -> float:
    """The slots (fresh processes per model) a latency pool is expected to take: `processes`, grown while it is
    imprecise up to its limit. With a span, until it has spanned about EXPECTED_PRECISE_SPAN_S; without one (slots
    of one turn each), EXPECTED_POOL_FACTOR times."""
    if m.processes <= 0 or not _pool_can_grow(m):
        return float(max(m.processes, 0))
    if m.span_s <= 0:
        grown = m.processes * EXPECTED_POOL_FACTOR
    else:
        grown = m.processes * max(1.0, EXPECTED_PRECISE_SPAN_S / m.span_s)
    return min(grown, float(_pool_limit(m)))


def _pool_can_grow(m) -> bool:
    """Whether the pool has a standard error to grow on (bench/measure/processes/fresh_processes.py, LatencyJob.rel_se): over
    two or more blocks of its span, else over two or more processes. A single process over a short span has none."""
    return m.processes > 1 or m.span_s >= 2 * BLOCK_S


def _pool_limit(m) -> int:
    """The most processes a latency pool may grow to (bench/measure/processes/fresh_processes.py: LatencyJob.limit)."""
    from bench.config.experiment import MAX_PROCESSES_FACTOR

    return m.max_processes or MAX_PROCESSES_FACTOR * m.processes


def makespan(walls: list[float], slots: int) -> float:
    """Trials started in order, each on the first slot to come free."""
    free = [0.0] * max(1, slots)
    for w in walls:
        heapq.heappush(free, heapq.heappop(free) + w)
    return max(free)


# ---------------------------------------------------------------------------------------------------------------
# from an earlier sweep's records


def _iso(text) -> Optional[float]:
    try:
        return datetime.fromisoformat(str(text)).timestamp()
    except (TypeError, ValueError):
        return None


def _read_jsonl(path: Path) -> list[dict]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def cost_from_trial_dir(trial_dir: Path) -> Optional[ModelCost]:
    """The throughput a finished (or interrupted) trial recorded: s/iteration from its metrics.jsonl (the
    engine's training clock, the first logged interval left out as warm-up), s/image from its evaluations, and the
    rest of its training wall time (attempts.json) as setup."""
    from bench.sweep.folder import layout

    rows = _read_jsonl(trial_dir / layout.METRICS)
    train = [(r["iter"], r["time_s"]) for r in rows if r.get("kind") == "train"
             and isinstance(r.get("iter"), int) and isinstance(r.get("time_s"), (int, float))]
    if len(train) < 2:
        return None
    (i0, t0), (i1, t1) = (train[1] if len(train) > 2 else train[0]), train[-1]
    if i1 <= i0:
        return None
    s_per_iter = (t1 - t0) / (i1 - i0)
    evals = [r for r in rows if r.get("kind") == "eval" and r.get("num_images") and r.get("eval_time_s")]
    eval_s = evals[-1]["eval_time_s"] / evals[-1]["num_images"] if evals else None
    images = int(evals[-1]["num_images"]) if evals else None
    setup_s = 0.0
    hist = (read_json(trial_dir / layout.ATTEMPTS) or {}).get("history") or []
    if hist:
        a, b = _iso(hist[-1].get("train_started_at")), _iso(hist[-1].get("train_finished_at"))
        if a and b:
            setup_s = max(0.0, (b - a) - t1 - sum(r["eval_time_s"] for r in evals))
    return ModelCost(s_per_iter=s_per_iter, setup_s=setup_s, eval_s_per_image=eval_s, val_images=images,
                     source=f"earlier sweep ({trial_dir.name})")


def from_records(sweep_dir: Path, trials) -> dict[str, ModelCost]:
    """{cost_key: ModelCost} from the trials of the sweep folder that share a model with one of `trials`."""
    from bench.config import ExperimentConfig
    from bench.config import read_yaml
    from bench.sweep.folder import layout

    want = {cost_key(t.config) for t in trials}
    found: dict[str, ModelCost] = {}
    root = Path(sweep_dir) / TRIALS
    if not root.is_dir():
        return found
    for trial_dir in sorted(root.iterdir()):
        try:
            cfg = ExperimentConfig.model_validate(read_yaml(trial_dir / layout.CONFIG))
        except Exception:  # noqa: BLE001 - a folder that is not a readable trial is simply not a source
            continue
        key = cost_key(cfg)
        if key in want and key not in found:
            cost = cost_from_trial_dir(trial_dir)
            if cost is not None:
                found[key] = cost
    return found


# ---------------------------------------------------------------------------------------------------------------


def estimate(sweep, sweep_dir: Path, costs: dict[str, ModelCost], concurrency: int,
             overheads: Overheads = Overheads()) -> dict:
    """Per trial TrialCost and the sweep's totals."""
    from bench.sweep.folder import layout, records
    from bench.sweep.tasks import measurement

    trials, walls, measured_keys, spans = [], [], {}, []
    complete = True
    for t in sweep.trials:
        res = t.resources
        devices, unit = device_unit(res)
        state = records.trial_state(layout.trial_dir(Path(sweep_dir), t.config_hash))
        cost = costs.get(cost_key(t.config))
        if state == "done":
            wall, source = 0.0, "done (not rerun)"
        elif cost is None:
            wall, source = None, "no estimate (use --calibrate N)"
            complete = False
        else:
            wall, source = trial_wall_s(t.config, res, cost, overheads), cost.source
            walls.append(wall)
            payload = {"cfg": t.config.model_dump(mode="json"), "resources": res.model_dump()}
            key = measurement.measure_key(payload)
            if t.config.measure.enabled and records.read_measurement(Path(sweep_dir), key) is None:
                device = measurement.device_kind(payload)
                measured_keys.setdefault(key, measure_s(t.config, cost, overheads, device))
                spans.append(measure_span_s(t.config, device))
        hours = None if wall is None else devices * wall / 3600
        trials.append(TrialCost(t.trial_id, t.config_hash, resources_text(res), state, wall, hours, unit, source))
    res = sweep.section.resources
    devices, unit = device_unit(res)
    phase_s = max(sum(measured_keys.values()), max(spans, default=0.0))
    node_devices = _node_devices(res)
    total = {
        "complete": complete,
        "concurrency": concurrency,
        "startup_s": overheads.startup_s,
        "startup_source": overheads.source,
        "sweep_overhead_s": overheads.sweep_s,
        "unit": unit,
        "trials_wall_s": makespan(walls, concurrency) if walls else 0.0,
        "measure_s": phase_s,
        "measured_models": len(measured_keys),
        "trial_device_hours": sum(t.device_hours or 0.0 for t in trials),
        "measure_device_hours": node_devices * phase_s / 3600,  # the phase holds a whole node
    }
    total["wall_s"] = (overheads.sweep_s + phase_s + total["trials_wall_s"]) if walls or phase_s else 0.0
    total["device_hours"] = total["trial_device_hours"] + total["measure_device_hours"]
    return {"trials": trials, "total": total}


def _node_devices(res) -> float:
    """What the measurement phase reserves: every CPU of this machine (or one GPU for a GPU sweep)."""
    import os

    return 1.0 if res.gpus > 0 else float(os.cpu_count() or 1)


def _hms(seconds: Optional[float]) -> str:
    """As bench.sweep.driver.progress.fmt_duration (not imported: that module imports Ray, and a dry-run never does)."""
    if seconds is None:
        return "-"
    h, rem = divmod(int(math.ceil(seconds)), 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def cost_table(result: dict) -> str:
    from bench.results.text_table import text_table

    headers = ["trial_id", "resources", "wall", "device-hours", "estimate from"]  # state: the trial table's
    rows = []
    for t in result["trials"]:
        hours = "-" if t.device_hours is None else f"{t.device_hours:.3f} {t.unit}"
        rows.append([t.trial_id, t.resources, _hms(t.wall_s), hours, t.source])
    tot = result["total"]
    lines = [text_table(headers, rows, numeric=[False, False, True, True, False])]
    if tot["complete"]:
        lines.append(
            f"sweep: {_hms(tot['wall_s'])} wall at concurrency {tot['concurrency']} "
            f"(measurement phase {_hms(tot['measure_s'])} for {plural(tot['measured_models'], 'model')}, "
            f"trials {_hms(tot['trials_wall_s'])}, Ray start/stop {_hms(tot['sweep_overhead_s'])}); "
            f"{tot['device_hours']:.3f} {tot['unit']} ({tot['trial_device_hours']:.3f} trials + "
            f"{tot['measure_device_hours']:.3f} measurement); process start-up {tot['startup_s']:.1f} s "
            f"({tot['startup_source']})")
    else:
        lines.append(f"sweep: no estimate for every trial (use --calibrate N); concurrency {tot['concurrency']}")
    return "\n".join(lines)


def as_json(result: dict) -> dict:
    return {"trials": [t.__dict__ for t in result["trials"]], "total": dict(result["total"])}
