"""Kill tests for bench/measure/plan.py (issue 32's mutation pass): every measure setting carried into the plan, and
the heads of `measure --all` (in-process, nothing measured)."""
from pathlib import Path

import pytest

from bench.config import ExperimentConfig
from bench.config.experiment import MeasureConfig
from bench.config.model import ModelConfig
from bench.errors import UserError
from bench.measure.plan import ALL_HEADS, MeasureSettings, _with_head, label, plan, settings_of
from tests.sweep.conftest import TINY_HEADS, tiny_experiment


def test_every_measure_setting_is_carried():
    m = MeasureConfig(input_size=[48, 80], warmup=2, runs=7, latency=False, processes=4, max_processes=9, span_s=33.0)
    assert settings_of(m) == MeasureSettings(input_size=(48, 80), warmup=2, runs=7, latency=False, processes=4,
                                             max_processes=9, span_s=33.0)
    assert settings_of(m, runs=3, warmup=None) == MeasureSettings(input_size=(48, 80), warmup=2, runs=3, latency=False,
                                                                  processes=4, max_processes=9, span_s=33.0)


def test_measure_all_plans_every_head_on_the_backbone():
    cfg = ExperimentConfig.model_validate(tiny_experiment(Path("/nonexistent")))
    planned = plan(cfg, all_heads=True)
    assert [p.label for p in planned] == [label for label, _, _ in ALL_HEADS]
    assert [(p.model.head.name, p.model.head.formulation if p.model.head.name == "ifa" else None) for p in planned] \
        == [(head, formulation) for _, head, formulation in ALL_HEADS]
    assert all(p.model.backbone == cfg.model.backbone for p in planned)
    ifa = planned[0].model.head
    assert (ifa.channels, tuple(ifa.mlp), ifa.pe_dim) == (16, (16, 16), 8)  # the experiment's own IFA options kept


def _cfg(head="ifa", **eval_):
    data = tiny_experiment(Path("/nonexistent"))
    data["model"]["head"] = dict(TINY_HEADS[head])
    data["eval"].update(eval_)
    return ExperimentConfig.model_validate(data)


def test_each_head_is_queried_as_the_experiment_evaluates_it():
    """The query mode is the planned model's, under the experiment's eval settings: the IFA rows of `--all` are
    queried at the experiment's stride, the other heads never."""
    planned = plan(_cfg("ifa", ifa_query_stride=4), all_heads=True)
    assert [p.query for p in planned] == [("upsample", 4), ("upsample", 4), None, None, None]
    assert [p.query for p in plan(_cfg("ifa", ifa_query="label"), all_heads=True)] == [("label", None)] * 2 + [None] * 3
    assert [p.query for p in plan(_cfg("ifa", ifa_query_stride=2))] == [("upsample", 2)]
    assert [p.query for p in plan(_cfg("ifa"))] == [None]  # the default mode
    assert [(p.label, p.query) for p in plan(_cfg("fpn"))] == [("Semantic-FPN", None)]


def test_other_heads_get_their_defaults_and_the_own_head_keeps_its_options():
    planned = {p.label: p.model.head for p in plan(_cfg("fpn"), all_heads=True)}
    assert (planned["Semantic-FPN"].channels, planned["Semantic-FPN"].scale_channels) == (16, 8)  # its own options
    defaults = ModelConfig.model_validate({"num_classes": 10, "head": {"name": "ifa"}}).head
    assert planned["IFA (fused)"].channels == defaults.channels != 16
    assert planned["IFA (reference)"].formulation == "reference" and planned["IFA (fused)"].formulation == "fused"
    ppm = ModelConfig.model_validate({"num_classes": 10, "head": {"name": "ppm"}}).head
    assert tuple(planned["PPM (PSPNet)"].pool_scales) == tuple(ppm.pool_scales) != (1, 2)


def test_settings_given_or_the_experiments_and_the_kwargs():
    cfg = _cfg("ifa")
    own = plan(cfg)[0]
    assert own.settings == settings_of(cfg.measure) and own.model == cfg.model and own.label == "IFA (auto)"
    assert own.measure_kwargs() == dict(input_size=(32, 64), warmup=0, runs=2, latency=True, processes=0,
                                        max_processes=None, span_s=cfg.measure.span_s, memory=True)
    given = MeasureSettings(input_size=(8, 8), warmup=1, runs=1, latency=False, processes=2, max_processes=3,
                            span_s=5.0, memory=False)
    assert [p.settings for p in plan(cfg, given, all_heads=True)] == [given] * len(ALL_HEADS)
    assert settings_of() == settings_of(MeasureConfig())


def test_labels_of_heads_outside_measure_all():
    assert label(ModelConfig.model_validate({"num_classes": 10, "head": {"name": "fcn"}})) == "FCN"
    assert label(ModelConfig.model_validate({"num_classes": 10, "head": {"name": "ifa", "formulation": "reference"}})) \
        == "IFA (reference)"


def test_a_head_that_does_not_validate_is_named_with_the_experiment():
    with pytest.raises(UserError) as exc:
        _with_head(_cfg("ifa"), "ifa", "no-such-formulation")
    assert str(exc.value).startswith("tiny with head ifa")
