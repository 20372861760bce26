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


HUGE = 10**30


@pytest.mark.parametrize("path, value", [
    ("model.aux_head.channels", HUGE), ("train.ignore_index", -HUGE), ("data.crop_size", [HUGE, 64]),
    ("measure.runs", 2**31), ("model.backbone.output_stride", HUGE), ("eval.batch_size", HUGE),
])
def test_integers_beyond_a_c_int_refused_naming_key_and_value(path, value):
    """Variants of `seed: 10**30` in keys without a bound of their own: an OverflowError traceback in torch before."""
    shown = value[0] if isinstance(value, list) else value
    with pytest.raises(UserError, match=rf"e\.yaml: {path}: {shown} is beyond any setting \(at most 2,147,483,647\)"):
        validate(ExperimentConfig, _with(path, value), "e.yaml")


def test_fields_with_their_own_bound_keep_its_message_and_the_largest_c_int_is_a_value():
    with pytest.raises(UserError, match=r"seed: Input should be less than or equal to 4294967295"):
        validate(ExperimentConfig, _with("seed", HUGE), "e.yaml")
    with pytest.raises(UserError, match=r"train.threads: Input should be less than or equal to 1024"):
        validate(ExperimentConfig, _with("train.threads", HUGE), "e.yaml")
    with pytest.raises(UserError, match=r"data.num_workers: Input should be less than or equal to 64"):
        validate(ExperimentConfig, _with("data.num_workers", 65), "e.yaml")
    assert validate(ExperimentConfig, _with("measure.runs", 2**31 - 1), "e.yaml").measure.runs == 2**31 - 1
