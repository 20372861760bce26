"""One trial, as a Ray Tune function trainable: train (resuming), evaluate, attach the model's measurement (taken
by the sweep's measurement phase, bench.sweep.tasks.measurement, never beside training), write the done record.

The trial's directory is <sweep>/trials/<config_hash>/, the same for every attempt and every rerun of the sweep, so a
retried trial resumes from the engine's own last checkpoint there. Each engine checkpoint is also reported to Tune
(`ray.tune.report(..., checkpoint=...)`), so a retry on a node that cannot see the directory restores it from Tune's
storage (`ray.tune.get_checkpoint()`).

With `--storage URI` (bench/sweep/folder/storage.py) every attempt trains in a fresh local scratch folder instead: its
records come from <URI>/trials/<hash>/ and go back there (at the start, at each checkpoint, at the end), and its
checkpoint comes from Tune's storage at the URI, never from a local disk; the attempt record says from where
(`restored_from`). A multi-worker trial's workers report each engine checkpoint to Ray Train's storage from rank 0
(`ray.train.report`), and a retry of the trial resumes its Ray Train run, whose workers restore from
`ray.train.get_checkpoint()`.
"""
from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from bench.files.json_records import read_json
from bench.files.atomic import write_json
from bench.errors import UserError, typed_line
from bench.sweep.folder import layout, records
from bench.results.schema import trial_rel
from bench.sweep.spec.payload import spec_from_payload
from bench.sweep.spec.trials import Resources
from bench.sweep.tasks import checkpoint_handoff

log = logging.getLogger("bench.sweep.trial")

_ITER = re.compile(r"^iter_(\d+)\.pt$")
REPORT_KEYS = ("iter", "loss", "lr", "miou", "macc", "aacc", "boundary_iou")


def _now_precise() -> str:
    """Training start/end in attempts.json: the evidence that no measurement overlapped training."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _tune_metrics(record: dict) -> dict:
    metrics = {k: record[k] for k in REPORT_KEYS if isinstance(record.get(k), (int, float))}
    metrics["kind"] = record.get("kind", "")
    return metrics


def _restore_from_tune(trial_dir: Path, store=None, trial: dict | None = None) -> dict:
    """A retry on a node without the trial's checkpoints: bring back the one Tune stored (with --storage, the newest
    complete one in the trial's Tune folder there, registered by the driver or not). Returns what the attempt record
    notes: where the checkpoint came from (a URI with --storage) and its iteration."""
    from ray import tune

    ck_dir = layout.checkpoint_dir(trial_dir)
    if ck_dir.is_dir() and any(ck_dir.iterdir()):
        return {}
    ckpt = tune.get_checkpoint()
    if store is not None and trial and trial.get("experiment"):
        ckpt = checkpoint_handoff.newest_stored(
            store, store.path(layout.TUNE, trial["experiment"], trial["config_hash"]), ckpt)
    if ckpt is None:
        return {}
    return checkpoint_handoff.restore(ckpt, trial_dir, store)


def _open_store(trial: dict):
    if not trial.get("storage"):
        return None
    from bench.sweep.folder.storage import open_storage

    return open_storage(trial["storage"])


def _push(store, trial_dir: Path, config_hash: str) -> None:
    if store is not None:
        store.push(trial_dir, trial_rel(config_hash), layout.RECORD_FILES)


def _measurement(trial: dict, cfg, device) -> dict:
    """The model's measurement from the sweep's measurement phase (bench.sweep.tasks.measurement), never taken here:
    a trial's own measurement would run beside the other trials' training."""
    from bench.measure.environment import environment
    from bench.sweep.tasks import measurement
    if cfg.measure.enabled:
        rec = trial.get("measurement") or records.read_measurement(Path(trial["sweep_dir"]),
                                                                   measurement.measure_key(trial))
        if rec:
            return dict(rec)
    return dict(environment(device))


def _engine():
    from bench.engine import train_experiment

    return train_experiment


def _newest_checkpoint(trial_dir: Path) -> int:
    its = [int(m.group(1)) for p in layout.checkpoint_dir(trial_dir).glob("iter_*.pt") if (m := _ITER.match(p.name))]
    return max(its, default=0)


def _note_attempt(trial_dir: Path, **info) -> None:
    rec = read_json(trial_dir / layout.ATTEMPTS)
    if rec and rec.get("history"):
        rec["history"][-1].update(info)
        write_json(trial_dir / layout.ATTEMPTS, rec)


def _train_single(cfg, trial_dir: Path, store=None, config_hash: str = "") -> dict:
    from ray import tune

    train_experiment = _engine()
    first = []

    def on_report(record: dict) -> None:
        metrics = _tune_metrics(record)
        if record.get("kind") == "checkpoint":
            # the records up to this checkpoint first: what the storage holds never lags its newest checkpoint
            _push(store, trial_dir, config_hash)
            checkpoint_handoff.report_checkpoint(record, metrics, trial_dir, tune.report, tune.Checkpoint)
        elif record.get("kind") in ("train", "eval"):
            if record.get("kind") == "train" and not first:  # evidence that a retry resumed, not restarted
                first.append(record.get("iter"))
                _note_attempt(trial_dir, first_iter=record.get("iter"))
            tune.report(metrics)

    return train_experiment(cfg, trial_dir, resume=True, on_report=on_report, progress=False)


def _restore_from_train(trial_dir: Path, store) -> dict:
    """A Ray Train worker: resume from the run's last reported checkpoint when it is newer than the local ones."""
    import ray.train

    ckpt = ray.train.get_checkpoint()
    if ckpt is None:
        return {}
    it = checkpoint_handoff.handed_off_iter(ckpt)
    newest = _newest_checkpoint(trial_dir)
    # With --storage an attempt's folder starts without checkpoints: one of the run's iteration found there was copied
    # just now by another worker of this attempt on this node, so it is still a restore from the run (and rank 0's
    # note must not depend on which worker copied first).
    if it < newest or (it == newest and store is None):
        return {}
    return checkpoint_handoff.restore(ckpt, trial_dir, store)


