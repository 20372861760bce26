"""Names from the results are data, never markup or formulas: a model named with HTML, Markdown and a spreadsheet
formula shows as text in report.md, index.html and the tables, and its CSV cells start with a quote."""
import io
import pandas as pd

from reports.build import build_report
from bench.results.csv_export import csv_text
from reports.tables import markdown
from tests.reports.fixture import trial, write_sweep

HOSTILE = "<img src=x onerror=alert(1)>|[x](http://e.example)"
FORMULA = "=HYPERLINK(\"http://e.example\",\"x\")"


def test_hostile_names_are_neutralised_everywhere(tmp_path):
    rows = [trial(head="ifa", miou=60.0, gmacs=1.0, **{"cfg.model.note": HOSTILE}),
            trial(head="ifa", miou=61.0, gmacs=2.0, **{"cfg.model.note": FORMULA})]
    rep = build_report(write_sweep(tmp_path, rows, curves=False, per_class=False))
    tables = rep.out_dir / "tables"
    for path in (rep.out_dir / "report.md", tables / "summary_synthetic.md", rep.out_dir / "index.html",
                 tables / "summary_synthetic.html"):
        text = path.read_text()
        assert "<img src=x" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text, path.name
    md = (tables / "summary_synthetic.md").read_text()
    assert r"&lt;img src=x onerror=alert(1)&gt;\|[x]\(http://e.example)" in md  # no cell break, no link
    tex = (tables / "summary_synthetic.tex").read_text()
    assert r"\textless{}img src=x onerror=alert(1)\textgreater{}" in tex
    csv = pd.read_csv(tables / "summary_synthetic.csv", keep_default_na=False)
    assert "'" + FORMULA in csv["cfg.model.note"].tolist()
    assert not any(str(v).startswith(("=", "+", "@")) for col in csv.columns for v in csv[col])


def test_csv_export_keeps_numbers_and_quotes_formulas():
    frame = pd.DataFrame({"a": ["=1+2", "+x", "-y", "@SUM(A1)", "-0.5", "plain"], "b": [-1.0, 2, 3, 4, 5, 6]})
    out = pd.read_csv(io.StringIO(csv_text(frame)), dtype={"a": str})
    assert out["a"].tolist() == ["'=1+2", "'+x", "'-y", "'@SUM(A1)", "-0.5", "plain"]
    assert out["b"].tolist() == frame["b"].tolist()


def test_markdown_right_aligns_numbers_and_bolds_the_marked_cells():
    df = pd.DataFrame({"model": ["a", "b"], "GMACs": ["2.30", "2.30"], "note": ["x", "y"]})
    df.attrs["bold"] = {(0, "GMACs"), (1, "GMACs")}
    assert markdown(df).splitlines() == ["| model | GMACs | note |", "|---|--:|---|", "| a | **2.30** | x |",
                                         "| b | **2.30** | y |"]
