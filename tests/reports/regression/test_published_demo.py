"""reports/published_demo.yaml holds the demo's expected mIoUs, and `make demo` ends with a check against it: the file
must match every trial of experiments/synthetic.yaml's sweep (so a change of the demo config that forgets the file
fails here), and the check must compare all four rows (at least 4, the issue's acceptance) and pass on them."""
import re
from pathlib import Path


from bench.cli import main
from bench.results.row import base_row, write_tables
from bench.sweep.spec.trials import load_sweep
from reports.regression.published import load_published

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "experiments" / "synthetic.yaml"
PUBLISHED = ROOT / "reports" / "published_demo.yaml"


def _demo_results(tmp_path: Path, shift: float = 0.0) -> Path:
    expected = {r["match"]["head"]: r["miou_ss"] for r in load_published(PUBLISHED)}
    rows = []
    for trial in load_sweep(DEMO).trials:
        row = base_row(trial, "synthetic-heads", "completed", attempts=1)
        row.update(miou=expected[trial.config.model.head.name] + shift, macc=50.0, aacc=80.0)
        rows.append(row)
    write_tables(tmp_path, rows, [])
    return tmp_path


def test_make_demo_ends_with_the_check():
    recipe = (ROOT / "Makefile").read_text().split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert re.search(r"ifa-bench check \$\(DEMO_OUT\) --against reports/published_demo.yaml", recipe), recipe


def test_the_demo_sweep_matches_every_published_demo_row(tmp_path, capsys):
    assert len(load_published(PUBLISHED)) == 4
    assert main(["check", str(_demo_results(tmp_path)), "--against", str(PUBLISHED), "--tolerance", "1.0"]) == 0
    assert "PASS: 4/4 compared rows pass" in capsys.readouterr().out


def test_a_demo_one_point_off_fails(tmp_path, capsys):
    assert main(["check", str(_demo_results(tmp_path, shift=-1.5)), "--against", str(PUBLISHED),
                 "--tolerance", "1.0"]) == 1
