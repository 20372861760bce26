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
import shutil
import socket
import tempfile
import threading
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from bench.errors import UserError
from bench.sweep.folder import records
from bench.sweep.spec.trials import Resources
log = logging.getLogger("bench.sweep.trial")

_ITER = re.compile(r"^iter_(\d+)\.pt$")
REPORT_KEYS = ("iter", "loss", "lr", "miou", "macc", "aacc", "boundary_iou")
HANDOFF_PREFIX = ".ckpt-"  # <trial>/.ckpt-XXXX: a checkpoint on its way to Tune's storage


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _now_precise() -> str:
    """Training start/end in attempts.json: the evidence that no measurement overlapped training."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _tune_metrics(record: dict) -> dict:
    out = {k: record[k] for k in REPORT_KEYS if isinstance(record.get(k), (int, float))}
    out["kind"] = record.get("kind", "")
    return out


def _report_checkpoint(record: dict, metrics: dict) -> None:
    """Hand the engine's checkpoint file to Tune (it copies it to the sweep's storage)."""
    from ray import tune

    src = Path(record["path"])
    if not src.is_file():
        tune.report(metrics)
        return
    # The hand-off folder lives in the trial's folder (not /tmp), so nothing is left outside the sweep folder even
    # when the process is killed here; a leftover one is removed by the next attempt (_remove_handoffs).
    with tempfile.TemporaryDirectory(prefix=HANDOFF_PREFIX, dir=src.parent.parent) as tmp:
        dst = Path(tmp) / src.name
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
        (Path(tmp) / "engine_checkpoint.json").write_text(json.dumps({"iter": record.get("iter"), "name": src.name}))
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))


def _remove_handoffs(tdir: Path) -> None:
    for old in tdir.glob(HANDOFF_PREFIX + "*"):
        shutil.rmtree(old, ignore_errors=True)


def _restore_from_tune(tdir: Path, store=None) -> dict:
    """A retry on a node without the trial's checkpoints: bring back the one Tune stored. Returns what the attempt
    record notes: where the checkpoint came from (a URI with --storage) and its iteration."""
    from ray import tune

    ck_dir = tdir / "checkpoints"
    if ck_dir.is_dir() and any(ck_dir.iterdir()):
        return {}
    ckpt = tune.get_checkpoint()
    if ckpt is None:
        return {}
    return _copy_engine_checkpoint(ckpt, ck_dir, store)


def _copy_engine_checkpoint(ckpt, ck_dir: Path, store) -> dict:
    """The engine's checkpoint file out of a Tune/Train checkpoint (downloaded if remote) into ck_dir."""
    with ckpt.as_directory() as d:
        meta = json.loads((Path(d) / "engine_checkpoint.json").read_text())
        ck_dir.mkdir(parents=True, exist_ok=True)
        tmp = ck_dir / f".{meta['name']}.{os.getpid()}.restore"
        shutil.copy2(Path(d) / meta["name"], tmp)
        os.replace(tmp, ck_dir / meta["name"])  # atomic: workers on one node may restore into the same folder
    source = store.url(ckpt.path) if store is not None else ckpt.path
    log.info("restored %s from %s", meta["name"], source)
    return {"restored_from": source, "restored_iter": meta.get("iter")}


def _open_store(trial: dict):
    if not trial.get("storage"):
        return None
    from bench.sweep.folder.storage import open_storage

    return open_storage(trial["storage"])


def _push(store, tdir: Path, config_hash: str) -> None:
    if store is not None:
        from bench.sweep.folder.storage import RECORD_FILES

        store.push(tdir, f"trials/{config_hash}", RECORD_FILES)


def _measurement(trial: dict, cfg, device) -> dict:
    """The model's measurement from the sweep's measurement phase (bench.sweep.tasks.measurement), never taken here:
    a trial's own measurement would run beside the other trials' training."""
    from bench.measure.environment import environment
    from bench.sweep.tasks import measurement
    if cfg.measure.enabled:
        rec = trial.get("measurement") or measurement.read(Path(trial["sweep_dir"]), measurement.measure_key(trial))
        if rec:
            return dict(rec)
    return dict(environment(device))


