"""CLI usability: "did you mean" for a mistyped command, bare `ifa-bench` shows the overview, no no-op flags,
counted nouns in the singular when there is one, and a disabled measurement reads "off", never NaN."""
import subprocess
import sys

import pandas as pd
import pytest

from bench.cli import main
from bench.results.text_table import plural
from bench.sweep.driver.summary_table import completed_table


@pytest.mark.parametrize("typed, meant", [("swep", "sweep"), ("reprot", "report"), ("mesure", "measure"),
                                          ("chek", "check")])
def test_mistyped_command_suggests_the_close_one(typed, meant, capsys):
    assert main([typed, "x.yaml"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and f"unknown command {typed!r}; did you mean {meant!r}?" in lines[0], lines
    assert captured.out == ""


def test_bare_command_prints_the_overview_and_exits_0():
    # the console entry point, as a user types it: help on stdout, nothing on stderr, exit 0
    proc = subprocess.run([sys.executable, "-m", "bench.cli"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.startswith("usage: ifa-bench") and "typical use:" in proc.stdout and "sweep" in proc.stdout


def test_no_op_require_match_is_gone(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["check", str(tmp_path), "--require-match"])
    assert info.value.code == 2
    assert "unrecognized arguments: --require-match" in capsys.readouterr().err


def test_plural():
    assert [plural(n, "trial") for n in (0, 1, 2)] == ["0 trials", "1 trial", "2 trials"]
    assert plural(1, "process", "processes") == "1 process" and plural(3, "process", "processes") == "3 processes"


def test_dry_run_of_one_trial_says_trial(capsys):
    assert main(["sweep", "experiments/synthetic.yaml", "--dry-run", "--set", "sweep.axes.head=[ifa]"]) == 0
    out = capsys.readouterr().out
    assert "\n1 trial (0 already done" in out and "1 trials" not in out


def test_summary_shows_off_and_missing_not_nan():
    done = pd.DataFrame([
        {"trial_id": "a", "miou": 50.0, "gmacs": 1.5, "params_m": 2.0, "latency_ms_median": float("nan")},
        {"trial_id": "b", "miou": 40.0, "gmacs": float("nan"), "params_m": float("nan"),
         "latency_ms_median": float("nan")},
        {"trial_id": "c", "miou": 45.0, "gmacs": 1.0, "params_m": 1.0, "latency_ms_median": float("nan")},
    ])
    measure = {"a": {"enabled": True, "latency": False}, "b": {"enabled": False}, "c": {}}
    cols = ["trial_id", "miou", "gmacs", "params_m", "latency_ms_median"]
    lines = completed_table(done, cols, measure).splitlines()
    assert "nan" not in "\n".join(lines).lower()
    a, b, c = (line.split() for line in lines[1:])
    assert a == ["a", "50.00", "1.50", "2.00", "off"]
    assert b == ["b", "40.00", "off", "off", "off"]
    assert c == ["c", "45.00", "1.00", "1.00", "—"]  # enabled but not there: missing, not off