def _worker_loop(config: dict) -> None:
    """Ray Train worker: torch.distributed is initialised (gloo on CPU, NCCL on GPU); the engine does DDP + SyncBN.
    Every rank reports each engine checkpoint to Ray Train (a collective call); rank 0 hands over the file."""
    import ray.train
    import torch

    from bench.config import ExperimentConfig

    train_experiment = _engine()
    cfg = ExperimentConfig.model_validate(config["cfg"])
    if cfg.train.threads is None:
        torch.set_num_threads(config["threads"])
    trial_dir, store, config_hash = Path(config["trial_dir"]), _open_store(config), config["config_hash"]
    rank = ray.train.get_context().get_world_rank()
    if store is not None and not trial_dir.is_dir():  # a node other than the trial's own: its records from the storage
        trial_dir.mkdir(parents=True, exist_ok=True)
        store.pull(trial_rel(config_hash), trial_dir, layout.ENGINE_FILES)
    restored = _restore_from_train(trial_dir, store)

    def on_report(record: dict) -> None:
        if record.get("kind") != "checkpoint":
            return  # metrics reach Tune through the coordinator (_tail_metrics)
        src = Path(record["path"]) if record.get("path") else None
        if store is not None and src is not None and src.is_file():
            # the records first: what the storage holds never lags its newest checkpoint
            store.push(trial_dir, trial_rel(config_hash), layout.ENGINE_FILES)
        checkpoint_handoff.report_checkpoint(record, _tune_metrics(record), trial_dir, ray.train.report,
                                             ray.train.Checkpoint)

    train_experiment(cfg, trial_dir, resume=True, on_report=on_report, progress=False)
    if rank == 0:
        write_json(trial_dir / layout.TRAIN_RESTORE, restored)
        if store is not None:
            store.push(trial_dir, trial_rel(config_hash), layout.ENGINE_FILES + (layout.TRAIN_RESTORE,))


