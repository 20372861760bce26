"""The engine's checkpoint handed to Ray (Tune from a trial, Ray Train from a worker) and brought back on a retry.

A handed-off checkpoint is a folder holding the engine's file (a hard link where possible) and HANDOFF_META, which
names that file and its iteration. The folder is made in the trial folder (not /tmp), so nothing is left outside the
sweep folder even when the process is killed mid-hand-off; a leftover one is removed by the next attempt
(remove_handoffs).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from bench.files.links import link_or_copy
from bench.sweep.folder import layout

log = logging.getLogger("bench.sweep.trial")


def report_checkpoint(record: dict, metrics: dict, trial_dir: Path, report: Callable[..., None],
                      checkpoint_type) -> None:
    """`report(metrics, checkpoint=...)` with the engine checkpoint of `record` (a "checkpoint" record of the
    engine), or `report(metrics)` when its file is gone. `report` and `checkpoint_type` are Tune's
    (tune.report, tune.Checkpoint) in a trial and Ray Train's (ray.train.report, ray.train.Checkpoint) in a worker."""
    src = Path(record["path"]) if record.get("path") else None
    if src is None or not src.is_file():
        report(metrics)
        return
    with tempfile.TemporaryDirectory(prefix=layout.HANDOFF_PREFIX, dir=trial_dir) as tmp:
        link_or_copy(src, Path(tmp) / src.name)
        meta = {"iter": record.get("iter"), "name": src.name, "bytes": src.stat().st_size}
        (Path(tmp) / layout.HANDOFF_META).write_text(json.dumps(meta))
        report(metrics, checkpoint=checkpoint_type.from_directory(tmp))


def remove_handoffs(trial_dir: Path) -> None:
    for old in Path(trial_dir).glob(layout.HANDOFF_PREFIX + "*"):
        shutil.rmtree(old, ignore_errors=True)


def handed_off_iter(ckpt) -> int:
    """The engine iteration of a checkpoint handed to Ray (0 when it names none)."""
    with ckpt.as_directory() as d:
        return json.loads((Path(d) / layout.HANDOFF_META).read_text()).get("iter") or 0


def _stored_meta(fs, folder: str) -> dict | None:
    """The hand-off record of a checkpoint folder in storage, if the folder is complete: its record and the engine
    file it names are both there, the file at the size the record gives (S3 and GCS objects appear whole; a local
    or shared file system can show a file mid-copy)."""
    from pyarrow import fs as pafs

    try:
        with fs.open_input_stream(f"{folder}/{layout.HANDOFF_META}") as f:
            meta = json.loads(f.read())
        info = fs.get_file_info(f"{folder}/{meta['name']}")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if info.type != pafs.FileType.File or (meta.get("bytes") is not None and info.size != meta["bytes"]):
        return None
    return meta if isinstance(meta.get("iter"), int) else None


def newest_stored(store, trial_folder: str, registered=None):
    """The checkpoint to restore a trial from: the newest complete one in its Tune trial folder in storage
    (`trial_folder`, e.g. <URI>/tune/<experiment>/<hash>) when that is newer than `registered` (what
    tune.get_checkpoint() gave: the newest the driver has registered), else `registered`.

    A checkpoint is uploaded inside the trial's report and registered by Tune's driver only when the driver processes
    that report: a node lost in between leaves a checkpoint in storage that Tune does not know (docs/cluster.md)."""
    from pyarrow import fs as pafs
    from ray import tune

    newest, newest_iter = registered, -1
    if registered is not None:
        meta = _stored_meta(registered.filesystem, registered.path) if registered.filesystem is not None else None
        newest_iter = meta["iter"] if meta else handed_off_iter(registered)
    try:
        infos = store.fs.get_file_info(pafs.FileSelector(trial_folder, allow_not_found=True, recursive=False))
    except OSError:
        return registered
    for info in infos:
        if info.type != pafs.FileType.Directory or not info.base_name.startswith("checkpoint_"):
            continue
        meta = _stored_meta(store.fs, info.path)
        if meta is not None and meta["iter"] > newest_iter:
            newest, newest_iter = tune.Checkpoint(info.path, filesystem=store.fs), meta["iter"]
    return newest


def restore(ckpt, trial_dir: Path, store) -> dict:
    """The engine's checkpoint file out of a Tune/Train checkpoint (downloaded if remote) into the trial's
    checkpoints/. Returns what the attempt record notes: where it came from (a URI with --storage), its iteration."""
    ck_dir = layout.checkpoint_dir(trial_dir)
    with ckpt.as_directory() as d:
        meta = json.loads((Path(d) / layout.HANDOFF_META).read_text())
        ck_dir.mkdir(parents=True, exist_ok=True)
        tmp = ck_dir / f".{meta['name']}.{os.getpid()}.restore"
        shutil.copy2(Path(d) / meta["name"], tmp)
        os.replace(tmp, ck_dir / meta["name"])  # atomic: workers on one node may restore into the same folder
    source = store.url(ckpt.path) if store is not None else ckpt.path
    log.info("restored %s from %s", meta["name"], source)
    return {"restored_from": source, "restored_iter": meta.get("iter")}
