"""Broken datasets: the loader names the file, and `ifa-bench data verify` lists every problem in one run."""
import numpy as np
import pytest
from PIL import Image

from bench.cli import main
from bench.data import open_dataset
from bench.errors import UserError
from tests.data.fixtures import (corrupt_png, make_ade20k, make_cityscapes, make_pascal_context, write_image,
                                 write_label)


def _shrink(path):
    write_label(np.asarray(Image.open(path))[:16], path)


def test_loader_errors_name_the_file(tmp_path):
    fx = make_cityscapes(tmp_path, n_train=4, n_val=1)["train"]
    _shrink(fx[1].label)
    bad = fx[2].raw.copy()
    bad[0, 0] = 40
    write_label(bad, fx[2].label)
    corrupt_png(fx[3].image)
    ds = open_dataset("cityscapes", tmp_path, "train")
    index = {ds.image_path(i): i for i in range(len(ds))}
    ds.load(index[str(fx[0].image)])  # intact
    with pytest.raises(UserError, match=r"label size 16x64 does not match image .*\(32x64\)") as e1:
        ds.load(index[str(fx[1].image)])
    assert str(e1.value).startswith(str(fx[1].label))
    with pytest.raises(UserError, match=r"label values 40 out of range for Cityscapes labelTrainIds") as e2:
        ds.load(index[str(fx[2].image)])
    assert str(e2.value).startswith(str(fx[2].label))
    with pytest.raises(UserError, match="corrupt or unreadable image") as e3:
        ds.load(index[str(fx[3].image)])
    assert str(e3.value).startswith(str(fx[3].image))


def test_colour_label_is_refused(tmp_path):
    fx = make_ade20k(tmp_path, n_train=1, n_val=1)["train"]
    Image.fromarray(np.zeros((32, 64, 3), np.uint8)).save(fx[0].label)
    with pytest.raises(UserError, match=r"single-channel .* got mode RGB"):
        open_dataset("ade20k", tmp_path, "train").load(0)


def test_ade20k_value_above_150_is_out_of_range(tmp_path):
    fx = make_ade20k(tmp_path, n_train=1, n_val=1)["val"]
    write_label(np.full((32, 64), 151, np.uint8), fx[0].label)
    with pytest.raises(UserError, match=r"label values 151 out of range"):
        open_dataset("ade20k", tmp_path, "val").load(0)


def test_layout_problems_stop_the_loader_with_the_first_file(tmp_path):
    fx = make_cityscapes(tmp_path, n_train=2, n_val=1)
    fx["train"][0].label.unlink()
    with pytest.raises(UserError, match=r"no label \(expected .*gtFine_labelTrainIds.png") as e:
        open_dataset("cityscapes", tmp_path, "train")
    assert str(e.value).startswith(str(fx["train"][0].image)) and "data verify" in str(e.value)
    fx["val"][0].image.unlink()
    with pytest.raises(UserError, match="orphan label"):
        open_dataset("cityscapes", tmp_path, "val")


def test_pascal_context_listed_id_without_files(tmp_path):
    fx = make_pascal_context(tmp_path, n_train=2, n_val=1)
    fx["train"][1].label.unlink()
    with pytest.raises(UserError, match=r"SegmentationClassContext/2008_000001.png: missing label"):
        open_dataset("pascal_context_59", tmp_path, "train")


def _broken_cityscapes(root):
    """Five broken things across two splits, plus one intact pair."""
    fx = make_cityscapes(root, n_train=5, n_val=1)
    train = fx["train"]
    train[0].label.unlink()  # 1 missing label
    _shrink(train[1].label)  # 2 size mismatch
    bad = train[2].raw.copy()
    bad[3, 3] = 77
    write_label(bad, train[2].label)  # 3 out-of-range value
    corrupt_png(train[3].label)  # 4 corrupt PNG
    orphan = root / "gtFine" / "train" / "aachen" / "aachen_000099_000019_gtFine_labelTrainIds.png"
    write_label(np.zeros((32, 64), np.uint8), orphan)  # 5 orphan label
    fx["val"][0].image.unlink()
    fx["val"][0].label.unlink()  # 6 empty split
    return train, orphan


