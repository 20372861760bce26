"""Provenance: every results row and final.json names the code that produced it (version, git commit, dirty flag),
and `ifa-bench --version` prints the same."""
import subprocess
import sys
from pathlib import Path

import pandas as pd

from bench.config.experiment import DataConfig, ExperimentConfig
from bench.config.model import ModelConfig
from bench.results import provenance as prov
from bench.results.row import base_row, completed_row, write_tables
from bench.sweep.spec.trials import Resources, TrialSpec

ROOT = Path(__file__).resolve().parents[2]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def test_checkout_commit_and_dirty_flag(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "tracked.txt").write_text("a\n")
    _git(tmp_path, "add", "tracked.txt")
    _git(tmp_path, "commit", "-q", "-m", "one")
    head = _git(tmp_path, "rev-parse", "HEAD")
    assert prov.from_checkout(tmp_path) == {"git_commit": head, "git_dirty": False}
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "out.csv").write_text("x\n")  # untracked output does not make a checkout dirty
    assert prov.from_checkout(tmp_path)["git_dirty"] is False
    (tmp_path / "tracked.txt").write_text("b\n")
    assert prov.from_checkout(tmp_path) == {"git_commit": head, "git_dirty": True}


def test_not_a_checkout_falls_back_to_metadata(tmp_path):
    assert prov.from_checkout(tmp_path) is None
    meta = prov.from_metadata()
    assert set(meta) == {"git_commit", "git_dirty"} and isinstance(meta["git_commit"], str)


def test_version_prints_this_checkouts_commit():
    head = _git(ROOT, "rev-parse", "HEAD")
    out = subprocess.run([sys.executable, "-m", "bench.cli", "--version"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip()
    assert line.startswith(f"ifa-bench {prov.package_version()} (git {head[:12]}"), line


def _trial():
    cfg = ExperimentConfig(data=DataConfig(dataset="synthetic", root="data", crop_size=(64, 64)),
                           model=ModelConfig(num_classes=3))
    return TrialSpec(trial_id="t0", config_hash=cfg.config_hash(), axis_values={}, config=cfg,
                     resources=Resources(), extra_axes={})


def test_rows_carry_provenance_and_a_trained_row_keeps_its_final_json(tmp_path):
    trained_by = {"ifa_bench_version": "0.0.9", "git_commit": "c" * 40, "git_dirty": True}
    done = completed_row(_trial(), "p", {"miou": 1.0, "provenance": trained_by}, {}, {}, attempts=1)
    pending = base_row(_trial(), "p", "pending")
    assert pending["git_commit"] == prov.provenance()["git_commit"] != ""
    write_tables(tmp_path, [done, pending], [])
    table = pd.read_csv(tmp_path / "results.csv", dtype=str, keep_default_na=False)
    assert list(table["ifa_bench_version"]) == ["0.0.9", prov.package_version()]
    assert table["git_commit"][0] == "c" * 40 and table["git_dirty"][0] == "True"
