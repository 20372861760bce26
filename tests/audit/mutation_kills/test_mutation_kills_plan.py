"""Kill tests for bench/measure/plan.py (issue 32's mutation pass): every measure setting carried into the plan, and
the heads of `measure --all` (in-process, nothing measured)."""
from pathlib import Path

from bench.config import ExperimentConfig
from bench.config.experiment import MeasureConfig
from bench.measure.plan import ALL_HEADS, MeasureSettings, plan, settings_of
from tests.sweep.conftest import tiny_experiment


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
