"""The synthetic dataset: deterministic bytes, thin structures, not solvable by colour alone, safe races."""
import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

from bench.config.experiment import DataConfig
from bench.data import build_dataset, generate_synthetic
from bench.data.classes import SYNTHETIC_CLASSES
from bench.errors import UserError

POLE, WIRE = SYNTHETIC_CLASSES.index("pole"), SYNTHETIC_CLASSES.index("wire")


def _digests(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_and_other_seed_other_images(tmp_path):
    a = generate_synthetic(tmp_path / "a", seed=3, size=(48, 96), counts={"train": 4, "val": 2})
    b = generate_synthetic(tmp_path / "b", seed=3, size=(48, 96), counts={"train": 4, "val": 2})
    c = generate_synthetic(tmp_path / "c", seed=4, size=(48, 96), counts={"train": 4, "val": 2})
    da, db, dc = _digests(a), _digests(b), _digests(c)
    assert len(da) == 2 * 6 + 1 and da == db
    images = [k for k in da if k.endswith("_leftImg8bit.png")]
    assert all(da[k] != dc[k] for k in images)
    meta = json.loads((a / "synthetic.json").read_text())
    assert meta["seed"] == 3 and meta["size"] == [48, 96] and meta["splits"] == {"train": 4, "val": 2}
    assert meta["classes"] == list(SYNTHETIC_CLASSES) and len(meta["palette"]) == 10
    assert "generator_version" in meta


def test_more_images_extend_a_split_without_changing_the_first(tmp_path):
    small = _digests(generate_synthetic(tmp_path / "s", size=(48, 96), counts={"train": 2, "val": 1}))
    large = _digests(generate_synthetic(tmp_path / "l", size=(48, 96), counts={"train": 4, "val": 1}))
    shared = [k for k in small if k != "synthetic.json"]
    assert all(small[k] == large[k] for k in shared)


def test_existing_dataset_with_other_parameters_is_refused(tmp_path):
    generate_synthetic(tmp_path / "d", size=(48, 96), counts={"train": 2, "val": 1})
    before = _digests(tmp_path / "d")
    generate_synthetic(tmp_path / "d", size=(48, 96), counts={"train": 2, "val": 1})  # same: a no-op
    with pytest.raises(UserError, match=r"synthetic.json: holds a synthetic dataset made with"):
        generate_synthetic(tmp_path / "d", size=(64, 96), counts={"train": 2, "val": 1})
    assert _digests(tmp_path / "d") == before


def _run_lengths(mask: np.ndarray) -> np.ndarray:
    """For each True pixel, the length of the horizontal run of True pixels it belongs to."""
    out = np.zeros(mask.shape, np.int64)
    for r, row in enumerate(mask):
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row.astype(np.int8), [0]])))
        for a, b in zip(edges[::2], edges[1::2]):
            out[r, a:b] = b - a
    return out


def test_scenes_hold_thin_structures_and_small_objects(tmp_path):
    cfg = DataConfig(dataset="synthetic", root=tmp_path / "d", generate=True, synthetic_train=12, synthetic_val=1)
    ds = build_dataset(cfg, "train")
    labels = [ds.load(i)[1] for i in range(len(ds))]
    for cls, min_thin in ((POLE, 0.9), (WIRE, 0.95)):
        present = sum((lab == cls).any() for lab in labels)
        mask = np.stack(labels) == cls
        thin = np.stack([(_run_lengths(m) <= 3) | (_run_lengths(m.T).T <= 3) for m in mask])
        share = mask.mean()
        assert present >= 11, (cls, present)
        assert (thin & mask).sum() / mask.sum() >= min_thin  # 1-3 px across
        assert 0.002 < share < 0.05  # present but small
    # poles: many separate vertical components, 1-3 px wide
    widths = [w for lab in labels for w in np.unique(_run_lengths(lab == POLE)) if w]
    assert set(widths) & {1, 2, 3} and np.mean(np.asarray(widths) <= 3) > 0.6
    # every class appears and the large ones dominate
    counts = np.bincount(np.concatenate([lab.ravel() for lab in labels]), minlength=256)
    assert (counts[:10] > 0).all() and counts[255] > 0


def test_colour_alone_does_not_solve_it(tmp_path):
    """A nearest-class-mean colour classifier fit on train gets well below perfect on val (measured ~45% pixel
    accuracy) but above chance, so heads have to use texture and context."""
    cfg = DataConfig(dataset="synthetic", root=tmp_path / "d", generate=True, synthetic_train=8, synthetic_val=4)
    train, val = build_dataset(cfg, "train"), build_dataset(cfg, "val")

    def pixels(ds):
        pairs = [ds.load(i) for i in range(len(ds))]
        return (np.concatenate([p[0].reshape(-1, 3) for p in pairs]).astype(np.float64),
                np.concatenate([p[1].ravel() for p in pairs]))

    x, y = pixels(train)
    means = np.stack([x[y == c].mean(axis=0) for c in range(10)])
    xv, yv = pixels(val)
    keep = yv != 255
    pred = np.argmin(((xv[keep, None, :] - means[None]) ** 2).sum(-1), axis=1)
    acc = (pred == yv[keep]).mean()
    assert 0.2 < acc < 0.7, acc


RACE = """
import sys
from bench.data import generate_synthetic
generate_synthetic(sys.argv[1], seed=1, size=(48, 96), counts={"train": 12, "val": 4})
"""


def test_concurrent_generation_yields_one_complete_dataset(tmp_path):
    root = tmp_path / "shared" / "synth"
    procs = [subprocess.Popen([sys.executable, "-c", RACE, str(root)], stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    reference = generate_synthetic(tmp_path / "ref", seed=1, size=(48, 96), counts={"train": 12, "val": 4})
    assert _digests(root) == _digests(reference)
    leftovers = [p.name for p in root.parent.iterdir() if p.name not in {"synth", ".synth.lock"}]
    assert leftovers == []


def test_the_demo_size_generates_every_image_and_label(tmp_path):
    # the demo's size and counts (experiments/synthetic.yaml); how long it takes is not a unit test's business
    root = generate_synthetic(tmp_path / "d", size=(128, 256), counts={"train": 64, "val": 16})
    for split, n in (("train", 64), ("val", 16)):
        images = sorted((root / "leftImg8bit" / split).rglob("*_leftImg8bit.png"))
        labels = sorted((root / "gtFine" / split).rglob("*_gtFine_labelTrainIds.png"))
        assert len(images) == len(labels) == n, split


def test_custom_split_names_and_bad_ones(tmp_path, capsys):
    from bench.cli import main

    generate_synthetic(tmp_path / "d", size=(32, 64), counts={"fit": 2, "holdout": 1})
    assert main(["data", "verify", str(tmp_path / "d"), "--dataset", "synthetic"]) == 0
    out = capsys.readouterr().out
    assert "split fit: 2 image/label pairs, 0 problems" in out and "split holdout: 1 image/label pairs" in out
    with pytest.raises(UserError, match="split names must be plain directory names"):
        generate_synthetic(tmp_path / "e", size=(32, 64), counts={"../escape": 1})
    assert not (tmp_path / "escape").exists()
