"""Kill tests for bench/commands/check.py (issue 32's mutation pass): each option reaches the check, through the real
`ifa-bench check` command on real result tables (tests/reports/fixture.py) and the packaged published numbers."""
import argparse

import numpy as np
import pandas as pd
import pytest

from bench.cli import main
from bench.commands import check as check_command
from bench.engine.evaluation.bootstrap import PER_IMAGE_FILE, miou_from_sums, save_per_image
from bench.errors import UserError
from reports.load import CHECK_REQUIRED, read_results
from reports.regression.intervals import paired
from reports.regression.published import DEFAULT_PATH
from tests.reports.fixture import trial, write_sweep
from tests.reports.regression.test_check import IFA, MS, PPM
from tests.reports.regression.test_check_ci import _per_image


def _err_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_metric_ms_flip_is_the_metric_compared(tmp_path, capsys):
    """`--metric miou_ms_flip` reaches run_check: the multi-scale row (79.18) is compared, and the single-scale check
    of the same table compares nothing."""
    root = write_sweep(tmp_path, [trial(seed=0, miou=79.0, **PPM, **MS)], per_class=False, curves=False)
    out = tmp_path / "ms.csv"
    assert main(["check", str(root), "--metric", "miou_ms_flip", "--tolerance", "0.5", "--out", str(out)]) == 0
    assert "PASS: 1/1" in capsys.readouterr().out
    rows = pd.read_csv(out)
    assert rows["matched"].tolist() == [True] and rows["published"].tolist() == [79.18]
    assert rows["delta"].item() == pytest.approx(-0.18)
    assert main(["check", str(root)]) == 1  # miou_ss: not the protocol, nothing compared
    assert "FAIL: nothing was compared: none of the 1 reproduced model matches" in capsys.readouterr().out


def test_against_is_the_table_read(tmp_path, capsys):
    """`--against` is read instead of the packaged table: the same reproduced 77.80 passes against the packaged
    77.85 and fails against a copy that says 75.85."""
    root = write_sweep(tmp_path / "sweep", [trial(seed=0, miou=77.8, **PPM)], per_class=False, curves=False)
    assert main(["check", str(root)]) == 0
    capsys.readouterr()
    mine = tmp_path / "published.yaml"
    text = DEFAULT_PATH.read_text()
    assert text.count("miou_ss: 77.85\n") == 1
    mine.write_text(text.replace("miou_ss: 77.85\n", "miou_ss: 75.85\n"))
    out = tmp_path / "rows.csv"
    assert main(["check", str(root), "--against", str(mine), "--out", str(out)]) == 1
    assert "FAIL: 0/1" in capsys.readouterr().out
    assert pd.read_csv(out).query("matched")["published"].tolist() == [75.85]


def test_include_reproductions_reaches_the_check(tmp_path, capsys):
    """A third-party reproduction row is context only (exit 0) unless `--include-reproductions` (exit 1)."""
    root = write_sweep(tmp_path, [trial(seed=0, miou=78.5, **IFA)], per_class=False, curves=False)
    assert main(["check", str(root)]) == 0
    assert "context only (outside tolerance)" in capsys.readouterr().out
    assert main(["check", str(root), "--include-reproductions"]) == 1


def test_out_csv_has_no_index_column_and_is_rewritten_only_over_its_own(tmp_path, capsys):
    root = write_sweep(tmp_path / "sweep", [trial(seed=0, miou=77.8, **PPM), trial(seed=0, miou=1.0)],
                       per_class=False, curves=False)
    out = tmp_path / "rows.csv"
    assert main(["check", str(root), "--out", str(out)]) == 0
    capsys.readouterr()
    header = out.read_text().splitlines()[0].split(",")
    assert header[:2] == ["label", "dataset"] and {"matched", "verdict"} <= set(header), header  # no index column
    rows = pd.read_csv(out)
    assert rows["matched"].tolist() == [True, False] and rows["reproduced"].iloc[0] == pytest.approx(77.8)
    out.write_text(out.read_text().replace("77.8", "11.1"))
    assert main(["check", str(root), "--out", str(out)]) == 0  # its own earlier output (a row unmatched): replaced
    capsys.readouterr()
    assert pd.read_csv(out)["reproduced"].iloc[0] == pytest.approx(77.8)