def _engine():
    from bench.engine import train_experiment

    return train_experiment


def _newest_checkpoint(tdir: Path) -> int:
    its = [int(m.group(1)) for p in (tdir / "checkpoints").glob("iter_*.pt") if (m := _ITER.match(p.name))]
    return max(its, default=0)


def _note_attempt(tdir: Path, **info) -> None:
    rec = records.read_json(tdir / records.ATTEMPTS)
    if rec and rec.get("history"):
        rec["history"][-1].update(info)
        records.atomic_write_json(tdir / records.ATTEMPTS, rec)


def _train_single(cfg, tdir: Path, store=None, config_hash: str = "") -> dict:
    from ray import tune

    train_experiment = _engine()
    first = []

    def on_report(record: dict) -> None:
        metrics = _tune_metrics(record)
        if record.get("kind") == "checkpoint":
            # the records up to this checkpoint first: what the storage holds never lags its newest checkpoint
            _push(store, tdir, config_hash)
            _report_checkpoint(record, metrics)
        elif record.get("kind") in ("train", "eval"):
            if record.get("kind") == "train" and not first:  # evidence that a retry resumed, not restarted
                first.append(record.get("iter"))
                _note_attempt(tdir, first_iter=record.get("iter"))
            tune.report(metrics)

    return train_experiment(cfg, tdir, resume=True, on_report=on_report, progress=False)


ENGINE_FILES = ("metrics.jsonl", "final.json", "per_image.npz", "config.yaml", "config_hash.txt")
TRAIN_RESTORE = "train_restore.json"  # rank 0's note of the Ray Train checkpoint it resumed from


def _restore_from_train(tdir: Path, store) -> dict:
    """A Ray Train worker: resume from the run's last reported checkpoint when it is newer than the local ones."""
    import ray.train

    ckpt = ray.train.get_checkpoint()
    if ckpt is None:
        return {}
    with ckpt.as_directory() as d:
        it = json.loads((Path(d) / "engine_checkpoint.json").read_text()).get("iter") or 0
    newest = _newest_checkpoint(tdir)
    # With --storage an attempt's folder starts without checkpoints: one of the run's iteration found there was copied
    # just now by another worker of this attempt on this node, so it is still a restore from the run (and rank 0's
    # note must not depend on which worker copied first).
    if it < newest or (it == newest and store is None):
        return {}
    return _copy_engine_checkpoint(ckpt, tdir / "checkpoints", store)


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
    tdir, store, config_hash = Path(config["trial_dir"]), _open_store(config), config["config_hash"]
    rank = ray.train.get_context().get_world_rank()
    if store is not None and not tdir.is_dir():  # a node other than the trial's own: its records from the storage
        tdir.mkdir(parents=True, exist_ok=True)
        store.pull(f"trials/{config_hash}", tdir, ENGINE_FILES)
    restored = _restore_from_train(tdir, store)

    def on_report(record: dict) -> None:
        if record.get("kind") != "checkpoint":
            return  # metrics reach Tune through the coordinator (_tail_metrics)
        metrics = _tune_metrics(record)
        src = Path(record["path"]) if record.get("path") else None
        if src is None or not src.is_file():
            ray.train.report(metrics)
            return
        if store is not None:  # the records first: what the storage holds never lags its newest checkpoint
            store.push(tdir, f"trials/{config_hash}", ENGINE_FILES)
        with tempfile.TemporaryDirectory(prefix=HANDOFF_PREFIX, dir=tdir) as tmp:
            try:
                os.link(src, Path(tmp) / src.name)
            except OSError:
                shutil.copy2(src, Path(tmp) / src.name)
            (Path(tmp) / "engine_checkpoint.json").write_text(json.dumps({"iter": record.get("iter"),
                                                                          "name": src.name}))
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp))

    train_experiment(cfg, tdir, resume=True, on_report=on_report, progress=False)
    if rank == 0:
        records.atomic_write_json(tdir / TRAIN_RESTORE, restored)
        if store is not None:
            store.push(tdir, f"trials/{config_hash}", ENGINE_FILES + (TRAIN_RESTORE,))


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


