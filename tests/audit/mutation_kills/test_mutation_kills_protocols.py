"""Kill tests for bench/sweep/spec/protocols.py (issue 32's mutation pass): the exact refusals, a protocol's
round trip through a payload, plain JSON data from eval_data, and ms_flip keeping a two-scale config's scales."""
import json
from pathlib import Path

import pytest

from bench.config import ExperimentConfig
from bench.errors import UserError
from bench.sweep.spec.protocols import BUILTINS, Protocol, _suggest, from_dict, parse_protocols
from tests.sweep.conftest import tiny_experiment


def _cfg(**eval_section):
    raw = tiny_experiment(Path("/nonexistent"), measure=False)
    raw["eval"].update(eval_section)
    return ExperimentConfig.model_validate(raw)


def test_suggestions():
    assert _suggest("ms_flp", BUILTINS) == " (did you mean 'ms_flip'?)"
    assert _suggest("qqqqqq", BUILTINS) == ""


def _refusal(entries) -> str:
    with pytest.raises(UserError) as err:
        parse_protocols(entries, "s.yaml")
    return str(err.value)


def test_the_exact_refusals():
    from bench.config.experiment import EvalConfig

    assert _refusal([5]) == "s.yaml: sweep.evaluate[0]: expected a protocol name or a mapping with `name`, got int"
    assert _refusal(["ss", "qqqqqq"]) == ("s.yaml: sweep.evaluate[1]: unknown protocol 'qqqqqq'; built-ins: "
                                          "ss, slide, ms_flip, ifa_label, ifa_upsample (or give a name with eval.* keys)")
    assert _refusal([{"name": "x", "qqqqqq": 1}]) == (
        f"s.yaml: sweep.evaluate[0]: unknown eval key 'qqqqqq'; known: {', '.join(EvalConfig.model_fields)}")


def test_a_protocol_survives_its_trip_through_a_payload():
    p = Protocol("slide769", {"mode": "slide", "crop_size": [769, 769]})
    d = json.loads(json.dumps(p.as_dict()))
    assert d == {"name": "slide769", "overrides": {"mode": "slide", "crop_size": [769, 769]}}
    assert from_dict(d) == p


def test_eval_data_is_plain_json_data():
    data = Protocol("ifa_label").eval_data(_cfg(crop_size=[64, 64], scales=[0.5, 1.0]))
    assert data["crop_size"] == [64, 64] and data["scales"] == [0.5, 1.0]  # lists, as in a JSON payload
    assert json.loads(json.dumps(data)) == data


def test_ms_flip_keeps_a_two_scale_configs_scales():
    assert Protocol("ms_flip").eval_config(_cfg(scales=[0.5, 1.0]), "t").scales == (0.5, 1.0)
