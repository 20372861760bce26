"""A bad `name` (the experiment's or the sweep's, from the YAML or from --set) is refused by the installed `ifa-bench`
in one line of our wording (bench/config/safe_name.py) naming the key, the value and the rule: exit 2, no traceback,
nothing written (no runs/ folder, no file anywhere in the case folder)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.config.safe_name import MAX_NAME, RULE
from tests.cli.test_bad_input_corpus import _exp

pytestmark = pytest.mark.slow

EXE = Path(sys.executable).parent / "ifa-bench"
if not EXE.exists():
    pytest.skip("the ifa-bench console script is not installed next to python", allow_module_level=True)

LONG = "a" * (MAX_NAME + 1)
# (id, the name as YAML text, what the line says of the value)
NAMES = [
    ("empty", '""', "'' is empty"),
    ("nul", '"a\\0b"', "'a\\x00b' holds a control character"),
    ("newline", '"a\\nb"', "'a\\nb' holds a control character"),
    ("parent", "../x", "'../x' is a path"),
    ("parent-deep", "../../x", "'../../x' is a path"),
    ("absolute", "/tmp/x", "'/tmp/x' is a path"),
    ("backslash", '"a\\\\b"', "'a\\\\b' is a path"),
    ("dot-dot", '".."', "'..' is not a safe file name"),
    ("hidden", ".x", "'.x' is not a safe file name"),
    ("space", '"a b"', "'a b' is not a safe file name"),
    ("too-long", LONG, f"'{'a' * 40}...' is {MAX_NAME + 1} characters long"),
]


def _cli(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1", IFA_BENCH_CACHE=str(cwd / ".cache"))
    return subprocess.run([str(EXE), *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _refused(tmp_path: Path, argv: list[str], yaml_text: str, key: str, said: str) -> None:
    (tmp_path / "e.yaml").write_text(yaml_text)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    proc = _cli(argv, tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-1500:])
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-1500:]
    assert f"{key}: {said}; {RULE}" in lines[0], lines[0]
    assert "pattern" not in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("cid,name,said", NAMES, ids=[n[0] for n in NAMES])
def test_train_refuses_a_bad_name_from_the_yaml(tmp_path, cid, name, said):
    exp = _exp(str(tmp_path)).replace("name: tiny", f"name: {name}")
    _refused(tmp_path, ["train", "e.yaml"], exp, "name", said)


@pytest.mark.parametrize("cid,name,said", NAMES, ids=[n[0] for n in NAMES])
def test_train_refuses_a_bad_name_from_set(tmp_path, cid, name, said):
    _refused(tmp_path, ["train", "e.yaml", "--set", f"name={name}"], _exp(str(tmp_path)), "--set name: name", said)


@pytest.mark.parametrize("cid,name,said", [n for n in NAMES if n[0] in ("empty", "nul", "parent", "too-long")],
                         ids=["empty", "nul", "parent", "too-long"])
def test_sweep_refuses_a_bad_sweep_name(tmp_path, cid, name, said):
    exp = _exp(str(tmp_path)) + f"sweep:\n  name: {name}\n  axes: {{seed: [0]}}\n"
    _refused(tmp_path, ["sweep", "e.yaml", "--dry-run"], exp, "sweep.name", said)


def test_the_longest_name_is_accepted(tmp_path):
    (tmp_path / "e.yaml").write_text(_exp(str(tmp_path)))
    proc = _cli(["config", "e.yaml", "--set", f"name={'a' * MAX_NAME}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-1500:]
