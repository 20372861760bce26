"""Checkpoint files: atomic, newest-N retention, last.pt, weights-only loadable, RNG round trip."""
import random

import numpy as np
import pytest
import torch

from bench.engine import checkpoint as ckpt
from bench.errors import UserError


def test_save_keeps_the_newest_and_links_last(tmp_path):
    d = tmp_path / "checkpoints"
    for it in (10, 20, 30):
        ckpt.save_checkpoint(d, it, {"model": {"w": torch.full((2,), float(it))}, "config_hash": "abc"}, keep=2)
    assert [i for i, _ in ckpt.list_checkpoints(d)] == [20, 30]
    assert sorted(p.name for p in d.iterdir()) == ["iter_0000020.pt", "iter_0000030.pt", "last.pt"]
    last = torch.load(d / "last.pt", weights_only=True)
    assert last["iter"] == 30 and last["model"]["w"].tolist() == [30.0, 30.0]
    assert ckpt.latest_checkpoint(d).name == "iter_0000030.pt"
    assert not list(d.glob(".*"))  # no temp files left


def test_rng_round_trip_through_a_weights_only_file(tmp_path):
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    ckpt.save_checkpoint(tmp_path, 1, {"rng": [ckpt.capture_rng()]}, keep=1)
    want = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    ckpt.restore_rng(ckpt.load_checkpoint(tmp_path / "iter_0000001.pt")["rng"][0])
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(want[0], got[0]) and np.array_equal(want[1], got[1]) and want[2] == got[2]


def test_unreadable_or_foreign_checkpoints_are_user_errors(tmp_path):
    bad = tmp_path / "iter_0000005.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="iter_0000005.pt: unreadable checkpoint"):
        ckpt.load_checkpoint(bad)
    torch.save({"model": {}}, bad)
    with pytest.raises(UserError, match="not a checkpoint written by"):
        ckpt.load_checkpoint(bad)
