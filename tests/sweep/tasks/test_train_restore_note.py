"""A retried multi-worker trial with --storage: its workers on one node share the attempt's folder and each copies the
run's checkpoint there. Rank 0 must note where it came from even when another worker copied it first (the note was
lost in one CI run of tests/sweep/driver/test_ddp_resume.py)."""
import json

import ray.train

from bench.sweep.tasks import trainable
from bench.sweep.folder.storage import open_storage


def _run_checkpoint(tmp_path, it: int):
    src = tmp_path / "run_checkpoint"
    src.mkdir()
    (src / f"iter_{it}.pt").write_bytes(b"weights")
    (src / "engine_checkpoint.json").write_text(json.dumps({"iter": it, "name": f"iter_{it}.pt"}))
    return ray.train.Checkpoint.from_directory(str(src))


def _attempt_folder(tmp_path, local_iter: int | None):
    tdir = tmp_path / "attempt"
    (tdir / "checkpoints").mkdir(parents=True)
    if local_iter is not None:  # as another worker of this attempt left it
        (tdir / "checkpoints" / f"iter_{local_iter}.pt").write_bytes(b"weights")
    return tdir


def test_rank_0_notes_the_restore_when_another_worker_copied_it_first(tmp_path, monkeypatch):
    ckpt = _run_checkpoint(tmp_path, 10)
    monkeypatch.setattr(ray.train, "get_checkpoint", lambda: ckpt)
    store = open_storage(str(tmp_path / "store"))
    note = trainable._restore_from_train(_attempt_folder(tmp_path, 10), store)
    assert note["restored_iter"] == 10 and note["restored_from"] == store.url(ckpt.path)


def test_a_newer_or_a_persistent_local_checkpoint_is_not_a_restore(tmp_path, monkeypatch):
    ckpt = _run_checkpoint(tmp_path, 10)
    monkeypatch.setattr(ray.train, "get_checkpoint", lambda: ckpt)
    store = open_storage(str(tmp_path / "store"))
    assert trainable._restore_from_train(_attempt_folder(tmp_path, 20), store) == {}
    # without --storage the trial folder persists: its own iteration 10 is the earlier attempt's, not a restore
    (tmp_path / "attempt" / "checkpoints" / "iter_20.pt").unlink()
    (tmp_path / "attempt" / "checkpoints" / "iter_10.pt").write_bytes(b"weights")
    assert trainable._restore_from_train(tmp_path / "attempt", None) == {}
