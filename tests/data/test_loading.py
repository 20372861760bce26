"""Loading each dataset from its real layout: pairing, label mappings, classes, root variants."""
import numpy as np
import pytest

from bench.config.experiment import DataConfig
from bench.data import build_dataset, open_dataset
from bench.data.image_io import read_image
from tests.data.fixtures import make_ade20k, make_cityscapes, make_pascal_context, write_label

# cityscapesScripts labels.py, written out independently of bench.data.classes
CITYSCAPES_EXPECTED = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11,
                       25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}


def _cfg(name, root, **kw):
    return DataConfig(dataset=name, root=root, **kw)


def test_cityscapes_train_ids_load_as_stored(tmp_path):
    fx = make_cityscapes(tmp_path, n_train=3, n_val=2)
    ds = build_dataset(_cfg("cityscapes", tmp_path), "train")
    assert len(ds) == 3 and ds.num_classes == 19 and ds.ignore_index == 255 and ds.name == "cityscapes"
    assert ds.classes[13] == "car" and ds.palette[13] == (0, 0, 142) and len(ds.palette) == 19
    by_path = {str(s.image): s for s in fx["train"]}
    for i in range(len(ds)):
        image, label = ds.load(i)
        sample = by_path[ds.image_path(i)]
        assert image.dtype == np.uint8 and image.shape == (32, 64, 3)
        assert np.array_equal(image, np.asarray(read_image(sample.image)))
        assert label.dtype == np.uint8 and np.array_equal(label, sample.raw)
    assert len(build_dataset(_cfg("cityscapes", tmp_path), "val")) == 2


def test_cityscapes_label_ids_are_converted_to_train_ids(tmp_path):
    fx = make_cityscapes(tmp_path, n_train=2, n_val=1, label_kind="labelIds")
    ds = build_dataset(_cfg("cityscapes", tmp_path), "train")
    seen = set()
    for i in range(len(ds)):
        _, label = ds.load(i)
        raw = next(s.raw for s in fx["train"] if str(s.image) == ds.image_path(i))
        expected = np.vectorize(lambda v: CITYSCAPES_EXPECTED.get(int(v), 255))(raw).astype(np.uint8)
        assert np.array_equal(label, expected)
        seen |= set(np.unique(raw).tolist())
        assert (label[raw == 26] == 13).all() and (label[raw == 7] == 0).all() and (label[raw == 0] == 255).all()
    assert {0, 7, 26, 33}.issubset(seen)


def test_cityscapes_prefers_train_ids_when_both_label_files_exist(tmp_path):
    fx = make_cityscapes(tmp_path, n_train=1, n_val=1)
    s = fx["train"][0]
    write_label(np.full_like(s.raw, 26), s.label.with_name(s.label.name.replace("labelTrainIds", "labelIds")))
    _, label = open_dataset("cityscapes", tmp_path, "train").load(0)
    assert np.array_equal(label, s.raw)


@pytest.mark.parametrize("nested", [True, False])
def test_ade20k_reduces_zero_label_and_maps_split_names(tmp_path, nested):
    fx = make_ade20k(tmp_path, n_train=2, n_val=1, nested=nested)
    root = tmp_path if nested else tmp_path  # nested: the parent of ADEChallengeData2016; else the folder itself
    ds = build_dataset(_cfg("ade20k", root), "train")
    assert len(ds) == 2 and ds.num_classes == 150 and ds.classes[0] == "wall" and ds.classes[-1] == "flag"
    for i, sample in enumerate(fx["train"]):
        assert ds.image_path(i) == str(sample.image)
        _, label = ds.load(i)
        expected = np.where(sample.raw == 0, 255, sample.raw.astype(np.int64) - 1).astype(np.uint8)
        assert np.array_equal(label, expected)
        assert (label[sample.raw == 0] == 255).all() and (label[sample.raw == 1] == 0).all()
    assert len(open_dataset("ade20k", root, "validation")) == 1 == len(open_dataset("ade20k", root, "val"))


