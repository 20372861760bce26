"""The regression check: matching, deltas, verdicts, exit codes, unmatched rows, bad input."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main
from reports.regression.check import run_check
from reports.load import CHECK_REQUIRED, read_results
from reports.regression.published import DEFAULT_PATH, load_published
from tests.reports.fixture import trial, write_sweep

PPM = dict(dataset="cityscapes", head="ppm", backbone="resnet50", stem="v1c", output_stride=8, iterations=40000,
           crop="512x1024", num_classes=19)
FPN = dict(PPM, head="fpn", output_stride=32, iterations=80000)
IFA = dict(PPM, head="ifa", stem="deep", output_stride=32, iterations=37200, crop="769x769", batch_size=8)
OCR = dict(PPM, head="ocr", backbone="resnet101", batch_size=16)
MS = dict(eval_scales="0.5,0.75,1.0,1.25,1.5,1.75", eval_flip=True)


def _check(tmp_path, trials, **kw):
    root = write_sweep(tmp_path, trials, per_class=False, curves=False)
    return run_check(read_results(root, CHECK_REQUIRED), load_published(), **kw)


def _cli(*argv):
    return main(["check", *map(str, argv), "--against", str(DEFAULT_PATH)])


def test_within_tolerance_passes(tmp_path, capsys):
    res = _check(tmp_path, [trial(seed=0, miou=77.5, **PPM), trial(seed=1, miou=78.1, **PPM)])
    m = res.matched
    assert len(m) == 1 and res.exit_code == 0
    row = m.iloc[0]
    assert row["reproduced"] == pytest.approx(77.8) and row["published"] == 77.85
    assert row["delta"] == pytest.approx(-0.05) and row["n"] == 2 and row["verdict"] == "ok"
    assert row["published_backbone"] == "R-50-D8" and row["source"] == "mmseg configs/pspnet/README.md"
    assert _cli(tmp_path) == 0
    out = capsys.readouterr().out
    assert "77.80±0.42" in out and "77.85" in out and "-0.05" in out and "PASS: 1/1" in out


def test_outside_tolerance_fails_and_tolerance_flag(tmp_path, capsys):
    res = _check(tmp_path, [trial(seed=0, miou=72.0, **FPN), trial(seed=1, miou=72.4, **FPN)])
    row = res.matched.iloc[0]
    assert row["published"] == 74.52 and row["delta"] == pytest.approx(-2.32)
    assert row["verdict"] == "outside tolerance" and not row["within_tolerance"] and res.exit_code == 1
    assert _cli(tmp_path) == 1
    assert "FAIL: 0/1" in capsys.readouterr().out
    assert _cli(tmp_path, "--tolerance", "2.5") == 0


def test_too_few_seeds_fails(tmp_path, capsys):
    trials = [trial(seed=0, miou=77.5, **PPM), trial(seed=1, miou=78.1, **PPM)]
    res = _check(tmp_path, trials, min_seeds=3)
    assert res.matched["verdict"].tolist() == ["too few seeds (2 < 3)"] and res.exit_code == 1
    assert _cli(tmp_path, "--min-seeds", "3") == 1
    assert "too few seeds (2 < 3)" in capsys.readouterr().out
    assert _cli(tmp_path, "--min-seeds", "2") == 0


def test_model_with_only_failed_trials_fails(tmp_path):
    res = _check(tmp_path, [trial(seed=0, status="failed", error="boom", **PPM)])
    row = res.matched.iloc[0]
    assert row["n"] == 0 and pd.isna(row["reproduced"]) and row["verdict"] == "too few seeds (0 < 1)"
    assert res.exit_code == 1


def test_unmatched_rows_with_reasons(tmp_path, capsys):
    trials = [
        trial(seed=0, miou=60.0),  # synthetic
        trial(seed=0, miou=70.0, **dict(PPM, backbone="resnet18", stem="standard", output_stride=32)),
        trial(seed=0, miou=70.0, **dict(PPM, iterations=1000)),
        trial(seed=0, miou=70.0, **dict(PPM, eval_scales="1.0", eval_flip=True)),
        trial(seed=0, miou=77.8, **PPM),
    ]
    res = _check(tmp_path, trials)
    assert len(res.matched) == 1 and res.exit_code == 0
    reasons = res.unmatched.set_index("label")["reason"]
    # against reports/published.yaml, which has no demo rows (those are in reports/published_demo.yaml)
    assert reasons.str.contains("no published FPN + IFA on synthetic_val row", regex=False).sum() == 1
    assert ("no published PSPNet on cityscapes_val row with a backbone mapped to resnet18 (standard stem, OS32)"
            in reasons.tolist())
    schedule = [r for r in reasons if "1000 iterations" in r]
    assert schedule == ["no published PSPNet on cityscapes_val resnet50 (v1c stem, OS8) row with 1000 iterations, "
                        "crop 512x1024, batch 8 (published: 40000 it/512x1024; 40000 it/769x769; "
                        "80000 it/512x1024; 80000 it/769x769)"]
    assert any("flip=True, not the miou_ss protocol" in r for r in reasons)
    _cli(tmp_path)
    out = capsys.readouterr().out
    assert "unmatched reproduced rows:" in out and "no published FPN + IFA on synthetic_val row" in out


def test_multi_scale_flip_metric(tmp_path):
    trials = [trial(seed=0, miou=79.0, **PPM, **MS), trial(seed=0, miou=77.8, **PPM)]
    ms = _check(tmp_path, trials, metric="miou_ms_flip")
    assert ms.matched[["published", "n"]].values.tolist() == [[79.18, 1]]
    assert ms.matched["delta"].item() == pytest.approx(-0.18)
    assert ms.unmatched["reason"].item().endswith("not the miou_ms_flip protocol")


def test_reproduction_rows_are_context_unless_included(tmp_path):
    res = _check(tmp_path, [trial(seed=0, miou=78.5, **IFA)])
    m = res.matched.set_index("kind")
    assert m.loc["published", "published"] == 78.02 and m.loc["published", "verdict"] == "ok"
    assert m.loc["reproduction", "published"] == 77.07
    assert m.loc["reproduction", "delta"] == pytest.approx(1.43)
    assert m.loc["reproduction", "verdict"] == "context only (outside tolerance)" and res.exit_code == 0
    assert "released config" in m.loc["published", "assumed"]
    strict = _check(tmp_path / "b", [trial(seed=0, miou=78.5, **IFA)], include_reproductions=True)
    assert strict.exit_code == 1


def test_batch_size_disambiguates_ocr_rows(tmp_path):
    res = _check(tmp_path, [trial(seed=0, miou=80.0, **OCR)])
    assert res.matched["published"].tolist() == [80.3]  # the batch-16 row, not the batch-8 one (80.09)
    res8 = _check(tmp_path / "b", [trial(seed=0, miou=80.0, **dict(OCR, batch_size=8))])
    assert res8.matched["published"].tolist() == [80.09]


def test_check_writes_csv(tmp_path, capsys):
    write_sweep(tmp_path, [trial(seed=0, miou=77.8, **PPM), trial(seed=0, miou=1.0)])
    out = tmp_path / "check.csv"
    assert _cli(tmp_path, "--out", out) == 0
    df = pd.read_csv(out)
    assert df["matched"].tolist() == [True, False] and df["published"].iloc[0] == 77.85


# --- bad input: one line on stderr, exit 2

def _one_line_error(capsys):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_unknown_metric_exits_2(tmp_path, capsys):
    write_sweep(tmp_path, [trial(seed=0, miou=77.8, **PPM)])
    with pytest.raises(SystemExit) as exc:  # argparse's choices (shown in --help) refuse it
        _cli(tmp_path, "--metric", "miou_flip")
    assert exc.value.code == 2
    assert "invalid choice: 'miou_flip' (choose from 'miou_ss', 'miou_ms_flip')" in _one_line_error(capsys)


def test_missing_columns_exit_2(tmp_path, capsys):
    root = write_sweep(tmp_path, [trial(seed=0, miou=77.8, **PPM)])
    df = pd.read_csv(root / "results.csv")
    df.drop(columns=["miou", "crop"]).to_csv(root / "results.csv", index=False)
    assert _cli(root / "results.csv") == 2
    line = _one_line_error(capsys)
    assert str(root / "results.csv") in line and "missing required column(s): miou, crop" in line
    assert main(["report", str(root)]) == 2
    assert "missing required column(s): miou" in _one_line_error(capsys)
    assert not (root / "report").exists()


def test_bad_values_exit_2(tmp_path, capsys):
    root = write_sweep(tmp_path, [trial(seed=0, miou=77.8, **PPM)])
    df = pd.read_csv(root / "results.csv")
    df["miou"] = ["high"]
    df.to_csv(root / "results.csv", index=False)
    assert main(["report", str(root)]) == 2
    assert "column 'miou' has non-numeric value 'high'" in _one_line_error(capsys)


def _console_script():
    exe = Path(sys.executable).parent / "ifa-bench"
    return [str(exe)] if exe.exists() else (shutil.which("ifa-bench") and ["ifa-bench"])


@pytest.mark.skipif(not _console_script(), reason="ifa-bench console script not installed")
def test_real_command_exit_codes(tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    missing = subprocess.run(_console_script() + ["check", str(tmp_path / "nope.csv")],
                             capture_output=True, text=True, timeout=120, env=env)
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.strip() == f"ifa-bench check: error: {tmp_path / 'nope.csv'}: no such file or directory"
    write_sweep(tmp_path, [trial(seed=0, miou=72.0, **FPN)])
    failing = subprocess.run(_console_script() + ["check", str(tmp_path), "--against", str(DEFAULT_PATH)],
                             capture_output=True, text=True, timeout=120, env=env)
    assert failing.returncode == 1, failing.stderr
    assert "outside tolerance" in failing.stdout and "-2.52" in failing.stdout


def test_nothing_compared_fails_unless_allow_empty(tmp_path, capsys):
    write_sweep(tmp_path, [trial(seed=0, miou=60.0)])
    assert _cli(tmp_path) == 1
    out = capsys.readouterr().out
    assert "matched: none" in out and "PASS" not in out
    assert "FAIL: nothing was compared: none of the 1 reproduced model matches" in out
    assert _cli(tmp_path, "--allow-empty") == 0
