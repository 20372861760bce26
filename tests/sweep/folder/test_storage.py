"""`sweep --storage` against a real S3 server (moto_server on loopback): bad URIs and endpoints fail with one line
before anything runs; a sweep's checkpoints, records and results land in the bucket; `report` and `check` read the
sweep from its URI; the planted credentials appear in no written file and no output."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main
from bench.sweep.folder.storage import open_storage
from tests.sweep.conftest import tiny_experiment, write_spec
from tests.sweep.s3_server import BUCKET, FAKE_KEY_ID, FAKE_SECRET, free_port, s3_server  # noqa: F401 - fixture

REPO = Path(__file__).resolve().parents[3]


def _sweep_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(["sweep", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def spec(tmp_path, data_root) -> Path:
    return write_spec(tmp_path / "s.yaml", tiny_experiment(data_root, iterations=4, checkpoint_every=2),
                      {"name": "stored", "resources": {"cpus": 1}})


@pytest.mark.parametrize("uri, endpoint, expected", [
    ("ftp://bucket/x", None, "unsupported scheme 'ftp'"),
    ("s3:///x", None, "no bucket"),
    (f"s3://{FAKE_KEY_ID}:{FAKE_SECRET.replace('/', '%2F')}@bucket/x", None, "the URI holds credentials"),
    ("s3://bucket/x?secret_key=abc", None, "unknown query parameter 'secret_key'"),
    ("/tmp/local-path", "http://127.0.0.1:9", "only for an s3:// storage"),
])
def test_malformed_storage_is_one_line_exit_2(uri, endpoint, expected, spec, tmp_path, capsys):
    args = [str(spec), "--out", str(tmp_path / "out"), "--storage", uri]
    code, out, err = _sweep_cli(args + (["--storage-endpoint", endpoint] if endpoint else []), capsys)
    assert code == 2 and expected in err and err.count("\n") == 1, err
    assert FAKE_SECRET not in err + out and FAKE_KEY_ID not in err + out
    assert not (tmp_path / "out").exists()


def test_unreachable_endpoint_and_missing_bucket_fail_before_any_trial(s3_server, spec, tmp_path, capsys):  # noqa: F811
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    code, _, err = _sweep_cli([str(spec), "--out", str(tmp_path / "a"), "--storage", f"s3://{BUCKET}/x",
                               "--storage-endpoint", dead], capsys)
    assert code == 2 and "cannot reach the storage server" in err and err.count("\n") == 1, err  # not "no bucket"
    assert not (tmp_path / "a").exists()
    code, _, err = _sweep_cli([str(spec), "--out", str(tmp_path / "b"), "--storage", s3_server.uri("x", "no-such-bucket")],
                              capsys)
    assert code == 2 and "bucket 'no-such-bucket' does not exist" in err and err.count("\n") == 1, err
    assert not (tmp_path / "b").exists()
    assert FAKE_SECRET not in err


def test_endpoint_option_and_env_mean_the_same_as_the_query(monkeypatch):
    q = open_storage("s3://b/p?endpoint_override=127.0.0.1:9000&scheme=http")
    o = open_storage("s3://b/p", "http://127.0.0.1:9000")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    e = open_storage("s3://b/p")
    assert q.uri == o.uri == e.uri == "s3://b/p?endpoint_override=127.0.0.1%3A9000&scheme=http"
    assert q.root == "b/p" and q.display == "s3://b/p" and q.url("b/p/x") == "s3://b/p/x"
    assert open_storage("rel/dir").root == str(Path("rel/dir").resolve())


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(360)  # 213 s once on the shared 2-core machine at load 18
def test_sweep_on_s3_then_report_and_check_read_it(s3_server, spec, tmp_path):  # noqa: F811
    uri = s3_server.uri("sweeps/one")
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "bench.cli", "sweep", str(spec), "--out", str(out), "--storage", uri],
                         cwd=REPO, capture_output=True, text=True, timeout=200)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"storage: s3://{BUCKET}/sweeps/one" in run.stdout

    files = s3_server.all_objects(tmp_path / "bucket", f"{BUCKET}/sweeps/one")
    names = {str(p.relative_to(tmp_path / "bucket")) for p in files}
    assert {"results.csv", "results.parquet", "per_class_iou.csv"} <= names
    (h,) = {n.split("/")[1] for n in names if n.startswith("trials/")}
    for rec in ("attempts.json", "result.json", "metrics.jsonl", "final.json", "trial.log"):
        assert f"trials/{h}/{rec}" in names, sorted(names)
    # Tune's checkpoint of the trial (the engine's checkpoint file inside) is in the bucket too
    assert any(n.startswith("tune/") and n.endswith("engine_checkpoint.json") for n in names), sorted(names)
    attempt = json.loads((tmp_path / "bucket" / "trials" / h / "attempts.json").read_text())["history"][0]
    assert attempt["scratch"] and not Path(attempt["scratch"]).exists()  # local scratch, removed after the attempt
    assert not (out / "tune").exists()  # Tune's state is not in the local folder
    assert (out / "results.csv").read_bytes() == (tmp_path / "bucket" / "results.csv").read_bytes()

    rep = subprocess.run([sys.executable, "-m", "bench.cli", "report", uri, "--out", str(tmp_path / "report")],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert rep.returncode == 0, rep.stdout + rep.stderr
    assert (tmp_path / "report" / "index.html").is_file() and "1 completed" in rep.stdout
    chk = subprocess.run([sys.executable, "-m", "bench.cli", "check", uri, "--allow-empty"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert chk.returncode == 0, chk.stdout + chk.stderr

    # the planted credentials: in the environment of every process above, in no file and no output
    written = [p for p in [*files, *out.rglob("*"), *(tmp_path / "report").rglob("*")] if p.is_file()]
    for p in written:
        blob = p.read_bytes()
        assert FAKE_SECRET.encode() not in blob and FAKE_KEY_ID.encode() not in blob, p
    for text in (run.stdout, run.stderr, rep.stdout, rep.stderr, chk.stdout, chk.stderr):
        assert FAKE_SECRET not in text and FAKE_KEY_ID not in text


def test_a_bad_table_at_a_uri_is_named_by_its_uri(s3_server, tmp_path, capsys):  # noqa: F811
    """Issue 28: `report s3://...` on a bad table named the deleted temp folder it was downloaded to."""
    with s3_server.fs().open_output_stream(f"{BUCKET}/badtable/results.csv") as f:
        f.write(b"dataset,head\nx,y\n")
    uri = s3_server.uri("badtable")
    for argv in (["report", uri, "--out", str(tmp_path / "r")], ["check", uri]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "ifa-storage-" not in err and f"s3://{BUCKET}/badtable/results.csv" in err, err
        assert err.count("\n") == 1, err
    assert not (tmp_path / "r").exists()
