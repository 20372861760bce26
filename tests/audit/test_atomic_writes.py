"""Issue 16, row 7: a write that fails partway leaves the old file intact and no temp file behind.

The writers are the real ones (bench/files/atomic.py and its callers); only the fault is injected, below them: the
serialiser writes half of its output and raises (a full disk, a crash mid-pickle), or fsync / os.replace fail.
"""
import errno
import json
import os
from pathlib import Path

import pandas as pd
import pytest
import torch

from bench.files import atomic
from bench.engine.checkpoint import LAST, load_checkpoint, save_checkpoint
from bench.results.row import write_tables
from reports.build import build_report
from reports.tables import write_table
from tests.reports.fixture import default_trials, write_sweep


class DiskFull(OSError):
    def __init__(self):
        super().__init__(errno.ENOSPC, "No space left on device (injected)")


def _half_then_fail(monkeypatch):
    """Path.write_bytes writes the first half of its data to whatever path it is given, then raises."""
    def write_bytes(self, data):
        with open(self, "wb") as f:
            f.write(data[: len(data) // 2])
        raise DiskFull()

    monkeypatch.setattr(Path, "write_bytes", write_bytes)


def _fsync_fails(monkeypatch):
    def fsync(fd):
        raise DiskFull()

    monkeypatch.setattr(os, "fsync", fsync)


def _replace_fails(monkeypatch):
    def replace(src, dst):
        raise DiskFull()

    monkeypatch.setattr(os, "replace", replace)


FAULTS = {"partial write": _half_then_fail, "fsync": _fsync_fails, "os.replace": _replace_fails}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_json_write_failing_partway_keeps_the_old_file(tmp_path, monkeypatch, fault):
    writer = atomic.write_json
    target = tmp_path / "result.json"
    writer(target, {"miou": 1.0, "note": "old"})
    old = target.read_bytes()
    FAULTS[fault](monkeypatch)
    with pytest.raises(OSError):
        writer(target, {"miou": 2.0, "note": "new " * 1000})
    monkeypatch.undo()
    assert target.read_bytes() == old and json.loads(old)["note"] == "old"
    assert sorted(os.listdir(tmp_path)) == ["result.json"]  # no temp file left


def test_json_write_that_succeeds_replaces_the_file(tmp_path):
    target = tmp_path / "sub" / "r.json"
    atomic.write_json(target, {"a": float("nan")})
    atomic.write_json(target, {"a": 1.5, "b": [float("inf"), 2]})
    assert json.loads(target.read_text()) == {"a": 1.5, "b": [None, 2]}
    assert sorted(os.listdir(target.parent)) == ["r.json"]


def _to_csv_half_then_fail(monkeypatch):
    """DataFrame.to_csv (the serialiser) writes the first half of the real CSV to its target, then raises."""
    real = pd.DataFrame.to_csv

    def to_csv(self, path_or_buf=None, *args, **kwargs):
        text = real(self, None, *args, **kwargs)
        if path_or_buf is None:
            return text
        with open(path_or_buf, "w") as f:
            f.write(text[: len(text) // 2])
        raise DiskFull()

    monkeypatch.setattr(pd.DataFrame, "to_csv", to_csv)


def test_results_csv_write_failing_partway_keeps_the_old_table(tmp_path, monkeypatch):
    write_tables(tmp_path, [], [])
    before = _snapshot(tmp_path)
    assert {"results.csv", "results.parquet", "per_class_iou.csv"} <= set(before)
    _to_csv_half_then_fail(monkeypatch)
    with pytest.raises(OSError):
        write_tables(tmp_path, [{"trial_id": "t1", "status": "completed", "miou": 50.0}], [])
    monkeypatch.undo()
    assert _snapshot(tmp_path) == before
    assert sorted(os.listdir(tmp_path)) == sorted(before)  # no temp file left


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_report_table_csv_failing_partway_keeps_the_old_files(tmp_path, monkeypatch, fault):
    base = tmp_path / "tables" / "summary"
    old = pd.DataFrame({"model": ["a", "b"], "miou": [1.0, 2.0]})
    write_table(base, old, old)
    before = _snapshot(tmp_path)
    FAULTS[fault](monkeypatch)
    new = pd.DataFrame({"model": ["c"] * 50, "miou": [3.0] * 50})
    with pytest.raises(OSError):
        write_table(base, new, new)
    monkeypatch.undo()
    assert _snapshot(tmp_path) == before
    assert sorted(os.listdir(base.parent)) == ["summary.csv", "summary.html", "summary.md", "summary.tex"]


def test_report_build_failing_partway_keeps_the_old_report(tmp_path, monkeypatch):
    sweep = write_sweep(tmp_path / "sweep", default_trials())
    out = tmp_path / "report"
    build_report(sweep, out)
    before = _snapshot(out)
    assert "report.md" in before and "index.html" in before
    real = Path.write_bytes

    def fail_on_index(self, data):  # the report's last file: everything else of the new report is written
        if self.name.startswith(".index.html") or self.name == "index.html":
            with open(self, "wb") as f:
                f.write(data[: len(data) // 2])
            raise DiskFull()
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", fail_on_index)
    with pytest.raises(OSError):
        build_report(sweep, out)
    monkeypatch.undo()
    assert _snapshot(out) == before
    assert sorted(os.listdir(tmp_path)) == ["report", "sweep"]  # no temp folder left beside it


class _FailsMidPickle:
    """Pickling this raises after torch.save has opened its target and written the tensors before it."""

    def __reduce__(self):
        raise DiskFull()


def test_torch_save_failing_partway_keeps_the_old_checkpoint(tmp_path):
    ckpt = tmp_path / "checkpoints"
    old_state = {"model": {"w": torch.arange(1000, dtype=torch.float32)}}
    path = save_checkpoint(ckpt, 5, old_state, keep=2)
    before = _snapshot(ckpt)
    with pytest.raises(OSError):
        save_checkpoint(ckpt, 5, {"model": {"w": torch.zeros(5000)}, "extra": _FailsMidPickle()}, keep=2)
    assert _snapshot(ckpt) == before
    assert sorted(os.listdir(ckpt)) == sorted([path.name, LAST])  # no temp file left
    assert torch.equal(load_checkpoint(path)["model"]["w"], old_state["model"]["w"])


@pytest.mark.parametrize("fault", ["fsync", "os.replace"])
def test_torch_save_with_a_failing_fsync_or_replace_keeps_the_old_checkpoint(tmp_path, monkeypatch, fault):
    ckpt = tmp_path / "checkpoints"
    path = save_checkpoint(ckpt, 5, {"model": {"w": torch.ones(10)}}, keep=2)
    before = _snapshot(ckpt)
    FAULTS[fault](monkeypatch)
    with pytest.raises(OSError):
        save_checkpoint(ckpt, 5, {"model": {"w": torch.zeros(10)}}, keep=2)
    monkeypatch.undo()
    assert _snapshot(ckpt) == before and sorted(os.listdir(ckpt)) == sorted([path.name, LAST])