def _paired_sweep(tmp_path):
    a = _per_image(0.75, seed=0)
    b = (np.floor(a[0] * 0.9).astype(np.int64), a[1])
    trials = [trial(seed=0, miou=float(miou_from_sums(a[0].sum(0), a[1].sum(0))), **PPM),
              trial(seed=0, miou=float(miou_from_sums(b[0].sum(0), b[1].sum(0))), **dict(PPM, head="fpn"))]
    root = write_sweep(tmp_path, trials, per_class=False, curves=False)
    save_per_image(root / "trials" / "t000" / PER_IMAGE_FILE, *a)
    save_per_image(root / "trials" / "t001" / PER_IMAGE_FILE, *b)
    return root


@pytest.mark.parametrize("level", [None, 80.0])
def test_paired_line_in_full_at_the_default_and_a_given_level(tmp_path, capsys, level):
    """The `--paired` line, word for word, against the interval computed here at the level asked for (95 by
    default); the comparison itself is not made (no published table is read)."""
    root = _paired_sweep(tmp_path)
    argv = ["check", str(root), "--paired", "t000", "t001", "--against", str(tmp_path / "absent.yaml")]
    assert main(argv + ([] if level is None else ["--ci", str(level)])) == 0
    d = paired(read_results(root, CHECK_REQUIRED), "t000", "t001", level=level or 95.0)
    assert d.level == (level or 95.0) and not d.contains(0.0)
    assert capsys.readouterr().out == (
        f"mIoU(t000) - mIoU(t001) = {d.estimate:+.2f}, {d.level:g}% paired bootstrap interval "
        f"[{d.low:+.2f}, {d.high:+.2f}] ({d.replicates} replicates, seed {d.seed}): significant "
        f"(the interval excludes 0)\n")
    assert main(["check", str(root), "--paired", "t001", "t001"]) == 0
    same = paired(read_results(root, CHECK_REQUIRED), "t001", "t001", level=95.0)
    assert capsys.readouterr().out == (
        f"mIoU(t001) - mIoU(t001) = {same.estimate:+.2f}, 95% paired bootstrap interval "
        f"[{same.low:+.2f}, {same.high:+.2f}] ({same.replicates} replicates, seed {same.seed}): not significant "
        f"(the interval includes 0)\n")


def test_refusals_before_anything_is_read(tmp_path, capsys):
    """Each refusal in full, made before the results are read (so the results need not exist)."""
    root = tmp_path / "sweep"
    assert main(["check", str(root), "--min-seeds", "-1"]) == 2
    assert _err_line(capsys) == "ifa-bench check: error: --min-seeds: must be >= 0, got -1"
    assert main(["check", str(root), "--tolerance", "-0.5"]) == 2
    assert _err_line(capsys) == "ifa-bench check: error: --tolerance: must be a finite number >= 0, got -0.5"
    assert main(["check", str(root), "--ci", "100"]) == 2
    assert _err_line(capsys) == "ifa-bench check: error: --ci: a confidence level between 0 and 100 (e.g. 95), got 100"
    for level in ("0.5", "1", "99.5"):  # inside (0, 100): accepted, and the missing results are what is refused
        assert main(["check", str(root), "--ci", level]) == 2
        assert _err_line(capsys) == f"ifa-bench check: error: {root}: no such file or directory"
    # the metric is refused by the command too, not only by argparse's choices (run() is the command's entry for
    # a namespace built elsewhere): the parser's own defaults with a metric it does not know
    parser = argparse.ArgumentParser()
    check_command.add_arguments(parser)
    args = parser.parse_args([str(root)])
    args.metric = "miou_flip"
    with pytest.raises(UserError) as exc:
        check_command.run(args)
    assert str(exc.value) == "--metric: unknown metric 'miou_flip' (known: miou_ss, miou_ms_flip)"
    # a storage URI is refused before any network access, naming the command
    assert main(["check", "s3://"]) == 2
    assert _err_line(capsys) == "ifa-bench check: error: check s3://: no bucket (expected s3://BUCKET/PREFIX)"
    # --out: never a file `check` did not write, nor an input
    foreign = tmp_path / "notes.csv"
    foreign.write_text("a,b\n1,2\n")
    assert main(["check", str(root), "--out", str(foreign)]) == 2
    line = _err_line(capsys)
    assert line.startswith(f"ifa-bench check: error: --out {foreign}: ") and "not a table written by `ifa-bench check`;" in line
    assert foreign.read_text() == "a,b\n1,2\n"
    half = tmp_path / "half.csv"  # `matched` but no `verdict`: not ours either
    half.write_text("label,matched\nx,True\n")
    assert main(["check", str(root), "--out", str(half)]) == 2
    assert "not a table written by `ifa-bench check`;" in _err_line(capsys)
    assert main(["check", str(root / "results.csv"), "--out", str(root / "results.csv")]) == 2
    assert _err_line(capsys).startswith(f"ifa-bench check: error: --out {root / 'results.csv'}: is the input")
    against = tmp_path / "published.yaml"
    against.write_text("results: []\n")
    assert main(["check", str(root), "--against", str(against), "--out", str(against)]) == 2
    assert f"--out {against}: is the input {against}" in _err_line(capsys)
    assert not root.exists()


