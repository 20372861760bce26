"""Storage (bench/sweep/folder/storage.py) beyond the happy path (issue 32, rows "storage errors", "storage URIs"
and "storage download"): credentials never reach an error line, a URI with any credential part is refused, and a
download brings every table file. No network: a local path is a Storage too (pyarrow's LocalFileSystem), and the
errors are pyarrow's own."""
import filecmp

import pandas as pd
import pytest

from bench.cli import main
from bench.errors import UserError
from bench.sweep.folder import storage as st
from reports.load import read_results
from tests.reports.fixture import trial, write_sweep

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCY"  # an AWS secret key's shape
KEY_ID = "AKIAIOSFODNN7EXAMPLE"


@pytest.fixture
def secret_env(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "tok-" + SECRET[::-1])
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29." + SECRET[:12])


def test_an_sdk_error_that_holds_a_credential_is_redacted(secret_env, tmp_path):
    """Catches: an SDK error line printed without redaction (check_storage's `_redacted_line` not redacting, or a call site
    using the bare one_line). pyarrow's real error names the folder it could not create; that folder's name is the
    secret, so the SDK's part of the message shows it unless it is redacted."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    store = st.open_storage(str(blocker / SECRET / "sweep"))
    with pytest.raises(UserError) as err:
        st.check_storage(store)
    msg = str(err.value)
    head, sdk = msg.split(": cannot use the storage (", 1)
    assert SECRET in head  # the path the user typed, echoed as given
    assert SECRET not in sdk and "***" in sdk, msg  # what the SDK said, redacted


def test_redact_replaces_every_credential_variable(secret_env, monkeypatch):
    """Catches: redact() skipping one of the credential variables, or _redacted_line not applying it."""
    text = f"id {KEY_ID} secret {SECRET} token tok-{SECRET[::-1]} google ya29.{SECRET[:12]} end"
    assert st.redact(text) == "id *** secret *** token *** google *** end"
    assert st._redacted_line(OSError(f"denied for {SECRET}")) == "denied for ***"
    monkeypatch.setenv("AWS_SESSION_TOKEN", "abc")  # too short to be a credential: "abc" stays readable
    assert st.redact("abc") == "abc"


@pytest.mark.parametrize("uri", [
    f"s3://{KEY_ID}@bucket/x",  # a key id alone, no password
    f"s3://{KEY_ID}:@bucket/x",
    f"s3://:{SECRET}@bucket/x",
    f"s3://{KEY_ID}:{SECRET}@bucket/x",
    f"s3://{KEY_ID}:pa?{SECRET}@bucket/x",  # a '?' in the password: urlsplit sees no user part, only a query
    f"s3://{KEY_ID}:pa#{SECRET}@bucket/x",
    f"gs://{KEY_ID}:pa/{SECRET}@bucket/x",
    f"gs://{KEY_ID}@bucket/x",
])
def test_a_uri_with_any_credential_part_is_refused_without_echoing_it(uri):
    """Catches: only a password counting as a credential (`if parts.password`): `s3://KEYID@bucket/x` would be
    accepted and the key id would land in payloads and logs."""
    with pytest.raises(UserError, match="the URI holds credentials") as err:
        st.open_storage(uri)
    assert KEY_ID not in str(err.value) and SECRET not in str(err.value)


def test_check_refuses_a_key_id_uri_in_one_line_exit_2(tmp_path, capsys):
    """The same through the command line (`check s3://KEYID@bucket/x`): exit 2, one line, the key id not echoed."""
    assert main(["check", f"s3://{KEY_ID}@bucket/sweep"]) == 2
    out, err = capsys.readouterr()
    assert "the URI holds credentials" in err and len(err.strip().splitlines()) == 1
    assert KEY_ID not in out + err


def test_download_brings_every_table_file_and_the_per_class_table(tmp_path):
    """Catches: one of the table files not pulled (layout.TABLE_FILES or download_sweep losing per_class_iou.csv or
    results.parquet): `report s3://...` would silently lack the per-class table. The names are written out here,
    not taken from the code under test."""
    src = write_sweep(tmp_path / "stored", [trial(seed=0, miou=40.0, class_iou=[90, 50, 40, 60]), trial(seed=1, miou=42.0, class_iou=[91, 51, 41, 61])], per_class=True)
    pd.read_csv(src / "results.csv").to_parquet(src / "results.parquet")
    (src / "measurements").mkdir()
    (src / "measurements" / "abc123def456.json").write_text('{"latency_ms_median": 1.5}')
    (src / "trials" / "t000" / "result.json").write_text('{"miou": 40.0}')
    (src / "trials" / "t001" / "attempts.json").write_text('{"count": 1}')

    dst = st.download_sweep(st.open_storage(str(src)), tmp_path / "copy")
    for name in ("results.csv", "results.parquet", "per_class_iou.csv", "measurements/abc123def456.json",
                 "trials/t000/result.json", "trials/t001/attempts.json", "trials/t000/metrics.jsonl"):
        assert (dst / name).is_file(), name
        assert filecmp.cmp(src / name, dst / name, shallow=False), name
    here, there = read_results(src), read_results(dst)
    assert there.per_class is not None and len(there.per_class) == len(here.per_class) > 0
    pd.testing.assert_frame_equal(there.per_class, here.per_class)
