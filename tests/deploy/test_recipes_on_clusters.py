"""Every recipe in experiments/ takes its data and ImageNet weights from the command line (docs/cluster.md, "Data and
ImageNet weights"): `--set data.root=...` and `--set model.backbone.pretrained=...` reach every trial of the sweep,
so a cluster points them at its mounted volume without editing the YAML. Nothing starts (no Ray, no files read)."""
from pathlib import Path

import pytest

from bench.sweep.spec.trials import load_sweep

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted(p for p in (ROOT / "experiments").rglob("*.yaml") if p.parent.name != "base")
DATA, WEIGHTS = "/shared/data/some-dataset", "/shared/weights/imagenet-backbone.pth"


def test_there_are_recipes():
    assert len(RECIPES) >= 10


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_data_root_and_pretrained_weights_come_from_set(recipe):
    sweep = load_sweep(recipe, [f"data.root={DATA}", f"model.backbone.pretrained={WEIGHTS}"])
    assert sweep.trials
    for trial in sweep.trials:
        assert str(trial.config.data.root) == DATA, trial.trial_id
        assert str(trial.config.model.backbone.pretrained) == WEIGHTS, trial.trial_id


def test_without_set_the_recipe_keeps_its_own_root():
    (trial, *_) = load_sweep(ROOT / "experiments" / "cityscapes_r50.yaml").trials
    assert str(trial.config.data.root) != DATA and trial.config.model.backbone.pretrained is None
