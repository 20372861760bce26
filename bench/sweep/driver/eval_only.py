"""Eval-only sweeps (`ifa-bench sweep EXP.yaml --checkpoints SPEC`): existing checkpoints evaluated over the dataset
and protocol axes, no training. Each (checkpoint, dataset) is a "trial" folder trials/<key>/ (key: config hash +
checkpoint path) holding only eval/<protocol>/ records; each protocol is a Ray task (bench/sweep/tasks/eval_tasks.py), at
most the sweep's concurrency at once. Rows have the columns of a trained sweep with `evaluate:`; training and
measurement columns stay empty. Without `evaluate:` the protocol is `ss`.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from bench.files.locking import DirLock
from bench.files.output_guard import SWEEP_MARKER, mark
from bench.sweep.driver import ray_run
from bench.sweep.driver.table import write_table
from bench.sweep.folder import layout
from bench.sweep.spec.checkpoints import loadable, resolve
from bench.sweep.spec.payload import spec_from_payload, trial_payload
from bench.sweep.spec.protocols import Protocol, check_trials
from bench.sweep.spec.trials import Sweep, TrialSpec, check_resources


def eval_payloads(sweep: Sweep, spec: str, sweep_dir: Path, fmt: str) -> list[dict]:
    protocols = sweep.protocols or [Protocol("ss")]
    targets = loadable(resolve(spec, sweep), fmt)
    trials = [TrialSpec(t.trial_id, t.config.config_hash(), t.axis_values, t.config, sweep.section.resources)
              for t in targets]
    check_trials(protocols, trials, str(sweep.path))
    payloads = []
    for target, trial in zip(targets, trials):
        p = trial_payload(trial, sweep_dir, sweep.name)
        p.update(trial_dir=str(layout.trial_dir(Path(sweep_dir).resolve(), target.key)),
                 checkpoint=str(target.checkpoint.resolve()), checkpoint_format=fmt,
                 config_label=target.config_label, protocols=[proto.as_dict() for proto in protocols])
        payloads.append(p)
    return payloads


def run_eval_only(sweep: Sweep, spec: str, sweep_dir: Path, *, address: str | None = None,
                  max_concurrent: int | None = None, checkpoint_format: str = "auto", stream=None):
    """Evaluate every (checkpoint, dataset, protocol) without a done record; returns the results DataFrame."""
    from bench.sweep.driver.cluster.ray_address import probe

    stream = stream or sys.stdout
    sweep_dir = Path(sweep_dir).resolve()
    if address is not None:
        probe(address)
    res = sweep.section.resources
    if address is None:
        check_resources(res, *ray_run.local_capacity(res), str(sweep.path))
    payloads = eval_payloads(sweep, spec, sweep_dir, checkpoint_format)  # every refusal before anything is written
    lock = DirLock(sweep_dir, "sweep folder")
    try:
        return _run(sweep, payloads, sweep_dir, lock, address, max_concurrent, stream)
    finally:
        lock.release()


def _run(sweep, payloads, sweep_dir, lock, address, max_concurrent, stream):
    import ray

    from bench.sweep.tasks import eval_tasks

    jobs = [j for p in payloads for j in eval_tasks.jobs_of(p)]
    ray_run.prepare_data([spec_from_payload(j["payload"]) for j in jobs], local=address is None)
    lock.acquire()
    mark(sweep_dir, SWEEP_MARKER, sweep.name + "\n")  # a later run of this sweep may write here (output_guard)
    write_table(sweep_dir, sweep.name, payloads)
    done, total = eval_tasks.eval_counts(payloads)
    print(f"[{sweep.name}] eval-only: {len(payloads)} checkpoint x dataset, {total} evaluations"
          + (f" ({done} already finished, kept)" if done else ""), file=stream, flush=True)
    if not jobs:
        return ray_run.summary(sweep_dir, sweep, payloads, {}, stream, 0.0)
    ray_run.quiet_ray_env()  # the embedded Ray's loopback setting is EmbeddedRay's, undone when it stops
    res = sweep.section.resources
    t0 = time.time()
    session = None
    try:
        session = ray_run.start_ray(address, sweep_dir)
        if address is not None:
            ray_run.check_cluster(res, str(sweep.path))
        concurrency = max_concurrent or sweep.section.max_concurrent or max(
            1, int(ray.cluster_resources().get("CPU", 1.0) // res.cpus))
        queue = eval_tasks.EvalQueue(concurrency, res.model_dump(), sweep.section.max_failures,
                                     on_change=ray_run.eval_events(sweep_dir, sweep.name, payloads, stream))
        queue.add(jobs)
        queue.drain()
    finally:
        ray_run.stop_ray(session)
    return ray_run.summary(sweep_dir, sweep, payloads, {}, stream, time.time() - t0)
