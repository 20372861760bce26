"""Evaluation protocols as their own Ray tasks: one task per (trial, protocol), on the trial's final checkpoint.

Records, each written atomically, in the trial's folder:

    trials/<hash>/eval/<protocol>/result.json    the done record (metrics of this protocol); never rerun
    trials/<hash>/eval/<protocol>/per_image.npz  per-image intersections/unions (bench/engine/evaluation/bootstrap.py)
    trials/<hash>/eval/<protocol>/failure.json   the last attempt's error ("final": no retry left)

A task takes the trial's own resources (`sweep.resources`: cpus, gpus of one worker) and is retried by Ray up to
`sweep.max_failures` times on an unexpected error; bad input (UserError) fails it at once. The driver keeps every
started evaluation plus every live trial within the sweep's concurrency (EvalQueue, BudgetedVariants), so they
share the trial budget: an evaluation of a finished trial runs while other trials train, never beside more than
the budget allows.
"""
from __future__ import annotations

import os
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

from bench.files.json_records import read_json
from bench.files.atomic import write_json
from bench.errors import UserError, one_line, typed_line
from bench.sweep.folder import layout, records
from bench.sweep.spec.protocols import from_dict
from bench.sweep.spec.trials import Resources


def protocols_of(payload: dict) -> list:
    """The payload's protocols that apply to its config (ifa_* only for IFA heads)."""
    from bench.config import ExperimentConfig

    protos = [from_dict(d) for d in payload.get("protocols") or []]
    if not protos:
        return []
    cfg = ExperimentConfig.model_validate(payload["cfg"])
    return [p for p in protos if p.applies_to(cfg)]


def checkpoint_of(payload: dict) -> Path:
    """The checkpoint a protocol evaluates: the eval-only target's file, else the trial's final one."""
    if payload.get("checkpoint"):
        return Path(payload["checkpoint"])
    return layout.checkpoint_dir(Path(payload["trial_dir"])) / layout.LAST_CHECKPOINT


def trial_ready(payload: dict) -> bool:
    """Its evaluations may start: an eval-only target always, a trained trial once its done record exists."""
    return bool(payload.get("checkpoint")) or records.read_done(Path(payload["trial_dir"])) is not None


def eval_counts(payloads: list[dict]) -> tuple[int, int]:
    """(finished evaluations, all evaluations) of the sweep, from the records."""
    done = total = 0
    for p in payloads:
        for proto in protocols_of(p):
            total += 1
            done += records.read_eval_done(Path(p["trial_dir"]), proto.name) is not None
    return done, total


def jobs_of(payload: dict) -> list[dict]:
    """The unfinished evaluations of one ready trial, as task inputs."""
    if not trial_ready(payload):
        return []
    trial_dir = Path(payload["trial_dir"])
    return [{"payload": payload, "protocol": proto.as_dict()} for proto in protocols_of(payload)
            if records.read_eval_done(trial_dir, proto.name) is None]


# -------------------------------------------------------------------------------------------------------------
# the task


def _threads(payload: dict) -> int:
    return Resources(**payload["resources"]).threads(payload["cfg"]["train"].get("threads"))


def evaluate_protocol(job: dict) -> dict:
    """Evaluate one protocol on one checkpoint and write its records. Runs as a Ray task (or in-process).
    Returns {"ok": True, "metrics": ...} or {"ok": False, "error": line} for bad input; raises on anything else
    (after writing failure.json) so that Ray retries it."""
    import torch

    from bench.config import ExperimentConfig
    from bench.convert.loading import model_from_checkpoint
    from bench.host.device import resolve_device
    from bench.engine.evaluation.checkpoint_eval import evaluate_with_interval, open_split, save_per_image

    payload, proto = job["payload"], from_dict(job["protocol"])
    if payload.get("cwd") and Path(payload["cwd"]).is_dir():
        os.chdir(payload["cwd"])  # relative data.root means what it meant to the driver
    protocol_dir = layout.eval_dir(Path(payload["trial_dir"]), proto.name)
    protocol_dir.mkdir(parents=True, exist_ok=True)
    attempts = (read_json(protocol_dir / layout.ATTEMPTS) or {}).get("count", 0) + 1
    write_json(protocol_dir / layout.ATTEMPTS, {"count": attempts, "last_started_at": records.now()})
    ckpt = checkpoint_of(payload)
    where = payload.get("config_label") or f"trial {payload['trial_id']}"
    try:
        cfg = ExperimentConfig.model_validate(payload["cfg"])
        eval_cfg = proto.eval_config(cfg, f"sweep.evaluate {proto.name!r} (trial {payload['trial_id']})")
        torch.set_num_threads(_threads(payload))
        torch.manual_seed(cfg.seed)
        device = resolve_device(cfg.train.device, "train.device")
        model, meta = model_from_checkpoint(ckpt, cfg, where, device, payload.get("checkpoint_format") or "auto")
        dataset = open_split(cfg, None, where)
        t0 = time.time()
        metrics, inter, union = evaluate_with_interval(model, cfg, eval_cfg, device, dataset)
        save_per_image(protocol_dir / layout.PER_IMAGE, inter, union)  # before the done record: a done record has its data
        record = {
            "protocol": proto.name, "overrides": proto.overrides, "checkpoint": str(ckpt),
            "checkpoint_iter": meta.get("iter"), "config_hash": payload["config_hash"], "device": str(device),
            "threads": torch.get_num_threads(), "torch_version": torch.__version__, "attempts": attempts,
            "started_at": datetime.fromtimestamp(t0, timezone.utc).isoformat(timespec="seconds"),
            "finished_at": records.now(), "metrics": metrics,
        }
        write_json(protocol_dir / layout.RESULT, record)
        records.clear_failure(protocol_dir)
        return {"ok": True, "metrics": {k: metrics.get(k) for k in ("miou", "miou_ci_low", "miou_ci_high")}}
    except UserError as exc:  # the same every time: no retry
        line = one_line(exc, 500)
        records.write_failure(protocol_dir, line, final=True, attempt=attempts, at=records.now())
        return {"ok": False, "error": line}
    except BaseException as exc:
        line = typed_line(exc)
        records.write_failure(protocol_dir, line, final=False, attempt=attempts, at=records.now(),
                              traceback=traceback.format_exc())
        raise


