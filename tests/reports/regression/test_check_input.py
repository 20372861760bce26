"""check's input rules (issue 10): finite tolerance, plausible mIoU rows, a repeated trial counted once."""
import pandas as pd
import pytest

from bench.cli import main
from reports.regression.check_input import check_miou_values, drop_repeated_trials
from reports.load import CHECK_REQUIRED, read_results
from reports.regression.published import DEFAULT_PATH
from tests.reports.fixture import trial, write_sweep

PPM = dict(dataset="cityscapes", head="ppm", backbone="resnet50", stem="v1c", output_stride=8, iterations=40000,
           crop="512x1024", num_classes=19)


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-0.5"])
def test_tolerance_must_be_finite_and_non_negative(tmp_path, capsys, value):
    write_sweep(tmp_path, [trial(seed=0, miou=77.8, **PPM)])
    assert main(["check", str(tmp_path), f"--tolerance={value}", "--against", str(DEFAULT_PATH)]) == 2
    assert "--tolerance: must be a finite number >= 0" in _one_line(capsys)


@pytest.mark.parametrize("value", ["inf", "-1", "100.01"])
def test_impossible_miou_names_the_row(tmp_path, capsys, value):
    root = write_sweep(tmp_path, [trial(seed=0, miou=77.8, **PPM), trial(seed=1, miou=77.0, **PPM)])
    df = pd.read_csv(root / "results.csv", dtype=str, keep_default_na=False)
    df.loc[1, "miou"] = value
    df.to_csv(root / "results.csv", index=False)
    assert main(["check", str(root), "--against", str(DEFAULT_PATH)]) == 2
    line = _one_line(capsys)
    assert f"{root / 'results.csv'}: line 3 (trial {df.loc[1, 'trial_id']}): miou" in line and "[0, 100]" in line


def test_boundary_values_and_missing_miou_pass(tmp_path):
    root = write_sweep(tmp_path, [trial(seed=0, miou=0.0, **PPM), trial(seed=1, miou=100.0, **PPM),
                                  trial(seed=2, status="failed", **PPM)])
    check_miou_values(read_results(root, CHECK_REQUIRED))


def test_a_repeated_trial_counts_as_one_seed(tmp_path, capsys):
    root = write_sweep(tmp_path, [trial(seed=0, miou=77.8, **PPM)])
    text = (root / "results.csv").read_text()
    (root / "results.csv").write_text(text + text.splitlines()[1] + "\n")
    results, dropped = drop_repeated_trials(read_results(root, CHECK_REQUIRED))
    assert dropped == 1 and len(results.trials) == 1
    # with --min-seeds 2 a single seed read twice must fail, not pass as two seeds
    assert main(["check", str(root), "--min-seeds", "2", "--against", str(DEFAULT_PATH)]) == 1
    captured = capsys.readouterr()
    assert "too few seeds (1 < 2)" in captured.out and "1 repeated trial row in" in captured.err


def test_repeated_rows_without_trial_ids_count_once(tmp_path):
    root = write_sweep(tmp_path, [trial(seed=0, miou=77.8, **PPM)])
    df = pd.read_csv(root / "results.csv", dtype=str, keep_default_na=False).drop(columns=["trial_id"])
    pd.concat([df, df]).to_csv(root / "results.csv", index=False)
    results, dropped = drop_repeated_trials(read_results(root, CHECK_REQUIRED))
    assert dropped == 1 and len(results.trials) == 1


def test_a_trial_id_with_different_rows_is_refused(tmp_path, capsys):
    root = write_sweep(tmp_path, [trial(seed=0, miou=77.8, **PPM)])
    df = pd.read_csv(root / "results.csv", dtype=str, keep_default_na=False)
    other = df.copy()
    other["miou"] = "70.0"
    pd.concat([df, other]).to_csv(root / "results.csv", index=False)
    assert main(["check", str(root), "--against", str(DEFAULT_PATH)]) == 2
    assert f"line 3 (trial {df.loc[0, 'trial_id']}): trial '{df.loc[0, 'trial_id']}' appears again" in _one_line(capsys)
