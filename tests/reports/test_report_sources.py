"""`ifa-bench report DIR [DIR ...]`: several sweeps and single `train` run folders in one report."""
import json

import pandas as pd
import yaml

from bench.cli import main
from reports.build import build_report
from tests.reports.fixture import default_trials, trial, write_sweep


def write_run_dir(path, head="ifa", miou=57.25, seed=0):
    """A finished `train` run folder as the trainer leaves it: config.yaml, final.json, metrics.jsonl."""
    cfg = yaml.safe_load(open("experiments/synthetic.yaml"))
    cfg.pop("sweep")
    cfg["seed"] = seed
    if head != "ifa":
        cfg["model"]["head"] = {"name": head}
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump(cfg))
    final = {"miou": miou, "macc": 60.0, "aacc": 80.0, "boundary_iou": 30.5, "iterations": 300,
             "train_time_s": 90.0, "name": "synthetic", "config_hash": "abc123abc123",
             "per_class_iou": {"road": 90.0, "sky": 24.5},
             "environment": {"device": "cpu", "device_name": "test-cpu", "torch_version": "2.13.0",
                             "dtype": "float32", "threads": 2}}
    (path / "final.json").write_text(json.dumps(final))
    with open(path / "metrics.jsonl", "w") as fh:
        for it in (10, 20, 30):
            fh.write(json.dumps({"kind": "train", "iter": it, "loss": 2.0 / it, "loss_main": 1.5 / it,
                                 "loss_aux": 1.25 / it, "lr": 0.01}) + "\n")
        fh.write(json.dumps({"kind": "eval", "iter": 30, "miou": miou}) + "\n")
    return path


def test_single_run_folder(tmp_path):
    run = write_run_dir(tmp_path / "run")
    rep = build_report(run)
    assert rep.out_dir == run / "report"
    row = rep.models.iloc[0]
    assert (row["head"], row["backbone"], row["miou_mean"], row["n"]) == ("ifa", "resnet18", 57.25, 1)
    assert rep.per_class["synthetic"].loc["sky"].tolist() == [24.5]
    curves = rep.plot_data["curves_synthetic"]
    assert set(curves["kind"]) == {"loss", "loss_main", "loss_aux", "miou"}
    # one eval point only: no eval panel
    from reports.figures.plots import curve_panels
    assert curve_panels(curves) == ["loss_main", "loss_aux"]


def test_sweeps_and_runs_combined(tmp_path):
    a = write_sweep(tmp_path / "a", default_trials()[:3], name="first")
    b = write_sweep(tmp_path / "b", [trial(head="fpn", seed=0, miou=50.0, gmacs=3.0, latency_ms_median=9.0)],
                    name="second")
    run = write_run_dir(tmp_path / "run", head="ppm", miou=40.0)
    rep = build_report([a, b, run], tmp_path / "out")
    labels = rep.models["label"].tolist()
    assert len(labels) == 3 and labels[0].startswith("ifa") and labels[1].startswith("fpn")
    assert rep.models.set_index("head").loc["ppm", "miou_mean"] == 40.0
    assert rep.models.set_index("head").loc["ifa", "n"] == 3
    assert rep.results.trials["trial_id"].is_unique
    # curves of every source are found through their absolute trial folders
    assert set(rep.plot_data["curves_synthetic"]["label"]) == set(labels)


def test_several_sources_need_out(tmp_path):
    a = write_sweep(tmp_path / "a", default_trials()[:1])
    assert main(["report", str(a), str(a)]) == 2


def test_folder_that_is_neither(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "no results.csv" in err and "no final.json" in err and "Traceback" not in err


def test_cli_report_over_two_folders(tmp_path, capsys):
    a = write_sweep(tmp_path / "a", default_trials()[:3])
    run = write_run_dir(tmp_path / "run", head="fpn", miou=45.0)
    assert main(["report", str(a), str(run), "--out", str(tmp_path / "rep")]) == 0
    assert "2 models" in capsys.readouterr().out
    summary = pd.read_csv(tmp_path / "rep" / "tables" / "summary_synthetic.csv")
    assert sorted(summary["head"]) == ["fpn", "ifa"]


def test_labels_name_model_options_from_trial_configs(tmp_path):
    """results.csv has no width column: the options come from each trial's config.yaml."""
    a = write_run_dir(tmp_path / "a", head="fpn", miou=40.0)
    b = write_run_dir(tmp_path / "b", head="fpn", miou=42.0)
    cfg = yaml.safe_load((b / "config.yaml").read_text())
    cfg["model"]["backbone"]["width"] = 1.0
    (b / "config.yaml").write_text(yaml.safe_dump(cfg))
    rep = build_report([a, b], tmp_path / "out")
    assert sorted(rep.models["label"]) == ["fpn resnet18 backbone.width=0.5", "fpn resnet18 backbone.width=1.0"]