# -------------------------------------------------------------------------------------------------------------
# scheduling in the driver


class EvalQueue:
    """Evaluations waiting for a slot, and those running as Ray tasks. A slot is one unit of the sweep's
    concurrency, shared with live trials: `pump(live_trials)` starts evaluations only while
    live trials + running evaluations < budget."""

    def __init__(self, budget: int, resources: dict, max_failures: int, on_change: Callable[[str], None]):
        self.budget = max(1, int(budget))
        self.resources = resources
        self.max_failures = int(max_failures)
        self.on_change = on_change
        self.waiting: list[dict] = []
        self.running: dict = {}  # ObjectRef -> job
        self.failed: dict[tuple[str, str], str] = {}  # (config_hash, protocol) -> error
        self._known: set[tuple[str, str]] = set()

    @staticmethod
    def key(job: dict) -> tuple[str, str]:
        return job["payload"]["trial_dir"], job["protocol"]["name"]

    def add(self, jobs: list[dict]) -> None:
        for job in jobs:
            if self.key(job) not in self._known:
                self._known.add(self.key(job))
                records.clear_failure(layout.eval_dir(Path(job["payload"]["trial_dir"]), job["protocol"]["name"]))
                self.waiting.append(job)

    @property
    def busy(self) -> int:
        return len(self.running)

    def pending(self) -> int:
        return len(self.waiting) + len(self.running)

    def _submit(self, job: dict) -> None:
        import ray

        task = ray.remote(evaluate_protocol).options(
            num_cpus=self.resources["cpus"], num_gpus=self.resources["gpus"],
            max_retries=self.max_failures, retry_exceptions=True,
        )
        self.running[task.remote(job)] = job

    def pump(self, live_trials: int = 0) -> None:
        """Collect finished evaluations; start waiting ones into free slots."""
        import ray

        if self.running:
            ready, _ = ray.wait(list(self.running), num_returns=len(self.running), timeout=0)
            for ref in ready:
                self._finish(ref)
        while self.waiting and live_trials + len(self.running) < self.budget:
            self._submit(self.waiting.pop(0))

    def _finish(self, ref) -> None:
        import ray

        job = self.running.pop(ref)
        payload, name = job["payload"], job["protocol"]["name"]
        try:
            res = ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - retries exhausted; failure.json has the attempt's line
            protocol_dir = layout.eval_dir(Path(payload["trial_dir"]), name)
            rec = records.read_failure(protocol_dir) or {}
            res = {"ok": False, "error": rec.get("error") or typed_line(exc)}
            earlier = {k: v for k, v in rec.items() if k not in ("error", "final")}
            records.write_failure(protocol_dir, res["error"], **earlier, final=True)
        if res.get("ok"):
            miou = (res.get("metrics") or {}).get("miou")
            self.on_change(f"evaluated {payload['trial_id']} {name}"
                           + (f" (mIoU {miou:.2f})" if isinstance(miou, (int, float)) else ""))
        else:
            self.failed[(payload["config_hash"], name)] = res["error"]
            self.on_change(f"FAILED evaluation {payload['trial_id']} {name}: {res['error']}")

    def drain(self, poll_s: float = 0.2) -> None:
        """Run every remaining evaluation (no trial is live any more)."""
        while self.waiting or self.running:
            self.pump(0)
            if self.running:
                import ray

                ray.wait(list(self.running), num_returns=1, timeout=poll_s * 10)


# The queue of the sweep this driver runs now. Tune pickles its callbacks and search algorithm with the experiment
# (Tuner.restore brings them back), so they find the queue here instead of holding it.
_ACTIVE: Optional[EvalQueue] = None
_PAYLOADS: dict[str, dict] = {}


def activate(queue: Optional[EvalQueue], payloads: list[dict]) -> None:
    global _ACTIVE, _PAYLOADS
    _ACTIVE = queue
    _PAYLOADS = {p["config_hash"]: p for p in payloads}


def active() -> Optional[EvalQueue]:
    return _ACTIVE


def on_trial_done(config_hash: str) -> None:
    """A trial finished (Tune callback): queue its evaluations."""
    queue, payload = _ACTIVE, _PAYLOADS.get(config_hash)
    if queue is not None and payload is not None:
        queue.add(jobs_of(payload))

