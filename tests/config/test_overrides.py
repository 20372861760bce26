"""One override syntax: `--set` on train, eval and sweep with the same errors and "did you mean"; config
inheritance (`base:`) with deep merge, relative paths, cycle detection and errors naming the file."""
import json

import pytest
import yaml

from bench.cli import main
from bench.config.experiment_file import load_experiment
from bench.errors import UserError
from tests.engine.evaluation.test_eval_command import setup  # noqa: F401 - the eval fixture (real model + checkpoint)


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data) if isinstance(data, dict) else data)
    return path


BASE = {"name": "base", "data": {"dataset": "synthetic", "root": "runs/data/s", "crop_size": [64, 64]},
        "model": {"num_classes": 5, "backbone": {"name": "resnet18", "width": 0.5},
                  "head": {"name": "fpn", "channels": 32, "scale_channels": 16}},
        "train": {"iterations": 10, "lr": 0.02}}


def test_base_deep_merges_relative_to_the_file(tmp_path):
    _write(tmp_path / "common" / "base.yaml", BASE)
    child = _write(tmp_path / "exp" / "child.yaml",
                   {"base": "../common/base.yaml", "name": "child", "train": {"iterations": 3},
                    "model": {"backbone": {"stem": "deep"}}})
    cfg = load_experiment(child, [])
    assert cfg.name == "child" and cfg.train.iterations == 3 and cfg.train.lr == 0.02
    assert (cfg.model.backbone.width, cfg.model.backbone.stem) == (0.5, "deep")
    assert cfg.model.head.name == "fpn" and cfg.model.head.scale_channels == 16


def test_another_head_replaces_the_base_head(tmp_path):
    _write(tmp_path / "base.yaml", BASE)
    child = _write(tmp_path / "c.yaml", {"base": "base.yaml", "model": {"head": {"name": "ppm"}}})
    cfg = load_experiment(child, [])
    assert cfg.model.head.name == "ppm"  # fpn's scale_channels did not leak into the PPM head


def test_cycle_is_refused(tmp_path):
    _write(tmp_path / "a.yaml", {"base": "b.yaml", "name": "a"})
    _write(tmp_path / "b.yaml", {"base": "a.yaml", "name": "b"})
    with pytest.raises(UserError, match=r"inheritance cycle .*a\.yaml -> .*b\.yaml -> .*a\.yaml"):
        load_experiment(tmp_path / "a.yaml", [])


def test_missing_base_names_the_file(tmp_path):
    child = _write(tmp_path / "c.yaml", {"base": "nope.yaml"})
    with pytest.raises(UserError, match=r"c\.yaml: base: 'nope\.yaml': no such file"):
        load_experiment(child, [])


def test_error_names_the_file_that_set_the_bad_value(tmp_path):
    bad = dict(BASE, train={"iterations": 10, "lr": -1})
    _write(tmp_path / "base.yaml", bad)
    child = _write(tmp_path / "c.yaml", {"base": "base.yaml", "name": "c"})
    with pytest.raises(UserError) as exc:
        load_experiment(child, [])
    assert str(exc.value).startswith(f"{tmp_path / 'base.yaml'}: train.lr:")
    with pytest.raises(UserError) as exc:
        load_experiment(child, ["train.iterations=0"])
    assert str(exc.value).startswith("--set train.iterations: train.iterations:")


@pytest.mark.parametrize("sets, expected", [
    (["measure.max_processes=2"], "--set measure.max_processes: measure.max_processes: 2 is below processes (3)"),
    (["eval.ifa_query=label", "eval.ifa_query_stride=2"],
     "--set eval.ifa_query_stride: eval.ifa_query_stride: 2 contradicts ifa_query=label"),
])
def test_a_check_across_keys_names_the_set_that_set_the_key(tmp_path, sets, expected):
    """Model-level checks name the key they refuse; the source is the --set that set it, not the file."""
    exp = _write(tmp_path / "e.yaml", dict(BASE, model=dict(BASE["model"], head={"name": "ifa"})))
    with pytest.raises(UserError) as exc:
        load_experiment(exp, sets)
    assert str(exc.value).startswith(expected), exc.value


@pytest.mark.parametrize("command", [
    ["train", "experiments/synthetic.yaml"],
    ["sweep", "experiments/synthetic.yaml", "--dry-run"],
    ["eval", "missing.pt", "--config", "experiments/synthetic.yaml"],
])
def test_did_you_mean_on_every_command(command, capsys):
    assert main(command + ["--set", "train.iteration=5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("--set train.iteration: unknown key 'train.iteration'; did you mean train.iterations?")
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_bad_set_syntax_is_the_same_error_everywhere(capsys):
    errors = set()
    for command in (["train", "experiments/synthetic.yaml"], ["sweep", "experiments/synthetic.yaml", "--dry-run"],
                    ["eval", "x.pt", "--config", "experiments/synthetic.yaml"]):
        assert main(command + ["--set", "train.iterations"]) == 2
        errors.add(capsys.readouterr().err.split(": error: ", 1)[1])
    assert errors == {"--set: expected KEY.PATH=VALUE, got 'train.iterations'\n"}


def test_sweep_set_changes_every_trial(capsys):
    assert main(["sweep", "experiments/synthetic.yaml", "--dry-run"]) == 0
    before = capsys.readouterr().out
    assert main(["sweep", "experiments/synthetic.yaml", "--dry-run", "--set", "train.iterations=7"]) == 0
    after = capsys.readouterr().out
    assert before != after and after.count("new") == before.count("new") == 4


def test_eval_set_eval_mode_slide(setup, capsys):  # noqa: F811
    tmp, config, ckpt, _, _ = setup
    out = tmp / "slide.json"
    assert main(["eval", str(ckpt), "--config", str(config), "--set", "eval.mode=slide",
                 "--set", "eval.crop_size=[32, 32]", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["eval_mode"] == "slide" and res["num_images"] == 2


def test_recipes_inherit_instead_of_repeating():
    from pathlib import Path

    for name in ("cityscapes_r50", "ade20k_r50", "pascal_context_r101"):
        raw = yaml.safe_load(Path(f"experiments/{name}.yaml").read_text())
        assert raw["base"] == "base/released_head_recipe.yaml"
        assert "resources" not in raw["sweep"]  # shared, set once in the base
        cfg = load_experiment(Path(f"experiments/{name}.yaml"), [])
        assert cfg.model.aux_head.weight == 0.4 and cfg.train.head_lr_mult == 10
