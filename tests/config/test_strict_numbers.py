"""Booleans are refused in number fields of every config model; floats still take ints (issue 10, class 4)."""
import pytest

from bench.config import ExperimentConfig, validate
from bench.errors import UserError
from bench.sweep.spec.trials import Resources

BASE = {"data": {"dataset": "synthetic", "root": "/tmp/x"}, "model": {"num_classes": 3}}


def _with(path: str, value):
    import copy

    data = copy.deepcopy(BASE)
    *parents, last = path.split(".")
    cur = data
    for part in parents:
        cur = cur.setdefault(part, {})
    cur[last] = value
    return data


@pytest.mark.parametrize("path, value, shown", [
    ("train.iterations", True, "true"), ("train.batch_size", False, "false"), ("train.lr", True, "true"),
    ("data.crop_size", [True, 64], "[true, 64]"), ("seed", True, "true"), ("model.num_classes", True, "true"),
    ("model.backbone.output_stride", True, "true"), ("model.aux_head.channels", True, "true"),
    ("eval.scales", [1.0, True], "[1.0, true]"), ("train.threads", False, "false"),
])
def test_booleans_refused_naming_the_key(path, value, shown):
    with pytest.raises(UserError, match=rf"e\.yaml: {path}: expected a number, got {shown.replace('[', '.').replace(']', '.')}"):
        validate(ExperimentConfig, _with(path, value), "e.yaml")


def test_floats_take_ints_and_booleans_stay_booleans():
    cfg = validate(ExperimentConfig, _with("train.lr", 1), "e.yaml")
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)
    assert validate(ExperimentConfig, _with("data.flip", False), "e.yaml").data.flip is False
    assert validate(ExperimentConfig, _with("model.aux_head.enabled", False), "e.yaml").model.aux_head.enabled is False


def test_sweep_models_refuse_booleans_too():
    with pytest.raises(Exception, match="expected a number"):
        Resources(cpus=True)
    assert Resources(cpus=2).cpus == 2.0
