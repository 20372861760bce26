"""perf/host_drift.py: its analysis tells a drift in time from a speed per process, and it runs end to end."""
import json

import pytest

from perf.host_drift import analyse, main


def _turns(speed):
    """Two models (a: 100 ms, b: 150 ms at speed 1), two processes each, a turn every 0.5 s for 90 s."""
    turns = []
    for k in range(180):
        at = k * 0.5
        for proc, model, base in ((0, "a", 100.0), (1, "b", 150.0), (2, "a", 100.0), (3, "b", 150.0)):
            turns.append({"model": model, "proc": proc, "at": at, "times_ms": [base * speed(at, proc)]})
    return turns


def test_a_drift_in_time_moves_every_process_and_keeps_the_ratio():
    out = analyse(_turns(lambda at, proc: 1.3 if 20 <= at < 40 else 1.0), ["a", "b"])
    assert out["ratio"]["cv_pct"] == pytest.approx(0.0, abs=1e-9)  # both models slowed alike
    assert out["models"]["a"]["block_cv_pct"] > 10 and out["models"]["b"]["block_cv_pct"] > 10
    assert out["processes"]["0"]["median_ms"] == out["processes"]["2"]["median_ms"]  # the processes agree
    lags = out["models"]["a"]["block_lag_corr"]  # a 20-s stretch: neighbouring blocks alike, distant ones not
    assert lags["10s"] > 0 > lags["30s"]


def test_a_speed_per_process_shows_as_processes_that_disagree_in_steady_blocks():
    out = analyse(_turns(lambda at, proc: 1.3 if proc == 2 else 1.0), ["a", "b"])
    assert out["processes"]["0"]["median_ms"] == 100.0 and out["processes"]["2"]["median_ms"] == 130.0
    assert out["models"]["a"]["block_cv_pct"] == 0.0 and out["models"]["b"]["block_cv_pct"] == 0.0
    assert out["models"]["a"]["window_cv_pct"]["20"]["cv_pct"] == 0.0


@pytest.mark.slow
def test_runs_end_to_end(tmp_path, capsys):
    assert main(["--seconds", "2", "--models", "resnet18,resnet50", "--per-model", "1", "--runs", "1",
                 "--threads", "1", "--input", "32x64", "--out", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "host_drift.json").read_text())
    assert {t["model"] for t in saved["turns"]} == {"resnet18", "resnet50"} and saved["ratio"]["of"] == "resnet50/resnet18"
    assert json.loads(capsys.readouterr().out)["per_model"] == 1
