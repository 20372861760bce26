"""docs/generated/config_reference.md is generated from the config models (tools/config_reference.py) and committed current."""
from bench.config import ExperimentConfig
from tools import config_reference


def test_committed_reference_is_current():
    assert config_reference.OUT.read_text() == config_reference.render(), (
        "docs/generated/config_reference.md is stale: run `python -m tools.config_reference`")
    assert config_reference.main(["--check"]) == 0


def test_every_key_is_listed_with_its_default():
    text = config_reference.render()
    cfg = ExperimentConfig.model_validate({"data": {"dataset": "synthetic", "root": "r"}, "model": {"num_classes": 3}})
    for section in ("train", "eval", "measure"):
        for key in type(getattr(cfg, section)).model_fields:
            assert f"| `{section}.{key}` |" in text, f"{section}.{key}"
    assert "| `measure.span_s` | float | 240 | >= 0, <= 3600 | seconds |" in text
    for head in ("ifa", "fpn", "ppm", "ocr", "fcn"):
        assert f"## `model.head` (name: {head})" in text
