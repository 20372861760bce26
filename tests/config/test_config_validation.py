"""Typed config: key paths in errors, unknown keys, wrong types, stable hashes."""
import pytest

from bench.config import ExperimentConfig, load_config, validate
from bench.errors import UserError

BASE = {"data": {"dataset": "synthetic", "root": "/tmp/ifa-bench-test"}, "model": {"num_classes": 10}}


def _with(section, **kv):
    cfg = {k: dict(v) for k, v in BASE.items()}
    cfg[section] = {**cfg.get(section, {}), **kv}
    return cfg


@pytest.mark.parametrize(
    "data, expected",
    [
        (_with("data", bogus=1), "x.yaml: data.bogus: unknown key"),
        (_with("model", head={"name": "ifa", "mlp": "wide"}), "x.yaml: model.head.mlp: Input should be a valid tuple"),
        (_with("model", head={"name": "fpn", "pe": "sinusoidal"}), "x.yaml: model.head.pe: unknown key"),
        (_with("model", head={"name": "unet"}), "x.yaml: model.head: Input tag 'unet'"),
        (_with("data", crop_size=[512, "a"]), "x.yaml: data.crop_size[1]: Input should be a valid integer"),
        ({"model": {"num_classes": 3}}, "x.yaml: data: required key is missing"),
        (_with("train", lr=-1), "x.yaml: train.lr: Input should be greater than 0"),
        (_with("measure", processes=3, max_processes=2), "x.yaml: measure.max_processes: 2 is below processes (3)"),
    ],
)
def test_errors_name_the_key_path(data, expected):
    with pytest.raises(UserError) as info:
        validate(ExperimentConfig, data, "x.yaml")
    message = str(info.value)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("data:\n  dataset: [synthetic\n")
    with pytest.raises(UserError, match=r"bad.yaml: malformed YAML \(line \d+"):
        load_config(ExperimentConfig, path)


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_config(ExperimentConfig, tmp_path / "absent.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(UserError, match="expected a mapping"):
        load_config(ExperimentConfig, tmp_path / "list.yaml")


def test_config_hash_is_stable_and_ignores_the_name():
    a = validate(ExperimentConfig, {**BASE, "name": "a"})
    b = validate(ExperimentConfig, {**BASE, "name": "b"})
    c = validate(ExperimentConfig, _with("train", lr=0.02))
    assert a.config_hash() == b.config_hash()
    assert a.config_hash() != c.config_hash()
    assert len(a.config_hash()) == 12 and int(a.config_hash(), 16) >= 0


def test_max_processes_may_equal_processes_and_is_free_without_a_pool():
    assert validate(ExperimentConfig, _with("measure", processes=2, max_processes=2)).measure.max_processes == 2
    assert validate(ExperimentConfig, _with("measure", processes=0, max_processes=1)).measure.processes == 0
