"""Run a sweep on Ray Tune: an embedded single-node Ray by default, or an existing cluster with `address`.

Idempotent by config hash: a trial with a done record (trials/<hash>/result.json) is never scheduled again, so a
rerun with extra axis values runs only the new trials. `resume=True` continues unfinished trials from their
checkpoints (restoring the Tune experiment with Tuner.restore when it holds exactly those trials); without it they
start over.
"""
from __future__ import annotations

import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from bench.errors import typed_line
from bench.files.json_records import read_json
from bench.files.atomic import write_json
from bench.files.locking import DirLock
from bench.files.output_guard import SWEEP_MARKER, mark
from bench.sweep.driver import ray_run
from bench.sweep.driver.cluster import ray_session
from bench.sweep.driver.cluster.ray_address import probe
from bench.sweep.driver.table import build_rows, write_table
from bench.sweep.folder import layout, records
from bench.results.schema import TRIALS
from bench.sweep.spec.payload import trial_payload
from bench.sweep.spec.trials import Resources, Sweep, check_resources
from bench.results.text_table import plural


def trial_resources(res: Resources):
    """Tune's resource request for one trial. With Ray Train workers the trial's own function only coordinates
    (a hundredth of a CPU); the workers reserve their own CPUs/GPUs through Ray Train."""
    from ray import tune

    if res.workers > 1:
        return tune.PlacementGroupFactory([{"CPU": 0.01}])
    from bench.sweep.spec.feasibility import worker_bundle

    return tune.PlacementGroupFactory([worker_bundle(res)])


def _experiment(sweep_dir: Path, payloads: list[dict], todo: list[dict], resume: bool, storage=None):
    """(name, restore?) of the Tune experiment: restore the last one when it ran exactly these trials."""
    from ray import tune

    state = read_json(sweep_dir / layout.TUNE_STATE) or {}
    name = state.get("name")
    all_hashes = sorted(p["config_hash"] for p in payloads)
    if resume and name and state.get("all") == all_hashes and {p["config_hash"] for p in todo} <= set(
            state.get("todo", [])):
        path = storage.path(layout.TUNE, name) if storage else str(layout.tune_dir(sweep_dir, name))
        if tune.Tuner.can_restore(path, storage_filesystem=storage.fs if storage else None):
            return name, True
    name = "run-" + datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    write_json(sweep_dir / layout.TUNE_STATE,
                              {"name": name, "all": all_hashes, "todo": [p["config_hash"] for p in todo]})
    return name, False


def run_sweep(sweep: Sweep, sweep_dir: Path, *, address: str | None = None, resume: bool = False,
              max_concurrent: int | None = None, stream=None, storage=None, remeasure: str | None = None) -> "object":
    """Run every trial without a done record; returns the final results DataFrame. One process per sweep folder
    (a lock in it); with `address`, nothing is written before the address answers (ray_address.probe).
    `storage` (bench.sweep.folder.storage.Storage, `--storage`): the sweep's persistent state lives there and
    `sweep_dir` is the driver's local copy; the storage is checked (bucket, endpoint, a test write) before anything
    runs. `remeasure` ("noisy" or "all"): measure those stored models again first and rewrite the completed trials'
    rows with the new records (bench.sweep.tasks.measurement.to_measure)."""
    sweep_dir = Path(sweep_dir).resolve()
    if address is not None:
        probe(address)
    if storage is not None:
        from bench.sweep.folder.storage import check_storage

        check_storage(storage)
    lock = DirLock(sweep_dir, "sweep folder")
    try:
        df = _run_sweep(sweep, sweep_dir, lock, address=address, resume=resume, max_concurrent=max_concurrent,
                        stream=stream or sys.stdout, storage=storage, remeasure=remeasure)
        if storage is not None:
            from bench.sweep.folder.storage import push_sweep

            push_sweep(storage, sweep_dir)
            print(f"storage: {storage.display} ({', '.join(layout.TABLE_FILES)}, {TRIALS}/)",
                  file=stream or sys.stdout)
        return df
    finally:
        lock.release()


