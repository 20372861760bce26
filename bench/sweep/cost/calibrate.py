"""`sweep --dry-run --calibrate N`: measure what one training iteration, one evaluated image, one checkpoint and
one measurement forward of each distinct model cost here, so that bench.sweep.cost.estimate can predict the sweep.

In this process, without Ray, through the real engine (bench.engine.train_experiment) with the trial's threads:
N iterations into a temporary folder that is removed afterwards (nothing is written into the sweep folder).
The first WARMUP_ITERS iterations are not timed (allocator and kernel warm-up). Evaluation is timed on a few
validation images, not the whole split; the measurement phase from one timed forward at measure.input_size.
"""
from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

from bench.errors import UserError
from bench.sweep.cost.estimate import ModelCost, Overheads, cost_key

WARMUP_ITERS = 2  # not timed
EVAL_IMAGES = 3  # validation images timed per model (the first one is a warm-up, not timed)


class _Stop(Exception):
    """Ends the calibration run at its checkpoint, before the engine's full final evaluation."""


def trial_threads(trial) -> int:
    """The intra-op threads the trial trains with (Resources.threads)."""
    return trial.resources.threads(trial.config.train.threads)


@contextlib.contextmanager
def _threads(n: int):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _short_config(cfg, n: int):
    """The trial's config cut to n iterations, a log record per iteration, one checkpoint at the end."""
    train = cfg.train.model_copy(update={
        "iterations": n, "log_every": 1, "checkpoint_every": n, "eval_every": None,
        "warmup_iters": min(cfg.train.warmup_iters, n), "keep_checkpoints": 1,
    })
    return cfg.model_copy(update={"train": train})


def time_training(cfg, n: int) -> dict:
    """s/iteration (after the warm-up), the setup before the first iteration and one checkpoint write."""
    from bench.engine.trainer import train_experiment

    stamps: dict[int, float] = {}
    clock: dict[int, float] = {}
    ckpt_at: list[float] = []

    def on_report(record: dict) -> None:
        if record.get("kind") == "train":
            stamps[int(record["iter"])] = float(record["time_s"])  # training time, the engine's own clock
            clock[int(record["iter"])] = time.perf_counter()
        elif record.get("kind") == "checkpoint":
            ckpt_at.append(time.perf_counter())
            raise _Stop

    tmp = Path(tempfile.mkdtemp(prefix="ifa-calibrate-"))
    t0 = time.perf_counter()
    try:
        train_experiment(_short_config(cfg, n), tmp / "run", resume=False, on_report=on_report, progress=False)
    except _Stop:
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    first = min(stamps)
    timed = [i for i in sorted(stamps) if i > WARMUP_ITERS] or sorted(stamps)[-1:]
    lo = max(i for i in stamps if i < timed[0]) if timed[0] > first else None
    if lo is None:  # too few iterations to leave out a warm-up: the mean over all of them
        s_per_iter = stamps[timed[-1]] / timed[-1]
    else:
        s_per_iter = (stamps[timed[-1]] - stamps[lo]) / (timed[-1] - lo)
    setup_s = max(0.0, clock[first] - t0 - stamps[first])
    checkpoint_s = max(0.0, ckpt_at[0] - clock[max(stamps)]) if ckpt_at else 0.0
    return {"s_per_iter": s_per_iter, "setup_s": setup_s, "checkpoint_s": checkpoint_s,
            "timed_iters": len(timed) if lo is not None else timed[-1]}


class _FirstImages:
    """The first k images of a dataset, for timing evaluation on a few images."""

    def __init__(self, dataset, k: int):
        self.dataset, self.k = dataset, min(k, len(dataset))
        self.classes = getattr(dataset, "classes", None)

    def __len__(self):
        return self.k

    def load(self, i):
        return self.dataset.load(i)


