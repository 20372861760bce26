"""`ifa-bench predict` and `ifa-bench eval --save-preds DIR --format cityscapes` on a tiny Cityscapes tree."""
import json

import numpy as np
import torch
from PIL import Image

from bench.cli import main
from bench.config.model import ModelConfig
from bench.models import build_segmentor
from tests.data.fixtures import make_cityscapes

# cityscapesScripts labels.py, trainId -> id, written out here independently of bench.data.classes
OFFICIAL_TRAIN_TO_ID = [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]
MODEL = {"num_classes": 19, "backbone": {"name": "resnet18", "stem": "deep", "width": 0.25},
         "head": {"name": "ifa", "channels": 8, "mlp": [16]}, "aux_head": {"enabled": False}}


def _setup(tmp_path):
    samples = make_cityscapes(tmp_path / "cs", n_train=0, n_val=2, size=(32, 64), label_kind="labelIds")["val"]
    config = tmp_path / "exp.yaml"
    config.write_text(json.dumps({"name": "t", "seed": 0, "model": MODEL, "eval": {"mode": "whole"},
                                  "train": {"device": "cpu"},
                                  "data": {"dataset": "cityscapes", "root": str(tmp_path / "cs"), "val_split": "val",
                                           "crop_size": [32, 64], "num_workers": 0}}))
    torch.manual_seed(0)
    net = build_segmentor(ModelConfig.model_validate(MODEL))
    with torch.no_grad():
        net.head.mlp.linears[-1].weight.mul_(50)
    torch.save({"model": net.state_dict()}, tmp_path / "m.pt")
    return samples, config


def _png(path):
    return np.asarray(Image.open(path))


def test_predict_and_eval_save_preds(tmp_path, capsys):
    samples, config = _setup(tmp_path)
    out = tmp_path / "pred"
    assert main(["predict", str(tmp_path / "m.pt"), str(tmp_path / "cs" / "leftImg8bit"), "--config", str(config),
                 "--out", str(out), "--no-progress"]) == 0
    saved = tmp_path / "saved"
    assert main(["eval", str(tmp_path / "m.pt"), "--config", str(config), "--save-preds", str(saved),
                 "--format", "cityscapes", "--no-progress"]) == 0
    table = np.full(256, 0, np.uint8)
    table[:19] = OFFICIAL_TRAIN_TO_ID
    classes_seen = set()
    for s in samples:
        stem = s.image.name[:-len("_leftImg8bit.png")]
        train_ids = _png(out / f"{stem}_trainIds.png")
        assert train_ids.shape == (32, 64) and train_ids.max() < 19
        classes_seen |= set(np.unique(train_ids).tolist())
        assert np.array_equal(_png(out / f"{stem}_labelIds.png"), table[train_ids])
        assert _png(out / f"{stem}_overlay.png").shape == (32, 64, 3)
        # the submission layout: DIR/CITY/CITY_SEQ_FRAME_leftImg8bit.png holding labelIds
        submitted = saved / s.image.parent.name / s.image.name
        assert np.array_equal(_png(submitted), table[train_ids])
    assert len(classes_seen) > 1


def test_save_preds_cityscapes_format_refuses_other_datasets(tmp_path, capsys):
    _, config = _setup(tmp_path)
    data = json.loads(config.read_text())
    data["data"] = {"dataset": "synthetic", "root": str(tmp_path / "syn"), "generate": True,
                    "synthetic_size": [32, 64], "synthetic_train": 1, "synthetic_val": 1, "crop_size": [32, 64],
                    "num_workers": 0}
    config.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "m.pt"), "--config", str(config), "--save-preds", str(tmp_path / "x"),
                 "--format", "cityscapes", "--no-progress"]) == 2
    assert "--format cityscapes" in capsys.readouterr().err and not (tmp_path / "x").exists()
