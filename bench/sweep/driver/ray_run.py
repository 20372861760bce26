"""The steps a sweep run takes around its Ray work, shared by a trained sweep (runner) and an eval-only one
(eval_only): this machine's capacity and the cluster's checked, datasets prepared before Ray, Ray's console
quieted, Ray started (or joined) and stopped, a line per finished evaluation, and the closing summary."""
from __future__ import annotations

import logging
import os
from pathlib import Path

from bench.sweep.driver.cluster import ray_session
from bench.sweep.driver.table import write_table
from bench.results.schema import PER_CLASS_CSV, RESULTS_CSV, RESULTS_PARQUET
from bench.sweep.spec.trials import Resources, Sweep
from bench.results.text_table import plural


def quiet_ray_env() -> None:
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


def keep_secrets_out_of_runtime_env() -> None:
    """Tune copies AWS_* credentials into every trial actor's runtime_env, which Ray's runtime_env agent writes to
    its log (runtime_env_agent.log) in plain text. They are taken off Tune's list: a trial reads credentials from
    its own environment (an embedded Ray's workers inherit the driver's; a cluster's nodes have their own,
    docs/sweeps.md)."""
    import re

    from ray.tune.execution import class_cache

    names = getattr(class_cache, "ENV_VARS_TO_PROPAGATE", None)
    if isinstance(names, set):
        names.difference_update({n for n in names if n.startswith(("AWS_", "GOOGLE_", "AZURE_"))
                                 or re.search("SECRET|TOKEN|PASSWORD|CREDENTIAL|KEY", n)})


def start_ray(address: str | None, sweep_dir: Path):
    """Join the cluster at `address`, or start the embedded Ray (returned, to be stopped by stop_ray)."""
    keep_secrets_out_of_runtime_env()
    if address:
        ray_session.join_cluster(address)
        _sigterm_as_interrupt()
        return None
    session = ray_session.EmbeddedRay(sweep_dir)
    session.start()
    _sigterm_as_interrupt()
    return session


_SIGTERM_BEFORE: list = []


def _sigterm_as_interrupt() -> None:
    """SIGTERM (`kill`, a scheduler's stop) ends the sweep as Ctrl-C does: trials stop, the table is written, and
    `--resume` continues. Installed after ray.init, it replaces the C++ failure handler of Ray's core worker, which
    printed a stack dump on SIGTERM. A second SIGTERM ends the driver at once."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def interrupt(signum, frame) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)

    _SIGTERM_BEFORE.append(signal.signal(signal.SIGTERM, interrupt))


def stop_ray(session) -> None:
    """Stop the embedded Ray that start_ray returned, or leave the joined cluster."""
    import signal

    import ray

    while _SIGTERM_BEFORE:
        before = _SIGTERM_BEFORE.pop()
        signal.signal(signal.SIGTERM, before if before is not None else signal.SIG_DFL)

    if session is not None:
        session.stop()
    elif ray.is_initialized():
        ray.shutdown()


def eval_events(sweep_dir: Path, name: str, payloads: list[dict], stream):
    """An evaluation finished or failed: one line with the eval count, and the results table rewritten."""
    from bench.sweep.tasks.eval_tasks import eval_counts

    def event(text: str) -> None:
        done, total = eval_counts(payloads)
        print(f"[{name}] eval {done}/{total}  <- {text}", file=stream, flush=True)
        write_table(sweep_dir, name, payloads)

    return event


def summary(sweep_dir: Path, sweep: Sweep, payloads: list[dict], failed: dict, stream, elapsed: float):
    """The results table written a last time, and what it holds printed; returns it as a DataFrame."""
    from bench.sweep.driver.progress import fmt_duration

    df = write_table(sweep_dir, sweep.name, payloads, failed=failed)
    counts = df["status"].value_counts().to_dict()
    parts = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("completed", "failed", "running", "pending") if counts.get(s))
    what = plural(len(df), "row") + " (trial x protocol)" if "protocol" in df.columns else plural(len(df), "trial")
    print(f"[{sweep.name}] {what}: {parts} in {fmt_duration(elapsed)}", file=stream)
    done = df[df["status"] == "completed"]
    if len(done):
        cols = ["trial_id", "miou", "gmacs", "params_m", "latency_ms_median"]
        cols += ["eval_scales", "eval_flip"] if "protocol" in df.columns else []
        from bench.sweep.driver.summary_table import completed_table

        measure = {p["trial_id"]: p["cfg"].get("measure", {}) for p in payloads}
        print(completed_table(done, cols, measure), file=stream)
    from bench.measure.noise_rule import noise_reason

    for _, row in done[done["latency_noisy"].fillna(False).astype(bool)].iterrows():
        print(f"  WARNING {row['trial_id']}: latency is noisy ({noise_reason(row.to_dict())}, "
              f"load {row['loadavg_before']}->{row['loadavg_after']}); do not rank on it", file=stream)
    for _, row in df[df["status"] == "failed"].iterrows():
        print(f"  FAILED {row['trial_id']}: {row['error']}", file=stream)
    print(f"results: {Path(sweep_dir) / RESULTS_CSV} (also {RESULTS_PARQUET}, {PER_CLASS_CSV})",
          file=stream)
    return df
