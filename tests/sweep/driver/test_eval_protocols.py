"""Issue 14 acceptance, end to end through the console entry point (in-process): a 2-trial sweep with
`evaluate: [ss, ms_flip]` gives two rows per trial, its ms_flip rows equal `ifa-bench eval --scales ... --flip` on
the same checkpoint, a rerun evaluates nothing again, and an eval-only sweep over its folder gives the same
single-scale mIoU as its training rows."""
import json

import numpy as np
import pytest

from bench.cli import main
from bench.engine.evaluation.bootstrap import load_per_image, miou_from_sums
from tests.sweep.conftest import TINY_HEADS, read_results, tiny_experiment, write_spec

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SCALES = [0.75, 1.25]


@pytest.mark.timeout(600)  # about 90 s idle; the shared 2-core CI machine is far slower
def test_protocol_rows_match_eval_and_eval_only_sweep(tmp_path, data_root, ray_down, capsys):
    experiment = tiny_experiment(data_root, iterations=2, measure=False)
    spec = write_spec(tmp_path / "s.yaml", experiment, {
        "name": "proto", "axes": {"head": [TINY_HEADS["ifa"], TINY_HEADS["fpn"]]},
        "evaluate": ["ss", {"name": "ms_flip", "scales": SCALES}, "ifa_label"],
        "resources": {"cpus": 1}, "max_failures": 0,
    })
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "eval 5/5" in printed  # the progress counts evaluations (2 trials x 2 + ifa_label on the IFA trial)

    df = read_results(out)
    assert list(df["protocol"]) == ["ss", "ms_flip", "ifa_label", "ss", "ms_flip"]
    assert set(df["status"]) == {"completed"}, df[["trial_id", "status", "error"]]
    assert df["trial_id"].is_unique and df["config_hash"].nunique() == 2
    ms = df[df["protocol"] == "ms_flip"]
    assert (ms["eval_scales"] == "0.75,1.25").all() and ms["eval_flip"].all()
    assert (df[df["protocol"] == "ss"]["eval_scales"] == "1.0").all()
    assert list(df[df["protocol"] == "ifa_label"]["ifa_query"]) == ["label"]

    for _, row in df.iterrows():  # each row's interval comes from its own per-image statistics
        inter, union = load_per_image(out / row["trial_dir"] / "per_image.npz")
        assert miou_from_sums(inter.sum(0), union.sum(0)) == pytest.approx(row["miou"])
        assert row["miou_ci_low"] <= row["miou"] <= row["miou_ci_high"]

    # (a) the ms_flip rows equal `ifa-bench eval CKPT --scales ... --flip` on the same checkpoint, exactly
    for _, row in ms.iterrows():
        tdir = out / "trials" / row["config_hash"]
        result = tmp_path / f"eval-{row['config_hash']}.json"
        assert main(["eval", str(tdir / "checkpoints" / "last.pt"), "--config", str(tdir / "config.yaml"),
                     "--scales", ",".join(map(str, SCALES)), "--flip", "--out", str(result), "--no-progress"]) == 0
        assert json.loads(result.read_text())["miou"] == row["miou"]

    # --resume (and a plain rerun) never repeats a finished evaluation: no Ray, records untouched
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("trials/*/eval/*/result.json")}
    assert len(stamps) == 5
    assert main(["sweep", str(spec), "--out", str(out), "--resume"]) == 0
    assert {p: p.stat().st_mtime_ns for p in out.glob("trials/*/eval/*/result.json")} == stamps

    # (b) eval-only over the sweep folder: same single-scale mIoU as the training sweep's rows
    only = write_spec(tmp_path / "only.yaml", experiment,
                      {"name": "only", "evaluate": ["ss"], "resources": {"cpus": 1}})
    out2 = tmp_path / "only"
    assert main(["sweep", str(only), "--out", str(out2), "--checkpoints", str(out)]) == 0
    df2 = read_results(out2)
    assert list(df2.columns) == list(df.columns)  # rows look like trained rows
    assert list(df2["protocol"]) == ["ss", "ss"] and set(df2["status"]) == {"completed"}
    ss = df[df["protocol"] == "ss"].set_index("config_hash")["miou"]
    assert df2.set_index("config_hash")["miou"].sort_index().tolist() == ss.sort_index().tolist()
    assert df2["train_time_s"].isna().all() and df2["gmacs"].isna().all()
    assert np.isfinite(df2["miou_ci_low"]).all()
