"""`data verify` on Cityscapes compares *_gtFine_labelTrainIds.png with *_gtFine_labelIds.png wherever both exist
(a sample by default, all with --full): the loader reads the trainIds file, the official evaluator the labelIds one."""
import numpy as np

from bench.cli import main
from bench.data.label_agreement import SAMPLE, label_pairs, sample_pairs
from tests.data.fixtures import make_cityscapes, write_label

# cityscapesScripts labels.py (id -> trainId), written out here independently of bench.data.classes
OFFICIAL = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12, 26: 13,
            27: 14, 28: 15, 31: 16, 32: 17, 33: 18}


def _with_train_ids(root, n_val):
    """A labelIds dataset plus the labelTrainIds files createTrainIdLabelImgs would write."""
    samples = make_cityscapes(root, n_train=0, n_val=n_val, label_kind="labelIds")["val"]
    for s in samples:
        train = np.vectorize(lambda v: OFFICIAL.get(int(v), 255))(s.raw).astype(np.uint8)
        write_label(train, s.label.with_name(s.label.name.replace("_labelIds", "_labelTrainIds")))
    return samples


def test_agreeing_files_pass_and_a_zeroed_train_ids_file_is_reported(tmp_path, capsys):
    samples = _with_train_ids(tmp_path, 3)
    assert main(["data", "verify", str(tmp_path), "--dataset", "cityscapes", "--split", "val"]) == 0
    assert "labelTrainIds vs labelIds: checked all of 3" in capsys.readouterr().out
    bad = samples[1].label.with_name(samples[1].label.name.replace("_labelIds", "_labelTrainIds"))
    write_label(np.zeros_like(samples[1].raw), bad)
    assert main(["data", "verify", str(tmp_path), "--dataset", "cityscapes", "--split", "val"]) != 0
    out = capsys.readouterr().out
    assert f"PROBLEM {bad}: disagrees with {samples[1].label}" in out


def test_sample_by_default_every_file_with_full(tmp_path, capsys):
    samples = _with_train_ids(tmp_path, SAMPLE + 4)
    pairs = label_pairs(tmp_path, "val")
    assert len(pairs) == SAMPLE + 4
    sampled = sample_pairs(pairs, full=False)
    assert len(sampled) == SAMPLE and sampled[0] == pairs[0] and sampled[-1] == pairs[-1]
    skipped = next(p for p in pairs if p not in sampled)
    write_label(np.full((32, 64), 3, np.uint8), skipped[0])
    assert main(["data", "verify", str(tmp_path), "--dataset", "cityscapes", "--split", "val"]) == 0
    assert f"a sample of {SAMPLE} (--full: all)" in capsys.readouterr().out
    assert main(["data", "verify", str(tmp_path), "--dataset", "cityscapes", "--split", "val", "--full"]) != 0
    assert f"PROBLEM {skipped[0]}: disagrees" in capsys.readouterr().out
    assert samples