def test_zero_seeds_and_zero_tolerance_are_allowed(tmp_path, capsys):
    root = write_sweep(tmp_path, [trial(seed=0, miou=77.8, **PPM)], per_class=False, curves=False)
    assert main(["check", str(root), "--min-seeds", "0"]) == 0
    assert main(["check", str(root), "--tolerance", "0"]) == 1  # |77.80 - 77.85| > 0


def test_repeated_rows_note_and_an_empty_result(tmp_path, capsys):
    root = write_sweep(tmp_path / "a", [trial(seed=0, miou=77.8, **PPM)], per_class=False, curves=False)
    table = pd.read_csv(root / "results.csv")
    pd.concat([table, table]).to_csv(root / "results.csv", index=False)
    assert main(["check", str(root)]) == 0
    assert capsys.readouterr().err == f"note: 1 repeated trial row in {root / 'results.csv'} counted once\n"
    empty = write_sweep(tmp_path / "b", [trial(seed=0, miou=77.8, **PPM)], per_class=False, curves=False)
    pd.read_csv(empty / "results.csv").iloc[:0].to_csv(empty / "results.csv", index=False)  # the header only
    assert main(["check", str(empty)]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == (
        "FAIL: nothing was compared: the results hold no reproduced model; --allow-empty accepts this")
    assert main(["check", str(empty), "--allow-empty"]) == 0


def test_a_bad_table_at_a_uri_is_named_by_the_uri(tmp_path, capsys, monkeypatch):
    """`check s3://...` downloads the table into a temp folder; an error names the URI, not that folder. A real S3
    protocol server (moto's, in a thread of this process) with planted fake credentials."""
    from moto.server import ThreadedMotoServer
    from pyarrow import fs as pafs
    from tests.sweep.s3_server import BUCKET, credentials_env, free_port

    for key, value in credentials_env().items():
        monkeypatch.setenv(key, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        fs = pafs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http", region="us-east-1",
                               allow_bucket_creation=True)
        fs.create_dir(BUCKET)
        with fs.open_output_stream(f"{BUCKET}/bad/results.csv") as f:
            f.write(b"dataset,head\nx,y\n")
        assert main(["check", f"s3://{BUCKET}/bad", "--storage-endpoint", f"http://127.0.0.1:{port}"]) == 2
        line = _err_line(capsys)
    finally:
        server.stop()
    assert line.startswith(f"ifa-bench check: error: s3://{BUCKET}/bad/results.csv: "), line
    assert "ifa-storage-" not in line and "missing required column(s)" in line
