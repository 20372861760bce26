"""A results table longer than reports.load.MAX_ROWS is refused after reading MAX_ROWS + 1 rows (bounded memory,
whatever the file's size), with one line naming the file and the limit, by `report` and by `check`.

The over-long tables here end in a line no CSV reader accepts: a reader that parsed the whole file before counting
(the 55 s / 3.5 GB behaviour on a 1,000,000-row table) reports that line instead of the limit."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.results.schema import RESULT_COLUMNS
from reports.load import MAX_ROWS, read_results
from tests.reports.fixture import trial, write_sweep

EXE = Path(sys.executable).parent / "ifa-bench"
pytestmark = pytest.mark.slow


def _table(tmp_path: Path, rows: int, tail: str = "") -> Path:
    """A sweep folder whose results.csv repeats the fixture's one completed row `rows` times, then `tail`."""
    one = write_sweep(tmp_path / "one", [trial(seed=0, miou=60.0)], per_class=False, curves=False)
    header, row = (one / "results.csv").read_text().splitlines()[:2]
    sweep = tmp_path / "big"
    sweep.mkdir()
    (sweep / "results.csv").write_text(header + "\n" + (row + "\n") * rows + tail)
    return sweep


BROKEN = "a,b,c," * len(RESULT_COLUMNS) + "\n"  # more fields than the header: a parse error if it is ever read


def test_a_table_at_the_limit_is_read(tmp_path):
    results = read_results(_table(tmp_path, MAX_ROWS))
    assert len(results.trials) == MAX_ROWS


@pytest.mark.skipif(not EXE.exists(), reason="the ifa-bench console script is not installed next to python")
@pytest.mark.parametrize("command", ["report", "check"])
def test_a_longer_table_is_refused_without_reading_the_rest(tmp_path, command):
    sweep = _table(tmp_path, MAX_ROWS + 1, tail=BROKEN * 1000)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    proc = subprocess.run([str(EXE), command, str(sweep)], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, MPLBACKEND="Agg"), cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-1000:]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-1000:]
    assert f"{sweep / 'results.csv'}: more than {MAX_ROWS:,} rows" in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_a_longer_parquet_table_is_refused_by_its_row_count(tmp_path):
    import pandas as pd

    from bench.errors import UserError

    one = write_sweep(tmp_path / "one", [trial(seed=0, miou=60.0)], per_class=False, curves=False)
    frame = pd.read_csv(one / "results.csv", dtype=str, keep_default_na=False)
    pd.concat([frame] * (MAX_ROWS + 1), ignore_index=True).to_parquet(tmp_path / "big.parquet")
    with pytest.raises(UserError, match=f"big.parquet: more than {MAX_ROWS:,} rows"):
        read_results(tmp_path / "big.parquet")


def test_several_inputs_together_are_bounded_too(tmp_path):
    from bench.errors import UserError
    from reports.sources import read_sources

    half = MAX_ROWS // 2 + 1
    a, b = _table(tmp_path / "a", half), _table(tmp_path / "b", half)
    with pytest.raises(UserError, match=f"more than {MAX_ROWS:,} rows"):
        read_sources([a, b])
