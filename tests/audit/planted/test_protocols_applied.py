"""Evaluation protocols (issue 32, rows "protocols" and "protocol tasks"): the user's keys win over a built-in's, and
the protocol task evaluates with the protocol's eval settings, not the trial's. Without Ray: evaluate_protocol runs
in-process on a real checkpoint of a tiny model and real synthetic data."""
import numpy as np
import pytest
import torch

from bench.config import ExperimentConfig
from bench.engine.evaluation.bootstrap import load_per_image
from bench.sweep.folder import layout
from bench.sweep.spec.payload import trial_payload
from bench.sweep.spec.protocols import RELEASED_MS_SCALES, Protocol, parse_protocols
from bench.sweep.spec.trials import load_sweep
from bench.sweep.tasks.eval_tasks import evaluate_protocol
from tests.sweep.conftest import TINY_HEADS, tiny_experiment, write_spec


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp("planted-protocols") / "synthetic"


def _cfg(data_root, **eval_section) -> ExperimentConfig:
    raw = tiny_experiment(data_root, measure=False)
    raw["eval"].update(eval_section)
    return ExperimentConfig.model_validate(raw)


def test_the_users_keys_override_the_builtin_ones(data_root):
    """Catches: the built-in keys applied after the user's (`{name: slide, scales: [...]}` losing the user's scales,
    `{name: ms_flip, flip: false}` flipping anyway)."""
    cfg = _cfg(data_root)
    slide = Protocol("slide", {"scales": [0.5, 1.5], "flip": True}).eval_config(cfg, "t")
    assert (slide.mode, slide.scales, slide.flip) == ("slide", (0.5, 1.5), True)
    ss = Protocol("ss", {"mode": "slide", "scales": [2.0]}).eval_config(cfg, "t")
    assert (ss.mode, ss.scales) == ("slide", (2.0,))
    ms = Protocol("ms_flip", {"flip": False, "scales": [0.75, 1.0]}).eval_config(cfg, "t")
    assert (ms.flip, ms.scales) == (False, (0.75, 1.0))
    ms_default = Protocol("ms_flip").eval_config(cfg, "t")
    assert (ms_default.flip, ms_default.scales) == (True, RELEASED_MS_SCALES)
    # the same through the sweep file's form (parse_protocols), eval.-prefixed keys included
    (parsed,) = parse_protocols([{"name": "slide", "eval.scales": [0.5, 1.5]}], "s.yaml")
    assert parsed.eval_config(cfg, "t").scales == (0.5, 1.5)


def test_a_protocol_task_evaluates_with_the_protocols_settings(tmp_path, data_root):
    """Catches: evaluate_protocol using the trial's eval section (cfg.eval) instead of the protocol's: every protocol
    row would be the single-scale number (before, only a Ray test noticed). The same checkpoint is evaluated as
    "ss" and as a multi-scale flipped protocol: their per-image statistics must differ, and each must equal what
    `evaluate_with_interval` gives under that protocol's own eval config."""
    from bench.config.experiment import EvalConfig
    from bench.data import build_dataset
    from bench.engine.evaluation.checkpoint_eval import evaluate_with_interval
    from bench.models import build_segmentor

    spec = write_spec(tmp_path / "s.yaml", tiny_experiment(data_root, measure=False),
                      {"name": "p", "axes": {"head": [TINY_HEADS["fpn"]]}, "evaluate": ["ss"]})
    t = load_sweep(spec).trials[0]
    cfg = t.config
    torch.manual_seed(0)
    model = build_segmentor(cfg.model).eval()
    ckpt = tmp_path / "model.pt"
    torch.save({"model": model.state_dict()}, ckpt)
    payload = trial_payload(t, tmp_path / "out", "p")
    payload["checkpoint"] = str(ckpt)

    protocols = {"ss": {}, "msf": {"scales": [0.5, 1.5], "flip": True}}
    stats = {}
    for name, overrides in protocols.items():
        res = evaluate_protocol({"payload": payload, "protocol": {"name": name, "overrides": overrides}})
        assert res["ok"], res
        stats[name] = load_per_image(layout.eval_dir(payload["trial_dir"], name) / layout.PER_IMAGE)
    assert not np.array_equal(stats["ss"][0], stats["msf"][0])  # the protocols give different predictions

    data = build_dataset(cfg.data, cfg.data.val_split)
    for name, overrides in protocols.items():
        eval_cfg = EvalConfig.model_validate({**cfg.eval.model_dump(mode="json"),
                                              **Protocol(name, overrides).eval_data(cfg)})
        _, inter, union = evaluate_with_interval(model, cfg, eval_cfg, torch.device("cpu"), data)
        np.testing.assert_array_equal(stats[name][0], inter, err_msg=name)
        np.testing.assert_array_equal(stats[name][1], union, err_msg=name)
