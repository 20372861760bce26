"""`ifa-bench config EXP.yaml [--set ...]`: the resolved config, each key with its source (the file of the base:
chain that set it last, the --set, or "default"), as YAML that loads back to the same config."""
from pathlib import Path

from bench.cli import main
from bench.config.experiment_file import load_experiment
from bench.config.loading import parse_yaml

ROOT = Path(__file__).resolve().parents[2]
EXP = ROOT / "experiments" / "cityscapes_r50.yaml"
BASE = "experiments/base/released_head_recipe.yaml"


def _printed(capsys, monkeypatch, *argv):
    monkeypatch.chdir(ROOT)
    assert main(["config", *argv]) == 0
    out = capsys.readouterr().out
    sources = {}
    path = []
    for line in out.splitlines():
        if line.startswith("#"):
            continue
        indent = (len(line) - len(line.lstrip())) // 2
        key = line.strip().split(":")[0]
        path = path[:indent] + [key]
        if "#" in line:
            sources[".".join(path)] = line.rsplit("# ", 1)[1]
    return out, sources


def test_sources_name_the_base_the_file_the_set_and_defaults(capsys, monkeypatch):
    out, src = _printed(capsys, monkeypatch, str(EXP), "--set", "train.iterations=100")
    assert src["train.iterations"] == "--set train.iterations"
    assert src["model.backbone.name"] == BASE  # only the base sets it
    assert src["model.num_classes"] == "experiments/cityscapes_r50.yaml"
    assert src["data.generate"] == "default"
    assert src["train.lr"] == BASE


def test_a_replaced_head_does_not_keep_the_bases_sources(capsys, monkeypatch):
    _, src = _printed(capsys, monkeypatch, str(EXP), "--set", "model.head.name=ocr")
    assert src["model.head.name"] == "--set model.head.name"
    assert src["model.head.channels"] == "default"  # the base's IFA channels went with the IFA head


def test_the_printed_config_loads_back_to_the_same_config(capsys, monkeypatch):
    sets = ["--set", "model.head.name=fpn", "--set", "train.warmup_ratio=0.000001"]
    out, _ = _printed(capsys, monkeypatch, str(EXP), *sets)
    expected = load_experiment(EXP, [s for s in sets if s != "--set"])
    again = parse_yaml(out, "<printed>")
    assert again == expected.model_dump(mode="json")


def test_bad_set_is_one_line_exit_2(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["config", str(EXP), "--set", "train.iteratons=5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did you mean train.iterations" in err[0]
