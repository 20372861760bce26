"""Issue 28: text from results reaches report.md, summary_*.md and the CSV exports as text: HTML escaped in Markdown,
formula-leading cells quoted in CSV (bench/results/csv_export.py), numbers untouched."""
from __future__ import annotations

from reports.build import build_report
from tests.reports.fixture import trial, write_sweep

SCRIPT = "<script>alert(1)</script>"
FORMULA = "=HYPERLINK(\"http://x\",\"y\")"


def test_markdown_escapes_html_and_csv_defuses_formulas(tmp_path):
    sweep = write_sweep(tmp_path / "s", [trial(seed=0, miou=60.0),
                                         trial(head="fpn", seed=0, status="failed", error=FORMULA + " " + SCRIPT)],
                        per_class=False, curves=False, name=SCRIPT)
    report = build_report(sweep, tmp_path / "r")
    markdown = [p for p in report.out_dir.rglob("*.md")]
    assert markdown and any(p.name == "report.md" for p in markdown)
    for path in markdown:
        text = path.read_text()
        assert "<script>" not in text, path
    assert "&lt;script&gt;" in (report.out_dir / "report.md").read_text()
    status = (report.out_dir / "tables" / "status.csv").read_text()
    assert "'" + FORMULA.replace('"', '""') in status and "\n=" not in status and ",=" not in status
    for path in report.out_dir.rglob("*.csv"):
        for line in path.read_text().splitlines():
            assert not any(cell.startswith(("=", "@")) for cell in line.split(",")), (path, line)


def test_csv_export_keeps_numbers():
    import pandas as pd

    from bench.results.csv_export import csv_text

    text = csv_text(pd.DataFrame({"a": ["-3.5", "-x", "+1", "@y", "ok"], "b": [-1.0, 2.0, 3.0, 4.0, 5.0]}))
    assert text.splitlines() == ["a,b", "-3.5,-1.0", "'-x,2.0", "+1,3.0", "'@y,4.0", "ok,5.0"]