def _run_sweep(sweep: Sweep, sweep_dir: Path, lock: DirLock, *, address: str | None, resume: bool,
               max_concurrent: int | None, stream, storage=None, remeasure: str | None = None) -> "object":
    res = sweep.section.resources
    if address is None:
        cpus, gpus = ray_run.local_capacity(res)
        check_resources(res, cpus, gpus, str(sweep.path))
    payloads = [trial_payload(t, sweep_dir, sweep.name) for t in sweep.trials]
    for p in payloads if sweep.protocols else ():  # `evaluate:` (bench/sweep/tasks/eval_tasks.py)
        p["protocols"] = [proto.as_dict() for proto in sweep.protocols]
    if storage is not None:  # the URI's records decide what is done; trials read and write them there
        from bench.sweep.folder.storage import pull_sweep

        pull_sweep(storage, sweep_dir, [p["config_hash"] for p in payloads])
        for p in payloads:
            p["storage"] = storage.uri
    todo = [p for p in payloads if records.read_done(Path(p["trial_dir"])) is None]
    from bench.sweep.tasks.eval_tasks import jobs_of

    eval_todo = [j for p in payloads for j in jobs_of(p)]  # evaluations of trials finished earlier
    todo_hashes = {p["config_hash"] for p in todo} | {j["payload"]["config_hash"] for j in eval_todo}
    ray_run.prepare_data([t for t in sweep.trials if t.config_hash in todo_hashes], local=address is None)
    lock.acquire()
    mark(sweep_dir, SWEEP_MARKER, sweep.name + "\n")  # a later run of this sweep may write here (output_guard)
    ended = ray_session.end_leftovers(sweep_dir)
    if ended:
        print(f"[{sweep.name}] ended {len(ended)} Ray processes left by an earlier run of this sweep", file=stream)
    if not resume:
        for p in todo:
            records.clear_unfinished(Path(p["trial_dir"]))
    skipped = len(payloads) - len(todo)
    write_table(sweep_dir, sweep.name, payloads)
    if skipped:
        print(f"[{sweep.name}] {skipped} of {plural(len(payloads), 'trial')} already finished (kept, not rerun)", file=stream)
    if not todo and not eval_todo and not remeasure:
        return ray_run.summary(sweep_dir, sweep, payloads, {}, stream, 0.0)

    ray_run.quiet_ray_env()  # the embedded Ray's loopback setting is EmbeddedRay's, undone when it stops
    import ray
    from ray import tune

    from bench.sweep.driver.progress import SweepProgress
    from bench.sweep.tasks.trainable import run_trial
    from bench.sweep.driver.tune_loggers import tune_file_loggers

    concurrency = max_concurrent or sweep.section.max_concurrent
    t0 = time.time()
    failed: dict[str, str] = {}
    session = None
    ray_times: dict[str, float] = {}  # the embedded Ray's own start and stop: most of a sweep's fixed cost
    try:
        started = time.time()
        session = ray_run.start_ray(address, sweep_dir)
        if session is not None:
            ray_times["started"] = time.time() - started
        ray_run.check_cluster(res, str(sweep.path))  # embedded Ray too: a custom resource it lacks would wait forever
        if concurrency is None:
            total_cpu = ray.cluster_resources().get("CPU", 1.0)
            per_trial = res.cpus * res.workers + (0.01 if res.workers > 1 else 0)
            concurrency = max(1, int(total_cpu // per_trial))
        from bench.sweep.tasks.measurement import measure_key, run_phase

        # before any trial trains: docs/sweeps.md
        measured = run_phase(payloads if remeasure else todo, sweep_dir, sweep.name, stream, remeasure=remeasure)
        if remeasure:
            from bench.sweep.tasks.measurement import rewrite_done_rows

            n = rewrite_done_rows(payloads, sweep_dir, measured)
            print(f"[{sweep.name}] {plural(n, 'completed row')} rewritten with the new measurements", file=stream)
            write_table(sweep_dir, sweep.name, payloads)
        from bench.sweep.driver import eval_scheduling
        from bench.sweep.tasks import eval_tasks
        queue = None  # started only now: the measurement phase stays alone on its node
        if sweep.protocols:
            queue = eval_tasks.EvalQueue(concurrency, res.model_dump(), sweep.section.max_failures,
                                         on_change=ray_run.eval_events(sweep_dir, sweep.name, payloads, stream))
            queue.add(eval_todo)
        eval_tasks.activate(queue, payloads)
        for p in todo:
            p["measurement"] = measured.get(measure_key(p))
        if not todo:  # only evaluations (or, with remeasure, nothing) left
            if queue is not None:
                queue.drain()
            return ray_run.summary(sweep_dir, sweep, payloads, {}, stream, time.time() - t0)
        name, restore = _experiment(sweep_dir, payloads, todo, resume, storage)
        tune_root = storage.path(layout.TUNE) if storage else str(layout.tune_dir(sweep_dir))
        tune_fs = storage.fs if storage else None
        trainable = tune.with_resources(run_trial, trial_resources(res))
        loggers = tune_file_loggers()  # also switches Tune's automatic loggers off for a restored run
        if restore:
            print(f"[{sweep.name}] resuming Tune experiment {name}", file=stream)
            tuner = tune.Tuner.restore(f"{tune_root}/{name}", trainable, resume_unfinished=True,
                                       resume_errored=True, restart_errored=False, storage_filesystem=tune_fs)
        else:
            from bench.sweep.cost.cost_report import run_estimates

            progress = SweepProgress(str(sweep_dir), sweep.name, payloads, concurrency, run_estimates(sweep, sweep_dir))
            for p in todo:  # a multi-worker trial's Ray Train run is named after it (resumes within it)
                p["experiment"] = name
            tuner = tune.Tuner(
                trainable,
                param_space={"trial": tune.grid_search(todo)},
                tune_config=tune.TuneConfig(
                    **eval_scheduling.tune_options(queue, concurrency),
                    trial_dirname_creator=lambda t: t.config["trial"]["config_hash"],
                    trial_name_creator=lambda t: t.config["trial"]["trial_id"],
                ),
                run_config=tune.RunConfig(
                    name=name, storage_path=tune_root, storage_filesystem=tune_fs, verbose=0,
                    callbacks=[progress, *loggers] + eval_scheduling.callbacks(queue),
                    failure_config=tune.FailureConfig(max_failures=sweep.section.max_failures),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                    log_to_file=True,
                ),
            )
        grid = tuner.fit()
        if storage is not None:
            from bench.sweep.folder.storage import pull_sweep

            pull_sweep(storage, sweep_dir, [p["config_hash"] for p in payloads])
        for result in grid:
            if result.error is None and (result.metrics or {}).get("kind") == "user_error":
                failed[result.config["trial"]["config_hash"]] = result.metrics.get("error", "bad input")
            elif result.error is not None:
                h = result.config["trial"]["config_hash"]
                if records.read_done(layout.trial_dir(sweep_dir, h)) is None:
                    rec = records.read_failure(layout.trial_dir(sweep_dir, h))
                    failed[h] = (rec or {}).get("error") or typed_line(result.error)
        if queue is not None:
            for p in payloads:  # a trial whose completion Tune reported before a restore
                queue.add(jobs_of(p))
            queue.drain()  # a failed evaluation is a failed row (its failure.json), as a failed trial is
    finally:
        from bench.sweep.tasks.eval_tasks import activate

        activate(None, [])
        stopping = time.time()
        ray_run.stop_ray(session)
        if session is not None:
            ray_times["stopped"] = time.time() - stopping
        if storage is not None:
            from bench.sweep.folder.storage import pull_sweep

            pull_sweep(storage, sweep_dir, [p["config_hash"] for p in payloads])
    if len(ray_times) == 2:
        print(f"[{sweep.name}] embedded Ray: started in {ray_times['started']:.1f} s, stopped in "
              f"{ray_times['stopped']:.1f} s", file=stream)
    return ray_run.summary(sweep_dir, sweep, payloads, failed, stream, time.time() - t0)


__all__ = ["run_sweep", "build_rows"]
