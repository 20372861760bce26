"""A retry with --storage restores the newest complete checkpoint in its Tune trial folder, registered by the driver
or not (a node lost between the upload and the driver's registration left one Tune does not know): an incomplete
folder (record without its file, a file short of the recorded size) is passed over, and a registered checkpoint at
least as new wins. The cluster test tests/sweep/driver/test_node_loss_window.py checks the same on a real node loss."""
import json

from ray import tune

from bench.sweep.folder.storage import open_storage
from bench.sweep.tasks import checkpoint_handoff, trainable


def _folder(root, name: str, it: int, body: bytes = b"weights", recorded: int | None = None, file: bool = True):
    d = root / name
    d.mkdir(parents=True)
    if file:
        (d / f"iter_{it:06d}.pt").write_bytes(body)
    meta = {"iter": it, "name": f"iter_{it:06d}.pt", "bytes": len(body) if recorded is None else recorded}
    (d / "engine_checkpoint.json").write_text(json.dumps(meta))
    return d


def test_the_newest_complete_stored_checkpoint_beats_none_registered(tmp_path):
    store = open_storage(str(tmp_path / "store"))
    trial = tmp_path / "store" / "tune" / "run-1" / "abc"
    _folder(trial, "checkpoint_000000", 20)
    _folder(trial, "checkpoint_000001", 40, file=False)  # mid-upload: the record came first
    _folder(trial, "checkpoint_000002", 60, recorded=999)  # mid-copy on a file system: short of its size
    got = checkpoint_handoff.newest_stored(store, store.path("tune", "run-1", "abc"), None)
    assert got is not None and got.path == str(trial / "checkpoint_000000")


def test_a_registered_checkpoint_as_new_or_newer_is_kept(tmp_path):
    store = open_storage(str(tmp_path / "store"))
    trial = tmp_path / "store" / "tune" / "run-1" / "abc"
    _folder(trial, "checkpoint_000000", 20)
    registered = tune.Checkpoint.from_directory(str(_folder(tmp_path / "reg", "c", 20)))
    assert checkpoint_handoff.newest_stored(store, store.path("tune", "run-1", "abc"), registered) is registered
    assert checkpoint_handoff.newest_stored(store, store.path("tune", "run-1", "nothing"), None) is None


def test_the_attempt_notes_the_unregistered_checkpoint(tmp_path, monkeypatch):
    store = open_storage(str(tmp_path / "store"))
    _folder(tmp_path / "store" / "tune" / "run-1" / "abc", "checkpoint_000000", 20)
    monkeypatch.setattr(tune, "get_checkpoint", lambda: None)  # the driver had registered none
    attempt = tmp_path / "attempt"
    note = trainable._restore_from_tune(attempt, store, {"experiment": "run-1", "config_hash": "abc"})
    assert note["restored_iter"] == 20 and note["restored_from"].endswith("tune/run-1/abc/checkpoint_000000")
    assert (attempt / "checkpoints" / "iter_000020.pt").read_bytes() == b"weights"
