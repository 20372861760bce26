"""Compact live view of a sweep: one line per change, and the results table rewritten as trials finish."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ray.tune import Callback

from bench.files.atomic import write_json
from bench.sweep.driver.table import write_table
from bench.sweep.folder import layout, records


def fmt_duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class SweepProgress(Callback):
    """Picklable (Tune stores it with the experiment and Tuner.restore brings it back); runtime state lives in setup.

    `payloads` are every trial of the spec (bench.sweep.spec.payload.trial_payload), in table order."""

    def __init__(self, sweep_dir: str, name: str, payloads: list[dict], max_concurrent: int,
                 estimates: dict[str, float] | None = None):
        self.sweep_dir = sweep_dir
        self.name = name
        self.payloads = list(payloads)
        self.ids = {p["config_hash"]: p["trial_id"] for p in payloads}
        self.max_concurrent = max_concurrent
        self.total = len(payloads)
        self.estimates = dict(estimates or {})  # config hash -> estimated wall s (bench.sweep.cost.estimate)
        self._state()

    def _state(self):
        self.running: set[str] = set()
        self.failed: dict[str, str] = {}
        self.durations: list[float] = []
        self.started: dict[str, float] = {}
        self.finished_s: dict[str, float] = {}  # config hash -> wall s of the trials finished in this run
        self.iters: dict[str, int] = {}
        self.t0 = time.time()
        self.last_line = 0.0

    def setup(self, **info):
        self._state()
        self._emit("started")

    # -- counting --------------------------------------------------------------------------------------------------
    def _done(self) -> dict[str, dict]:
        out = {}
        for h in self.ids:
            rec = records.read_done(layout.trial_dir(Path(self.sweep_dir), h))
            if rec:
                out[h] = rec["row"]
        return out

    def _emit(self, event: str, rewrite: bool = True) -> None:
        done = self._done()
        # A trial writes its result before Tune reports it complete: in between it is done, not running (counted
        # twice, it made the line say "pending -1").
        running = self.running - done.keys()
        n_done, n_run = len(done), len(running)
        n_fail = len(self.failed.keys() - done.keys() - running)
        pending = self.total - n_done - n_run - n_fail
        best = max(done.values(), key=lambda r: r.get("miou") or -1, default=None)
        best_s = f"best mIoU {best['miou']:.2f} ({best['trial_id']})" if best and best.get("miou") is not None else "best mIoU -"
        eta = "-"
        if self.durations and (pending + n_run):
            mean = sum(self.durations) / len(self.durations)
            eta = fmt_duration(mean * (pending + n_run) / max(1, min(self.max_concurrent, pending + n_run)))
        line = (f"[{self.name}] {fmt_duration(time.time() - self.t0)}  done {n_done}/{self.total}  running {n_run}  "
                f"pending {pending}  failed {n_fail}  |  {best_s}  |  ETA {eta}  |  {self._device_hours(done)}")
        if any(p.get("protocols") for p in self.payloads):  # `evaluate:`: finished / all evaluations
            from bench.sweep.tasks.eval_tasks import eval_counts

            line += "  |  eval {}/{}".format(*eval_counts(self.payloads))
        if event:
            line += f"  <- {event}"
        self.last_line = time.time()
        print(line, file=sys.stdout, flush=True)
        if rewrite:
            write_table(Path(self.sweep_dir), self.name, self.payloads, running=self.running, failed=self.failed)

    def _device_hours(self, done: dict) -> str:
        """`CPU-h 0.012 spent / 0.050 projected`: what the trials of this run held so far, and that plus what the
        unfinished ones will hold: a trial's estimate (an earlier sweep's records), else a running trial's own pace,
        else the mean wall time of the trials finished so far (or, before any finished, of the running ones' paces)."""
        held = {p["config_hash"]: p["resources"] for p in self.payloads}
        first = next(iter(held.values()), {"cpus": 1, "gpus": 0, "workers": 1})
        unit = "GPU-h" if first.get("gpus") else "CPU-h"

        def devices(h: str) -> float:
            r = held.get(h, first)
            return (r["gpus"] if unit == "GPU-h" else r["cpus"]) * r.get("workers", 1)

        now = time.time()
        spent = sum(devices(h) * s for h, s in self.finished_s.items())
        spent += sum(devices(h) * (now - self.started.get(h, now)) for h in self.running)
        total_iters = {p["config_hash"]: p["cfg"]["train"]["iterations"] for p in self.payloads}
        # A running trial's own pace projects its wall time (its setup counted as if it were training).
        paced = {h: (now - self.started[h]) * total_iters.get(h, 1) / self.iters[h] for h in self.running
                 if self.iters.get(h, 0) > 0 and h in self.started}
        known = self.durations or list(paced.values())
        mean = sum(known) / len(known) if known else None
        rest = 0.0
        for h in held:
            if h in done or h in self.failed or h in self.finished_s:
                continue
            ran = now - self.started[h] if h in self.running and h in self.started else 0.0
            guess = getattr(self, "estimates", {}).get(h) or paced.get(h, mean)
            if guess is None:
                return f"{unit} {spent / 3600:.3f} spent / - projected"
            rest += devices(h) * max(0.0, guess - ran)
        return f"{unit} {spent / 3600:.3f} spent / {(spent + rest) / 3600:.3f} projected"

    @staticmethod
    def _hash(trial) -> str:
        return trial.config["trial"]["config_hash"]

    def _id(self, trial) -> str:
        return self.ids.get(self._hash(trial), self._hash(trial))

    # -- Tune events -----------------------------------------------------------------------------------------------
    def on_trial_start(self, iteration, trials, trial, **info):
        h = self._hash(trial)
        self.running.add(h)
        self.failed.pop(h, None)
        self.started[h] = time.time()
        self._emit(f"started {self._id(trial)}")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        h = self._hash(trial)
        if isinstance(result.get("iter"), (int, float)):
            self.iters[h] = int(result["iter"])
        if time.time() - self.last_line >= 30:  # a heartbeat while trials run
            total = {p["config_hash"]: p["cfg"]["train"]["iterations"] for p in self.payloads}
            self._emit(", ".join(f"{self.ids.get(r, r)} at {self.iters.get(r, 0)}/{total.get(r, '?')}"
                                 for r in sorted(self.running)), rewrite=False)

    def on_trial_recover(self, iteration, trials, trial, **info):
        self._emit(f"retrying {self._id(trial)} {self._retry_from(trial)}")

    @staticmethod
    def _retry_from(trial) -> str:
        """Where the retry starts, as far as the driver knows: Tune's latest registered checkpoint. A checkpoint can be
        in storage without being registered (the node died between the upload and the driver receiving the report);
        the attempt then restores that one (checkpoint_handoff.newest_stored) and its attempt record says so."""
        latest = getattr(trial, "latest_checkpoint_result", None)
        if latest is None or getattr(latest, "checkpoint", None) is None:
            return "from the newest checkpoint it left in storage, else from the start (none had reached the driver)"
        it = (getattr(latest, "metrics", None) or {}).get("iter")
        where = f"its checkpoint at iteration {it}" if it is not None else "its last checkpoint"
        return f"from {where} (or a newer one it left in storage)"

    def on_trial_complete(self, iteration, trials, trial, **info):
        h = self._hash(trial)
        self.running.discard(h)
        last = trial.last_result or {}
        if last.get("kind") == "user_error":
            self.failed[h] = last.get("error", "bad input")
            self._emit(f"FAILED {self._id(trial)}: {self.failed[h]}")
            return
        trial_dir = layout.trial_dir(Path(self.sweep_dir), h)
        if records.read_done(trial_dir) is None and last.get("result_json"):  # storage not shared with the worker
            write_json(trial_dir / layout.RESULT, json.loads(last["result_json"]))
        if h in self.started:
            self.durations.append(time.time() - self.started[h])
            self.finished_s[h] = self.durations[-1]
        row = (records.read_done(trial_dir) or {}).get("row", {})
        miou = row.get("miou")
        detail = f"mIoU {miou:.2f}" if isinstance(miou, (int, float)) else "no mIoU"
        if isinstance(row.get("gmacs"), (int, float)):
            detail += f", {row['gmacs']:.2f} GMACs"
        if row.get("latency_noisy"):
            detail += ", WARNING: noisy latency"
        self._emit(f"finished {self._id(trial)} ({detail})")

    def on_trial_error(self, iteration, trials, trial, **info):
        h = self._hash(trial)
        self.running.discard(h)
        if h in self.started:  # its time was held all the same
            self.finished_s[h] = time.time() - self.started[h]
        self.failed[h] = error_message(trial, self.sweep_dir)
        self._emit(f"FAILED {self._id(trial)}: {self.failed[h]}")


def error_message(trial, sweep_dir: str) -> str:
    """The trial's own error line (failure.json), else the last line of Tune's error file."""
    rec = records.read_failure(layout.trial_dir(Path(sweep_dir), trial.config["trial"]["config_hash"]))
    if rec and rec.get("error"):
        return rec["error"]
    try:
        lines = [ln for ln in Path(trial.error_file).read_text().splitlines() if ln.strip()]
        return lines[-1].strip()[:500]
    except (OSError, TypeError):
        return "failed (no error message recorded)"
