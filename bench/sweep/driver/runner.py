"""Run a sweep on Ray Tune: an embedded single-node Ray by default, or an existing cluster with `address`.

Idempotent by config hash: a trial with a done record (trials/<hash>/result.json) is never scheduled again, so a
rerun with extra axis values runs only the new trials. `resume=True` continues unfinished trials from their
checkpoints (restoring the Tune experiment with Tuner.restore when it holds exactly those trials); without it they
start over.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from bench.files.locking import DirLock
from bench.sweep.driver.cluster import ray_session
from bench.sweep.folder import records
from bench.sweep.driver.cluster.ray_address import probe
from bench.sweep.spec.trials import Resources, Sweep, check_resources
from bench.sweep.driver.table import build_rows, trial_payload, write_table

STATE = "tune_experiment.json"  # which Tune experiment ran which trials


def _quiet_ray_env() -> None:
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    # A failed attempt is one line of the progress view; its traceback is in trials/<hash>/failure.json and trial.log.
    logging.getLogger("ray.tune.execution.tune_controller").setLevel(logging.CRITICAL)
    logging.getLogger("ray.tune.tune").setLevel(logging.CRITICAL)  # "Trials did not complete": our summary says it


def local_capacity(res: Resources) -> tuple[float, float]:
    """(CPUs, GPUs) of this machine, for check_resources. GPUs are counted only when `res` asks for some: counting
    them imports torch, which a CPU sweep's driver never needs (about 2 s of its start on 2 cores)."""
    gpus = 0
    if res.total()[1] > 0:
        try:
            import torch

            gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        except Exception:  # noqa: BLE001
            gpus = 0
    return float(os.cpu_count() or 1), float(gpus)


def trial_resources(res: Resources):
    """Tune's resource request for one trial. With Ray Train workers the trial's own function only coordinates
    (a hundredth of a CPU); the workers reserve their own CPUs/GPUs through Ray Train."""
    from ray import tune

    if res.workers > 1:
        return tune.PlacementGroupFactory([{"CPU": 0.01}])
    from bench.sweep.spec.feasibility import worker_bundle

    return tune.PlacementGroupFactory([worker_bundle(res)])


def check_cluster(res: Resources, where: str) -> None:
    """Every bundle must fit on some node and the trial on the cluster (bench/sweep/spec/feasibility.py)."""
    from bench.sweep.spec.feasibility import check_cluster as check

    check(res, where)


def prepare_data(trials, local: bool) -> None:
    """Generate synthetic datasets once (not by concurrent trials), and on a local run check every dataset's
    layout, so that data problems are one-line errors before Ray starts."""
    from bench.data import build_dataset

    seen = set()
    for t in trials:
        data = t.config.data
        key = data.model_dump_json()
        if key in seen:
            continue
        seen.add(key)
        if (data.dataset == "synthetic" and data.generate) or local:
            for split in dict.fromkeys((data.train_split, data.val_split)):
                build_dataset(data, split)


def _start_ray(address: str | None, out: Path):
    """Join the cluster at `address`, or start the embedded Ray (returned, to be stopped)."""
    if address:
        ray_session.join_cluster(address)
        return None
    session = ray_session.EmbeddedRay(out)
    session.start()
    return session


def _experiment(out: Path, payloads: list[dict], todo: list[dict], resume: bool, storage=None):
    """(name, restore?) of the Tune experiment: restore the last one when it ran exactly these trials."""
    from ray import tune

    state = records.read_json(out / STATE) or {}
    name = state.get("name")
    all_hashes = sorted(p["config_hash"] for p in payloads)
    if resume and name and state.get("all") == all_hashes and {p["config_hash"] for p in todo} <= set(
            state.get("todo", [])):
        path = storage.path("tune", name) if storage else str(out / "tune" / name)
        if tune.Tuner.can_restore(path, storage_filesystem=storage.fs if storage else None):
            return name, True
    name = "run-" + datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    records.atomic_write_json(out / STATE, {"name": name, "all": all_hashes, "todo": [p["config_hash"] for p in todo]})
    return name, False


