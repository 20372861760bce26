"""Issue 28: every URL form is redacted, and a storage error caused by a variable names the variable."""
from __future__ import annotations

import pytest

from bench.errors import UserError
from bench.sweep.folder.storage import open_storage, redact, redact_url


@pytest.mark.parametrize("address,shown", [
    ("http://u:pa55/wordPW42@127.0.0.1:4443", "http://***@127.0.0.1:4443"),
    ("u:p@ssPW42@127.0.0.1:4443", "***@127.0.0.1:4443"),
    ("https://token123@host", "https://***@host"),
    ("http://127.0.0.1:4443", "http://127.0.0.1:4443"),
])
def test_redact_url_takes_the_user_part_up_to_the_last_at(address, shown):
    assert redact_url(address) == shown


@pytest.mark.parametrize("host,secret", [("http://u:pa55/wordPW42@127.0.0.1:4443", "pa55/wordPW42"),
                                         ("u:p@ssPW42@127.0.0.1:4443", "p@ssPW42")])
def test_storage_emulator_host_password_never_printed(monkeypatch, host, secret):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", host)
    with pytest.raises(UserError) as info:
        open_storage("gs://bucket/x")
    assert "STORAGE_EMULATOR_HOST=" in str(info.value) and "PW42" not in str(info.value), str(info.value)
    assert "PW42" not in redact(f"connect to {host} failed (password {secret})")


def test_an_endpoint_from_the_environment_is_named(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "ftp://127.0.0.1:9000")
    with pytest.raises(UserError, match=r"^AWS_ENDPOINT_URL=ftp://127.0.0.1:9000: expected http\(s\)://HOST:PORT"):
        open_storage("s3://bucket/x")


@pytest.mark.parametrize("uri", ["s3:/bucket/x", "gs:bucket/x", "S3:/b"])
def test_a_uri_with_one_slash_is_not_a_local_folder(uri):
    with pytest.raises(UserError, match="malformed URI"):
        open_storage(uri)
