"""The dataset pre-flight before training (bench/data/preflight.py): what it finds, and its manifest cache."""
import os

import numpy as np
import pytest
from PIL import Image

from bench.data.dataset import SegDataset
from bench.data.preflight import verify_before_training
from bench.data.registry import scan_split
from bench.data.synthetic.generate import SYNTHETIC_CLASSES, SYNTHETIC_PALETTE, generate_synthetic
from bench.errors import UserError


@pytest.fixture
def splits(tmp_path, monkeypatch):
    monkeypatch.setenv("IFA_BENCH_CACHE", str(tmp_path / "cache"))
    root = generate_synthetic(tmp_path / "ds", seed=0, size=(32, 64), counts={"train": 2, "val": 2})

    def load():
        return [SegDataset("synthetic", s, root, scan_split("synthetic", root, s).samples, SYNTHETIC_CLASSES,
                           SYNTHETIC_PALETTE) for s in ("train", "val")]
    return root, load


def test_clean_dataset_is_read_once_then_cached(splits, tmp_path):
    _, load = splits
    assert verify_before_training(*load()) is True
    assert verify_before_training(*load()) is False  # same manifest: not read again
    assert len(list((tmp_path / "cache" / "verified").iterdir())) == 1


def test_a_changed_file_is_checked_again_and_found(splits):
    _, load = splits
    train, val = load()
    assert verify_before_training(train, val) is True
    label = val.samples[1].label
    Image.fromarray(np.full((32, 64), 77, np.uint8)).save(label)
    os.utime(label, ns=(1, 1))  # a different mtime as well as size
    with pytest.raises(UserError, match=rf"data: {label}: label values 77 out of range"):
        verify_before_training(*load())


def test_train_split_headers_and_sizes(splits):
    _, load = splits
    train, val = load()
    Image.fromarray(np.zeros((16, 64), np.uint8)).save(train.samples[0].label)
    Image.fromarray(np.zeros((32, 64, 3), np.uint8)).save(train.samples[1].label)
    with pytest.raises(UserError, match=r"does not match image .* \(\+1 more; `ifa-bench data verify` lists"):
        verify_before_training(train, val)


def test_truncated_val_png(splits):
    _, load = splits
    train, val = load()
    path = val.samples[0].image
    path.write_bytes(path.read_bytes()[:-64])
    with pytest.raises(UserError, match=rf"{path}: corrupt or unreadable image"):
        verify_before_training(train, val)