def time_evaluation(cfg, model) -> tuple[float, int]:
    """(s per validation image, the split's size): the engine's evaluate on the first EVAL_IMAGES images (the first
    one untimed), in the trial's protocol."""
    from bench.data import build_dataset
    from bench.data.transforms import EvalTransform
    from bench.engine.evaluation.evaluate import evaluate

    val = build_dataset(cfg.data, cfg.data.val_split)
    if len(val) == 0:
        raise UserError(f"data.root: split '{cfg.data.val_split}' of {cfg.data.root} has no images")

    def run(k: int) -> float:
        t = time.perf_counter()
        evaluate(model, _FirstImages(val, k), cfg.eval, cfg.model.num_classes, "cpu" if _cpu(cfg) else None,
                 transform=EvalTransform(cfg.data), ignore_index=cfg.train.ignore_index,
                 default_crop_size=tuple(cfg.data.crop_size), num_workers=0)
        return time.perf_counter() - t

    run(1)  # warm-up
    k = min(EVAL_IMAGES, len(val))
    return run(k) / k, len(val)


def _cpu(cfg) -> bool:
    from bench.host.device import resolve_device

    return resolve_device(cfg.train.device, "train.device").type == "cpu"


def time_forward(cfg, model) -> Optional[float]:
    """One batch-1 inference at measure.input_size (after one untimed), as the measurement phase runs it."""
    import torch

    if not cfg.measure.enabled:
        return None
    from bench.engine.evaluation.inference import model_device

    h, w = cfg.measure.input_size
    x = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(0)).to(model_device(model))
    model.eval()
    with torch.inference_mode():
        model(x)
        t = time.perf_counter()
        model(x)
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
        return time.perf_counter() - t


def calibrate_model(trial, n: int) -> ModelCost:
    import torch

    from bench.host.device import resolve_device
    from bench.models import build_segmentor

    cfg = trial.config
    with _threads(trial_threads(trial)):
        train = time_training(cfg, n)
        torch.manual_seed(0)
        model = build_segmentor(cfg.model).to(resolve_device(cfg.train.device, "train.device"))
        eval_s, val_images = time_evaluation(cfg, model)
        forward_s = time_forward(cfg, model)
    return ModelCost(s_per_iter=train["s_per_iter"], setup_s=train["setup_s"], checkpoint_s=train["checkpoint_s"],
                     eval_s_per_image=eval_s, val_images=val_images, forward_s=forward_s,
                     source=f"calibrated ({train['timed_iters']} timed it)")


def time_startup() -> float:
    """Wall seconds of a fresh Python importing torch, Ray Tune and the engine, as every trial's worker and Ray's own
    processes do: the unit of the estimate's fixed overheads (bench.sweep.cost.estimate.Overheads). Importing Ray in
    that child starts no Ray."""
    import subprocess
    import sys

    code = "import torch, ray.tune, bench.engine.trainer, bench.sweep.tasks.trainable"
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise UserError(f"--calibrate: a fresh Python could not import the sweep's modules: "
                        f"{(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return time.perf_counter() - t


def calibrate(trials, n: int, note: Optional[Callable[[str], None]] = None) -> dict[str, ModelCost]:
    """{cost_key: ModelCost} for each distinct model among `trials` (TrialSpecs), n iterations each."""
    if n < 1:
        raise UserError(f"--calibrate: must be at least 1 iteration, got {n}")
    out: dict[str, ModelCost] = {}
    for t in trials:
        key = cost_key(t.config)
        if key in out:
            continue
        t0 = time.perf_counter()
        out[key] = calibrate_model(t, n)
        if note:
            note(f"calibrated {t.trial_id}: {out[key].s_per_iter:.3f} s/it, {time.perf_counter() - t0:.1f} s")
    return out


def measure_overheads(note: Optional[Callable[[str], None]] = None) -> Overheads:
    startup = time_startup()
    if note:
        note(f"process start-up (torch, Ray Tune, engine imports): {startup:.1f} s")
    return Overheads(startup_s=startup, source="measured")
