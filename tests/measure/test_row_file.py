"""bench/results/row_file.py: `measure --out` files grow one whole row at a time and keep earlier rows."""
import csv
import json

import pytest

from bench.results.row_file import RowFile
from bench.errors import UserError


def test_csv_rows_keep_earlier_rows_and_take_the_union_of_columns(tmp_path):
    path = tmp_path / "sub" / "rows.csv"
    RowFile(path).append({"model": "a", "gmacs": 1.5, "latency_ms_median": None})
    again = RowFile(path)  # a second run appends to the first run's file
    again.append({"model": "b", "gmacs": 2.0, "latency_iqr_ms": 0.25, "unsupported": ["x", "y"]})
    rows = list(csv.DictReader(path.open()))
    assert [r["model"] for r in rows] == ["a", "b"]
    assert rows[0]["latency_ms_median"] == "" and rows[0]["latency_iqr_ms"] == ""
    assert rows[1]["latency_iqr_ms"] == "0.25" and json.loads(rows[1]["unsupported"]) == ["x", "y"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["rows.csv"]  # no temp file left


def test_jsonl_rows_and_nan_as_null(tmp_path):
    path = tmp_path / "rows.jsonl"
    out = RowFile(path)
    out.append({"model": "a", "latency_ms_median": float("nan")})
    out.append({"model": "b", "latency_ms_median": 3.0})
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [{"model": "a", "latency_ms_median": None}, {"model": "b", "latency_ms_median": 3.0}]


@pytest.mark.parametrize("name, content, needle", [
    ("rows.txt", None, "'.txt'"),
    ("rows", None, "(none)"),
    ("rows.jsonl", "{\"model\": \"a\"}\nnot json\n", "line 2 is not JSON"),
    ("rows.jsonl", "[1, 2]\n", "line 1 is not a JSON object"),
    # another results file is never rewritten with measure rows: a sweep's results.csv, any other table
    ("results.csv", "trial_id,status,gmacs\nab12,completed,2.5\n", "its header has no 'model' column"),
    ("rows.jsonl", "{\"model\": \"a\"}\n{\"trial_id\": \"ab12\"}\n", "line 2 has no 'model' key"),
])
def test_bad_out_files_are_refused_before_anything_is_written(tmp_path, name, content, needle):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError, match="--out") as err:
        RowFile(path)
    assert needle in str(err.value) and str(path) in str(err.value)
    assert (path.read_text() if content is not None else not path.exists()) in (content, True)


def test_a_directory_is_refused(tmp_path):
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(UserError, match="is a directory"):
        RowFile(tmp_path / "d.csv")


def test_an_unwritable_place_is_one_error_and_the_row_is_not_kept(tmp_path):
    (tmp_path / "file").write_text("")
    out = RowFile(tmp_path / "file" / "rows.csv")  # its parent is a file
    with pytest.raises(UserError, match="cannot write"):
        out.append({"model": "a"})
    assert out._rows == []