def _train_workers(cfg, tdir: Path, trial: dict, store=None) -> dict:
    import ray.train
    from ray.train.torch import TorchTrainer

    from ray.train.torch import TorchConfig

    res = trial["resources"]
    use_gpu = res["gpus"] > 0
    per_worker = {"CPU": res["cpus"]}
    if use_gpu:
        per_worker["GPU"] = res["gpus"]
    per_worker.update({k: v for k, v in (res.get("custom") or {}).items() if v > 0})
    attempt = records.read_attempts(tdir)
    (tdir / TRAIN_RESTORE).unlink(missing_ok=True)
    # One Ray Train run per trial and Tune experiment: a retry (or --resume) resumes it from its last checkpoint.
    run_name = f"train-{trial['config_hash']}-{trial.get('experiment') or f'a{attempt}'}"
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={
            "cfg": cfg.model_dump(mode="json"), "trial_dir": str(tdir), "threads": Resources(**res).threads(),
            "storage": trial.get("storage"), "config_hash": trial["config_hash"],
        },
        scaling_config=ray.train.ScalingConfig(
            num_workers=res["workers"], use_gpu=use_gpu, resources_per_worker=per_worker,
            placement_strategy=res.get("placement", "PACK"),  # the workers' placement group (docs/sweeps.md)
        ),
        torch_config=TorchConfig(backend=ddp_backend(use_gpu, cfg.train.device)),
        run_config=ray.train.RunConfig(
            name=run_name,
            storage_path=store.path("tune", "train") if store else str(Path(trial["sweep_dir"]) / "tune" / "train"),
            storage_filesystem=store.fs if store else None,
            failure_config=ray.train.FailureConfig(max_failures=0),  # Tune retries the whole trial
        ),
    )
    stop = threading.Event()
    tail = threading.Thread(target=_tail_metrics, args=(tdir / "metrics.jsonl", stop), daemon=True)
    tail.start()
    try:
        trainer.fit()
    finally:
        stop.set()
        tail.join(timeout=5)
    if store is not None:  # rank 0 may have run on another node
        store.pull(f"trials/{trial['config_hash']}", tdir, ENGINE_FILES + (TRAIN_RESTORE,))
    restored = records.read_json(tdir / TRAIN_RESTORE)
    if restored:  # resume_from was noted before the workers restored (0 in a fresh scratch folder)
        _note_attempt(tdir, **restored, resume_from=restored.get("restored_iter"))
    final = records.read_json(tdir / "final.json")
    if not isinstance(final, dict):
        raise RuntimeError(f"{tdir}: the workers finished without writing final.json")
    return final


def _one_line(exc: BaseException) -> str:
    """`Type: first line`, plus the root cause's line when the message wraps another traceback (Ray Train)."""
    lines = [ln.strip() for ln in f"{type(exc).__name__}: {exc}".splitlines() if ln.strip()]
    tail = [ln for ln in lines[1:] if not ln.startswith(("...", "File ", "^", "[", "Traceback"))]
    text = lines[0] + (f" ... {tail[-1]}" if tail and tail[-1] != lines[0] else "")
    return text[:500]


def run_trial(config: dict) -> None:
    """The Tune function. `config["trial"]` is the payload made by bench.sweep.driver.runner.trial_payload."""
    trial = config["trial"]
    if trial.get("cwd") and Path(trial["cwd"]).is_dir():
        os.chdir(trial["cwd"])  # relative paths in the config (data.root, ...) mean what they meant to the driver
    store = _open_store(trial)
    if store is None:
        _run_attempt(trial, Path(trial["trial_dir"]), None)
        return
    from bench.sweep.folder.storage import RECORD_FILES, remove_scratch, scratch_dir

    tdir = scratch_dir(trial["config_hash"])
    try:
        store.pull(f"trials/{trial['config_hash']}", tdir, RECORD_FILES)
        _run_attempt(trial, tdir, store)
    finally:
        remove_scratch(tdir)


