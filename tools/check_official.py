"""`make check-official`: the official cityscapesScripts evaluator against `ifa-bench eval` on a generated fixture.

    .venv/bin/python tools/check_official.py prepare DIR           # main venv: fixture, eval, --save-preds
    .venv-official/bin/python tools/check_official.py official DIR  # cityscapesscripts 2.3.0 (numpy < 2.4)

prepare writes a Cityscapes tree with random images and labelIds ground truth (every id 0..33, including the
ones the benchmark ignores), a tiny IFA experiment and a randomly initialised checkpoint, then runs
`ifa-bench eval --save-preds DIR/preds --format cityscapes --out DIR/eval.json`. official checks the project's
labelId <-> trainId table against cityscapesscripts.helpers.labels, runs evalPixelLevelSemanticLabeling on the
saved labelIds PNGs, and compares mIoU and per-class IoU with the project's (to 1e-6). Exit 1 on a difference.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TOL = 1e-6


def prepare(out: Path) -> int:
    import numpy as np
    import torch
    from PIL import Image

    from bench.config.model import ModelConfig
    from bench.data.classes import CITYSCAPES_LABEL_ID_TO_TRAIN_ID
    from bench.models import build_segmentor

    rng = np.random.default_rng(0)
    size = (64, 128)
    for i in range(4):
        city = ("frankfurt", "lindau")[i % 2]
        stem = f"{city}_{i:06d}_000019"
        img_dir, gt_dir = out / "leftImg8bit" / "val" / city, out / "gtFine" / "val" / city
        img_dir.mkdir(parents=True, exist_ok=True)
        gt_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(img_dir / f"{stem}_leftImg8bit.png")
        tiles = rng.integers(0, 34, (size[0] // 8, size[1] // 8)).astype(np.uint8)
        label = np.kron(tiles, np.ones((8, 8), np.uint8))
        Image.fromarray(label, mode="L").save(gt_dir / f"{stem}_gtFine_labelIds.png")
    model = {"num_classes": 19, "backbone": {"name": "resnet18", "stem": "deep", "width": 0.25},
             "head": {"name": "ifa", "channels": 16, "mlp": [32, 16], "sampling": "release"},
             "aux_head": {"enabled": False}}
    config = out / "exp.json.yaml"
    config.write_text(json.dumps({  # JSON is YAML
        "name": "check-official", "seed": 0,
        "data": {"dataset": "cityscapes", "root": str(out), "val_split": "val", "crop_size": list(size),
                 "num_workers": 0},
        "model": model, "eval": {"mode": "whole"}, "train": {"device": "cpu"},
    }))
    torch.manual_seed(0)
    net = build_segmentor(ModelConfig.model_validate(model))
    with torch.no_grad():  # spread the logits so that many classes are predicted
        net.head.mlp.linears[-1].weight.mul_(50)
    torch.save({"model": net.state_dict()}, out / "random.pt")
    (out / "project_table.json").write_text(json.dumps(CITYSCAPES_LABEL_ID_TO_TRAIN_ID))
    cmd = [str(Path(sys.executable).with_name("ifa-bench")), "eval", str(out / "random.pt"), "--config", str(config),
           "--save-preds", str(out / "preds"), "--format", "cityscapes", "--out", str(out / "eval.json"),
           "--no-progress"]
    print("+", " ".join(cmd))
    return subprocess.call(cmd)


def official(out: Path) -> int:
    import numpy as np
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as ev
    from cityscapesscripts.helpers.labels import labels

    table = {int(k): v for k, v in json.loads((out / "project_table.json").read_text()).items()}
    official_table = {l.id: l.trainId for l in labels if l.trainId not in (255, -1) and not l.ignoreInEval}
    if table != official_table:
        print(f"FAIL: labelId -> trainId table differs from cityscapesscripts: {table} vs {official_table}")
        return 1
    gts = sorted(str(p) for p in (out / "gtFine" / "val").glob("*/*_gtFine_labelIds.png"))
    ev.args.cityscapesPath = str(out)
    ev.args.predictionPath = str(out / "preds")
    ev.args.evalInstLevelScore = False
    ev.args.JSONOutput = False
    ev.args.quiet = True
    preds = [ev.getPrediction(ev.args, gt) for gt in gts]
    result = ev.evaluateImgLists(preds, gts, ev.args)
    ours = json.loads((out / "eval.json").read_text())
    off_miou = 100.0 * result["averageScoreClasses"]
    print(f"official cityscapesScripts mIoU {off_miou:.9f}  ifa-bench eval mIoU {ours['miou']:.9f}  "
          f"difference {abs(off_miou - ours['miou']):.2e}  ({len(gts)} images)")
    bad = abs(off_miou - ours["miou"]) > TOL
    for name, iou in result["classScores"].items():
        mine = ours["per_class_iou"].get(name)
        if mine is None:
            continue
        theirs = 100.0 * iou
        if (np.isnan(theirs) != (mine is None or np.isnan(mine))) or (not np.isnan(theirs) and abs(theirs - mine) > TOL):
            print(f"  class {name}: official {theirs}  ifa-bench {mine}")
            bad = True
    print("FAIL" if bad else f"OK: equal to {TOL:g}")
    return 1 if bad else 0


if __name__ == "__main__":
    action, directory = sys.argv[1], Path(sys.argv[2])
    directory.mkdir(parents=True, exist_ok=True)
    sys.exit(prepare(directory) if action == "prepare" else official(directory))