def _tail_metrics(path: Path, stop: threading.Event) -> None:
    """Forward the engine's metrics.jsonl to Tune while Ray Train workers run (they cannot call tune.report)."""
    from ray import tune

    offset = path.stat().st_size if path.is_file() else 0
    while not stop.wait(2.0):
        if not path.is_file():
            continue
        with path.open() as f:
            f.seek(offset)
            chunk = f.read()
        lines = chunk.split("\n")
        offset += len(chunk) - len(lines[-1])
        for line in lines[:-1]:
            try:
                tune.report(_tune_metrics(json.loads(line)))
            except (json.JSONDecodeError, ValueError):
                continue


def ddp_backend(use_gpu: bool, train_device: str = "auto") -> str:
    """The process group's backend follows the device the workers train on: NCCL between GPUs, gloo between CPU
    workers (also GPU-holding workers told `train.device: cpu`)."""
    return "nccl" if use_gpu and train_device != "cpu" else "gloo"


def _train_workers(cfg, trial_dir: Path, trial: dict, store=None) -> dict:
    import ray.train
    from ray.train.torch import TorchTrainer

    from ray.train.torch import TorchConfig

    res = trial["resources"]
    use_gpu = res["gpus"] > 0
    per_worker = {"CPU": res["cpus"]}
    if use_gpu:
        per_worker["GPU"] = res["gpus"]
    per_worker.update({k: v for k, v in (res.get("custom") or {}).items() if v > 0})
    attempt = records.read_attempts(trial_dir)
    (trial_dir / layout.TRAIN_RESTORE).unlink(missing_ok=True)
    # One Ray Train run per trial and Tune experiment: a retry (or --resume) resumes it from its last checkpoint.
    run_name = f"train-{trial['config_hash']}-{trial.get('experiment') or f'a{attempt}'}"
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={
            "cfg": cfg.model_dump(mode="json"), "trial_dir": str(trial_dir), "threads": Resources(**res).threads(),
            "storage": trial.get("storage"), "config_hash": trial["config_hash"],
        },
        scaling_config=ray.train.ScalingConfig(
            num_workers=res["workers"], use_gpu=use_gpu, resources_per_worker=per_worker,
            placement_strategy=res.get("placement", "PACK"),  # the workers' placement group (docs/sweeps.md)
        ),
        torch_config=TorchConfig(backend=ddp_backend(use_gpu, cfg.train.device)),
        run_config=ray.train.RunConfig(
            name=run_name,
            storage_path=(store.path(layout.TUNE, layout.TRAIN_RUNS) if store
                          else str(layout.tune_dir(trial["sweep_dir"], layout.TRAIN_RUNS))),
            storage_filesystem=store.fs if store else None,
            failure_config=ray.train.FailureConfig(max_failures=0),  # Tune retries the whole trial
        ),
    )
    stop = threading.Event()
    tail = threading.Thread(target=_tail_metrics, args=(trial_dir / layout.METRICS, stop), daemon=True)
    tail.start()
    try:
        trainer.fit()
    finally:
        stop.set()
        tail.join(timeout=5)
    if store is not None:  # rank 0 may have run on another node
        store.pull(trial_rel(trial["config_hash"]), trial_dir, layout.ENGINE_FILES + (layout.TRAIN_RESTORE,))
    restored = read_json(trial_dir / layout.TRAIN_RESTORE)
    if restored:  # resume_from was noted before the workers restored (0 in a fresh scratch folder)
        _note_attempt(trial_dir, **restored, resume_from=restored.get("restored_iter"))
    final = read_json(trial_dir / layout.FINAL)
    if not isinstance(final, dict):
        raise RuntimeError(f"{trial_dir}: the workers finished without writing {layout.FINAL}")
    return final