def test_verify_lists_every_problem_in_one_run(tmp_path, capsys):
    train, orphan = _broken_cityscapes(tmp_path)
    code = main(["data", "verify", str(tmp_path), "--dataset", "cityscapes"])
    out = capsys.readouterr().out
    problems = [line for line in out.splitlines() if line.startswith("PROBLEM ")]
    assert code == 1
    expected = [(train[0].image, "no label"), (train[1].label, "does not match image"),
                (train[2].label, "label values 77 out of range"), (train[3].label, "corrupt or unreadable label"),
                (orphan, "orphan label"), (tmp_path, "split 'val' is empty")]
    for path, what in expected:
        assert any(line.startswith(f"PROBLEM {path}:") and what in line for line in problems), (path, what, out)
    assert len(problems) == len(expected), out
    assert "split train: 4 image/label pairs, 5 problems" in out
    assert "split val: 0 image/label pairs, 1 problems" in out
    assert out.rstrip().endswith("6 problems")


def test_verify_clean_dataset_exits_0_with_a_summary(tmp_path, capsys):
    make_ade20k(tmp_path, n_train=3, n_val=2)
    assert main(["data", "verify", str(tmp_path), "--dataset", "ade20k"]) == 0
    out = capsys.readouterr().out
    assert "PROBLEM" not in out and "split train: 3 image/label pairs, 0 problems" in out
    assert "sizes: 32x64 (3)" in out and "official release has 20210" in out
    assert main(["data", "verify", str(tmp_path), "--dataset", "ade20k", "--split", "val", "--strict-counts"]) == 1


@pytest.mark.parametrize("argv", [
    ["data", "verify", "{root}/missing", "--dataset", "cityscapes"],
    ["data", "verify", "{root}", "--dataset", "imagenet"],
    ["data", "verify", "{root}"],
    ["data", "synth", "{root}/s", "--size", "12xfoo"],
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, argv):
    argv = [a.format(root=tmp_path) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse errors
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "Traceback" not in err[0]


def test_synth_refuses_a_non_dataset_directory(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    assert main(["data", "synth", str(tmp_path / "x"), "--train", "1", "--val", "1"]) == 2
    assert "is not a synthetic dataset" in capsys.readouterr().err
    assert (tmp_path / "x" / "notes.txt").read_text() == "mine"


def test_verify_synthetic_checks_the_meta_file(tmp_path, capsys):
    assert main(["data", "synth", str(tmp_path / "s"), "--train", "2", "--val", "1", "--size", "32x64"]) == 0
    assert main(["data", "verify", str(tmp_path / "s"), "--dataset", "synthetic"]) == 0
    write_image(np.zeros((32, 64, 3), np.uint8),
                tmp_path / "s" / "leftImg8bit" / "val" / "synth" / "synth_000005_000019_leftImg8bit.png")
    (tmp_path / "s" / "synthetic.json").unlink()
    capsys.readouterr()
    assert main(["data", "verify", str(tmp_path / "s"), "--dataset", "synthetic"]) == 1
    out = capsys.readouterr().out
    assert "synthetic.json: missing" in out and "synth_000005_000019_leftImg8bit.png: no label" in out


def test_palette_and_16_bit_labels(tmp_path):
    fx = make_pascal_context(tmp_path, n_train=1, n_val=1)["train"]
    pal = Image.fromarray(fx[0].raw, mode="P")
    pal.putpalette([v for i in range(256) for v in (i, 255 - i, 0)])
    pal.save(fx[0].label)  # indices are the ids, whatever the colours
    ds = open_dataset("pascal_context_60", tmp_path, "train")
    assert np.array_equal(ds.load(0)[1], fx[0].raw)
    Image.fromarray(fx[0].raw.astype(np.uint16) * 300).save(fx[0].label)  # 16-bit, values up to 17700
    with pytest.raises(UserError, match=r"do not fit 8 bits") as e:
        ds.load(0)
    assert str(e.value).startswith(str(fx[0].label))


def test_a_16_bit_image_is_scaled_not_clipped(tmp_path):
    """Issue 28: a 16-bit greyscale PNG was read as all white (clipped by PIL's convert). It is scaled to 8 bits."""
    import numpy as np
    from PIL import Image

    from bench.data.image_io import read_image

    values = np.array([[0, 257, 32896], [65535, 1000, 50000]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    rgb = read_image(path)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    assert rgb[..., 0].tolist() == [[0, 1, 128], [255, 4, 195]]
    assert (rgb[..., 0] == rgb[..., 2]).all()