def run_sweep(sweep: Sweep, out: Path, *, address: str | None = None, resume: bool = False,
              max_concurrent: int | None = None, stream=None, storage=None) -> "object":
    """Run every trial without a done record; returns the final results DataFrame. One process per sweep folder
    (a lock in it); with `address`, nothing is written before the address answers (ray_address.probe).
    `storage` (bench.sweep.folder.storage.Storage, `--storage`): the sweep's persistent state lives there and `out` is the
    driver's local copy; the storage is checked (bucket, endpoint, a test write) before anything runs."""
    out = Path(out).resolve()
    if address is not None:
        probe(address)
    if storage is not None:
        from bench.sweep.folder.storage import check_storage

        check_storage(storage)
    lock = DirLock(out, "sweep folder")
    try:
        df = _run_sweep(sweep, out, lock, address=address, resume=resume, max_concurrent=max_concurrent,
                        stream=stream or sys.stdout, storage=storage)
        if storage is not None:
            from bench.sweep.folder.storage import push_sweep

            push_sweep(storage, out)
            print(f"storage: {storage.display} (results.csv, results.parquet, per_class_iou.csv, trials/)",
                  file=stream or sys.stdout)
        return df
    finally:
        lock.release()


def _run_sweep(sweep: Sweep, out: Path, lock: DirLock, *, address: str | None, resume: bool,
               max_concurrent: int | None, stream, storage=None) -> "object":
    res = sweep.section.resources
    if address is None:
        cpus, gpus = local_capacity(res)
        check_resources(res, cpus, gpus, str(sweep.path))
    payloads = [trial_payload(t, out, sweep.name) for t in sweep.trials]
    for p in payloads if sweep.protocols else ():  # `evaluate:` (bench/sweep/tasks/eval_tasks.py)
        p["protocols"] = [proto.as_dict() for proto in sweep.protocols]
    if storage is not None:  # the URI's records decide what is done; trials read and write them there
        from bench.sweep.folder.storage import pull_sweep

        pull_sweep(storage, out, [p["config_hash"] for p in payloads])
        for p in payloads:
            p["storage"] = storage.uri
    todo = [p for p in payloads if records.read_done(Path(p["trial_dir"])) is None]
    from bench.sweep.tasks.eval_tasks import jobs_of

    eval_todo = [j for p in payloads for j in jobs_of(p)]  # evaluations of trials finished earlier
    todo_hashes = {p["config_hash"] for p in todo} | {j["payload"]["config_hash"] for j in eval_todo}
    prepare_data([t for t in sweep.trials if t.config_hash in todo_hashes], local=address is None)
    lock.acquire()
    ended = ray_session.end_leftovers(out)
    if ended:
        print(f"[{sweep.name}] ended {len(ended)} Ray processes left by an earlier run of this sweep", file=stream)
    if not resume:
        for p in todo:
            records.clear_unfinished(Path(p["trial_dir"]))
    skipped = len(payloads) - len(todo)
    write_table(out, sweep.name, payloads)
    if skipped:
        print(f"[{sweep.name}] {skipped} of {len(payloads)} trials already finished (kept, not rerun)", file=stream)
    if not todo and not eval_todo:
        return _summary(out, sweep, payloads, {}, stream, 0.0)

    _quiet_ray_env()  # the embedded Ray's loopback setting is EmbeddedRay's, undone when it stops
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
        session = _start_ray(address, out)
        if session is not None:
            ray_times["started"] = time.time() - started
        check_cluster(res, str(sweep.path))  # embedded Ray too: a custom resource it lacks would wait forever
        if concurrency is None:
            total_cpu = ray.cluster_resources().get("CPU", 1.0)
            per_trial = res.cpus * res.workers + (0.01 if res.workers > 1 else 0)
            concurrency = max(1, int(total_cpu // per_trial))
        from bench.sweep.tasks.measurement import measure_key, run_phase

        measured = run_phase(todo, out, sweep.name, stream)  # before any trial trains: docs/sweeps.md
        from bench.sweep.driver import eval_scheduling
        from bench.sweep.tasks import eval_tasks
        queue = None  # started only now: the measurement phase stays alone on its node
        if sweep.protocols:
            queue = eval_tasks.EvalQueue(concurrency, res.model_dump(), sweep.section.max_failures,
                                         on_change=_eval_events(out, sweep.name, payloads, stream))
            queue.add(eval_todo)
        eval_tasks.activate(queue, payloads)
        for p in todo:
            p["measurement"] = measured.get(measure_key(p))
        if not todo:  # only evaluations left
            queue.drain()
            return _summary(out, sweep, payloads, {}, stream, time.time() - t0)
        name, restore = _experiment(out, payloads, todo, resume, storage)
        tune_root = storage.path("tune") if storage else str(out / "tune")
        tune_fs = storage.fs if storage else None
        trainable = tune.with_resources(run_trial, trial_resources(res))
        loggers = tune_file_loggers()  # also switches Tune's automatic loggers off for a restored run
        if restore:
            print(f"[{sweep.name}] resuming Tune experiment {name}", file=stream)
            tuner = tune.Tuner.restore(f"{tune_root}/{name}", trainable, resume_unfinished=True,
                                       resume_errored=True, restart_errored=False, storage_filesystem=tune_fs)
        else:
            from bench.sweep.cost.cost_report import run_estimates

            progress = SweepProgress(str(out), sweep.name, payloads, concurrency, run_estimates(sweep, out))
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

            pull_sweep(storage, out, [p["config_hash"] for p in payloads])
        for result in grid:
            if result.error is None and (result.metrics or {}).get("kind") == "user_error":
                failed[result.config["trial"]["config_hash"]] = result.metrics.get("error", "bad input")
            elif result.error is not None:
                h = result.config["trial"]["config_hash"]
                if records.read_done(records.trial_dir(out, h)) is None:
                    rec = records.read_failure(records.trial_dir(out, h))
                    failed[h] = (rec or {}).get("error") or str(result.error).strip().splitlines()[-1][:500]
        if queue is not None:
            for p in payloads:  # a trial whose completion Tune reported before a restore
                queue.add(jobs_of(p))
            queue.drain()  # a failed evaluation is a failed row (its failure.json), as a failed trial is
    finally:
        from bench.sweep.tasks.eval_tasks import activate

        activate(None, [])
        import ray as _ray

        if session is not None:
            stopping = time.time()
            session.stop()
            ray_times["stopped"] = time.time() - stopping
        elif _ray.is_initialized():
            _ray.shutdown()
        if storage is not None:
            from bench.sweep.folder.storage import pull_sweep

            pull_sweep(storage, out, [p["config_hash"] for p in payloads])
    if len(ray_times) == 2:
        print(f"[{sweep.name}] embedded Ray: started in {ray_times['started']:.1f} s, stopped in "
              f"{ray_times['stopped']:.1f} s", file=stream)
    return _summary(out, sweep, payloads, failed, stream, time.time() - t0)


def _eval_events(out: Path, name: str, payloads: list[dict], stream):
    """An evaluation finished or failed: one line with the eval count, and the results table rewritten."""
    from bench.sweep.tasks.eval_tasks import eval_counts

    def event(text: str) -> None:
        done, total = eval_counts(payloads)
        print(f"[{name}] eval {done}/{total}  <- {text}", file=stream, flush=True)
        write_table(out, name, payloads)

    return event


def _summary(out: Path, sweep: Sweep, payloads: list[dict], failed: dict, stream, elapsed: float):
    from bench.sweep.driver.progress import fmt_duration

    df = write_table(out, sweep.name, payloads, failed=failed)
    counts = df["status"].value_counts().to_dict()
    parts = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("completed", "failed", "running", "pending") if counts.get(s))
    what = "rows (trial x protocol)" if "protocol" in df.columns else "trials"
    print(f"[{sweep.name}] {len(df)} {what}: {parts} in {fmt_duration(elapsed)}", file=stream)
    done = df[df["status"] == "completed"]
    if len(done):
        cols = ["trial_id", "miou", "gmacs", "params_m", "latency_ms_median"]
        cols += ["eval_scales", "eval_flip"] if "protocol" in df.columns else []
        print(done[cols].to_string(index=False, float_format=lambda v: f"{v:.2f}"), file=stream)
    from bench.measure.noise_rule import noise_reason

    for _, row in done[done["latency_noisy"].fillna(False).astype(bool)].iterrows():
        print(f"  WARNING {row['trial_id']}: latency is noisy ({noise_reason(row.to_dict())}, "
              f"load {row['loadavg_before']}->{row['loadavg_after']}); do not rank on it", file=stream)
    for _, row in df[df["status"] == "failed"].iterrows():
        print(f"  FAILED {row['trial_id']}: {row['error']}", file=stream)
    print(f"results: {out / 'results.csv'} (also results.parquet, per_class_iou.csv)", file=stream)
    return df


__all__ = ["run_sweep", "build_rows"]