def run_trial(config: dict) -> None:
    """The Tune function. `config["trial"]` is the payload made by bench.sweep.spec.payload.trial_payload."""
    trial = config["trial"]
    if trial.get("cwd") and Path(trial["cwd"]).is_dir():
        os.chdir(trial["cwd"])  # relative paths in the config (data.root, ...) mean what they meant to the driver
    store = _open_store(trial)
    if store is None:
        _run_attempt(trial, Path(trial["trial_dir"]), None)
        return
    from bench.sweep.folder.storage import remove_scratch, scratch_dir

    trial_dir = scratch_dir(trial["config_hash"])
    try:
        store.pull(trial_rel(trial["config_hash"]), trial_dir, layout.RECORD_FILES)
        _run_attempt(trial, trial_dir, store)
    finally:
        remove_scratch(trial_dir)


def _run_attempt(trial: dict, trial_dir: Path, store) -> None:
    import ray
    import torch
    from ray import tune

    from bench.config import ExperimentConfig
    from bench.results.row import completed_row, per_class_rows

    trial_dir.mkdir(parents=True, exist_ok=True)
    done = records.read_done(trial_dir)
    if done is not None:  # finished by an earlier attempt whose report never reached the driver
        tune.report({"miou": done["row"].get("miou"), "kind": "done", "result_json": json.dumps(done)})
        return

    handler = logging.FileHandler(trial_dir / layout.LOG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(min(root.level, logging.INFO))
    node = socket.gethostname()
    try:
        node_id = ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - informational only
        node_id = ""
    attempt = records.bump_attempts(trial_dir, {"started_at": records.now(), "host": node, "node_id": node_id,
                                                "pid": os.getpid(),
                                                **({"scratch": str(trial_dir)} if store is not None else {})})
    log.info("trial %s (%s) attempt %d on %s", trial["trial_id"], trial["config_hash"], attempt, node)
    try:
        cfg = ExperimentConfig.model_validate(trial["cfg"])
        res = trial["resources"]
        if cfg.train.threads is None:
            torch.set_num_threads(Resources(**res).threads())
        checkpoint_handoff.remove_handoffs(trial_dir)
        if res["workers"] <= 1:  # multi-worker trials restore inside Ray Train (_restore_from_train)
            _note_attempt(trial_dir, **_restore_from_tune(trial_dir, store, trial))
        _note_attempt(trial_dir, resume_from=_newest_checkpoint(trial_dir))
        _push(store, trial_dir, trial["config_hash"])
        t0 = time.time()
        _note_attempt(trial_dir, train_started_at=_now_precise())
        final = (_train_workers(cfg, trial_dir, trial, store) if res["workers"] > 1
                 else _train_single(cfg, trial_dir, store, trial["config_hash"]))
        _note_attempt(trial_dir, train_finished_at=_now_precise())
        log.info("trained in %.1fs: mIoU %.2f", time.time() - t0, final.get("miou", float("nan")))
        from bench.host.device import resolve_device

        device = resolve_device(cfg.train.device, "train.device")
        measurement = _measurement(trial, cfg, device)
        write_json(trial_dir / layout.MEASURE, measurement)
        spec = spec_from_payload(trial)
        env = {"ray_version": ray.__version__}
        row = completed_row(spec, trial["sweep_name"], final, measurement, env, attempts=attempt)
        row["ray_version"] = ray.__version__
        done = {"row": row, "per_class_iou": per_class_rows(row, final.get("per_class_iou") or {})}
        write_json(trial_dir / layout.RESULT, done)
        records.clear_failure(trial_dir)
        log.info("done: %s", json.dumps({k: row[k] for k in ("miou", "gmacs", "params_m", "latency_ms_median")}))
    except BaseException as exc:
        records.write_failure(trial_dir, typed_line(exc), attempt=attempt, at=records.now(), host=node,
                              traceback=traceback.format_exc())
        log.exception("attempt %d failed", attempt)
        if isinstance(exc, UserError):  # bad input fails the same way every time: no retry
            tune.report({"kind": "user_error", "error": typed_line(exc)})
            return
        raise
    finally:
        root.removeHandler(handler)
        handler.close()
        _push(store, trial_dir, trial["config_hash"])
    tune.report({"miou": row.get("miou"), "kind": "done", "result_json": json.dumps(done, default=str)})