def _run_attempt(trial: dict, tdir: Path, store) -> None:
    import ray
    import torch
    from ray import tune

    from bench.config import ExperimentConfig
    from bench.results.row import completed_row, per_class_rows
    from bench.sweep.driver.table import spec_from_payload

    tdir.mkdir(parents=True, exist_ok=True)
    done = records.read_done(tdir)
    if done is not None:  # finished by an earlier attempt whose report never reached the driver
        tune.report({"miou": done["row"].get("miou"), "kind": "done", "result_json": json.dumps(done)})
        return

    handler = logging.FileHandler(tdir / records.LOG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(min(root.level, logging.INFO))
    node = socket.gethostname()
    try:
        node_id = ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - informational only
        node_id = ""
    attempt = records.bump_attempts(tdir, {"started_at": _now(), "host": node, "node_id": node_id, "pid": os.getpid(),
                                           **({"scratch": str(tdir)} if store is not None else {})})
    log.info("trial %s (%s) attempt %d on %s", trial["trial_id"], trial["config_hash"], attempt, node)
    try:
        cfg = ExperimentConfig.model_validate(trial["cfg"])
        res = trial["resources"]
        if cfg.train.threads is None:
            torch.set_num_threads(Resources(**res).threads())
        _remove_handoffs(tdir)
        if res["workers"] <= 1:  # multi-worker trials restore inside Ray Train (_restore_from_train)
            _note_attempt(tdir, **_restore_from_tune(tdir, store))
        _note_attempt(tdir, resume_from=_newest_checkpoint(tdir))
        _push(store, tdir, trial["config_hash"])
        t0 = time.time()
        _note_attempt(tdir, train_started_at=_now_precise())
        final = (_train_workers(cfg, tdir, trial, store) if res["workers"] > 1
                 else _train_single(cfg, tdir, store, trial["config_hash"]))
        _note_attempt(tdir, train_finished_at=_now_precise())
        log.info("trained in %.1fs: mIoU %.2f", time.time() - t0, final.get("miou", float("nan")))
        from bench.host.device import resolve_device

        device = resolve_device(cfg.train.device, "train.device")
        measurement = _measurement(trial, cfg, device)
        records.atomic_write_json(tdir / records.MEASURE, measurement)
        spec = spec_from_payload(trial)
        env = {"ray_version": ray.__version__}
        row = completed_row(spec, trial["sweep_name"], final, measurement, env, attempts=attempt)
        row["ray_version"] = ray.__version__
        done = {"row": row, "per_class_iou": per_class_rows(row, final.get("per_class_iou") or {})}
        records.atomic_write_json(tdir / records.RESULT, done)
        (tdir / records.FAILURE).unlink(missing_ok=True)
        log.info("done: %s", json.dumps({k: row[k] for k in ("miou", "gmacs", "params_m", "latency_ms_median")}))
    except BaseException as exc:
        records.atomic_write_json(
            tdir / records.FAILURE,
            {"error": _one_line(exc), "attempt": attempt, "at": _now(),
             "host": node, "traceback": traceback.format_exc()},
        )
        log.exception("attempt %d failed", attempt)
        if isinstance(exc, UserError):  # bad input fails the same way every time: no retry
            tune.report({"kind": "user_error", "error": _one_line(exc)})
            return
        raise
    finally:
        root.removeHandler(handler)
        handler.close()
        _push(store, tdir, trial["config_hash"])
    tune.report({"miou": row.get("miou"), "kind": "done", "result_json": json.dumps(done, default=str)})