def test_ade20k_root_may_be_the_challenge_folder_itself(tmp_path):
    make_ade20k(tmp_path, n_train=1, n_val=1, nested=True)
    ds = open_dataset("ade20k", tmp_path / "ADEChallengeData2016", "train")
    s = ds.samples[0]
    write_label(np.full((32, 64), 150, np.uint8), s.label)
    assert (ds.load(0)[1] == 149).all()


@pytest.mark.parametrize("nested", [True, False])
def test_pascal_context_59_ignores_background_and_60_keeps_it(tmp_path, nested):
    fx = make_pascal_context(tmp_path, n_train=2, n_val=2, nested=nested)
    root = tmp_path if nested else tmp_path
    ds59 = build_dataset(_cfg("pascal_context_59", root), "val")
    ds60 = build_dataset(_cfg("pascal_context_60", root), "val")
    assert ds59.num_classes == 59 and ds60.num_classes == 60
    assert ds60.classes[0] == "background" and ds59.classes[0] == "aeroplane" == ds60.classes[1]
    assert ds59.palette == ds60.palette[1:]
    assert len(ds59) == len(ds60) == 2  # the extra JPEG outside the lists is not picked up
    for i, sample in enumerate(fx["val"]):
        _, l59 = ds59.load(i)
        _, l60 = ds60.load(i)
        assert np.array_equal(l60, sample.raw)
        assert np.array_equal(l59, np.where(sample.raw == 0, 255, sample.raw.astype(int) - 1).astype(np.uint8))
        assert (l59[sample.raw == 0] == 255).all() and (l60[sample.raw == 0] == 0).all()


def test_pascal_context_root_may_be_voc2010(tmp_path):
    make_pascal_context(tmp_path, n_train=2, n_val=1)
    assert len(open_dataset("pascal_context_60", tmp_path / "VOCdevkit" / "VOC2010", "train")) == 2
    assert len(open_dataset("pascal_context_60", tmp_path / "VOCdevkit", "train")) == 2


def test_synthetic_generated_on_demand_goes_through_the_cityscapes_loader(tmp_path):
    cfg = _cfg("synthetic", tmp_path / "syn", generate=True, synthetic_size=(48, 96), synthetic_train=3,
               synthetic_val=2)
    train, val = build_dataset(cfg, "train"), build_dataset(cfg, "val")
    assert (len(train), len(val)) == (3, 2) and train.num_classes == 10 and "pole" in train.classes
    assert train.image_path(0).endswith("leftImg8bit/train/synth/synth_000000_000019_leftImg8bit.png")
    image, label = train.load(0)
    assert image.shape == (48, 96, 3) and label.shape == (48, 96)
    assert set(np.unique(label).tolist()) <= set(range(10)) | {255}
    # the same root opened as Cityscapes reads the very same pairs
    assert open_dataset("cityscapes", tmp_path / "syn", "train").samples[0].label == train.samples[0].label


def test_synthetic_without_generate_names_the_missing_dataset(tmp_path):
    from bench.errors import UserError

    with pytest.raises(UserError, match="ifa-bench data synth"):
        build_dataset(_cfg("synthetic", tmp_path / "nothing"), "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="synthetic.json"):
        build_dataset(_cfg("synthetic", tmp_path / "empty"), "train")


def test_dataset_pickles_for_dataloader_workers(tmp_path):
    import pickle

    make_cityscapes(tmp_path, n_train=1, n_val=1, label_kind="labelIds")
    ds = open_dataset("cityscapes", tmp_path, "train")
    clone = pickle.loads(pickle.dumps(ds))
    assert np.array_equal(clone.load(0)[1], ds.load(0)[1])


def test_synthetic_size_too_small_names_the_key(tmp_path):
    from bench.errors import UserError

    with pytest.raises(UserError, match=r"^data.synthetic_size: 8x64 is too small"):
        build_dataset(_cfg("synthetic", tmp_path / "s", generate=True, synthetic_size=(8, 64)), "train")
    assert not (tmp_path / "s").exists()
