"""Kill tests for bench/sweep/folder/storage.py (issue 32's mutation pass), without Ray: URI parsing and its
refusals word for word, the S3 client's settings, redaction at its thresholds, the server-reachability check,
and push/pull/subfolders/check/materialize against a local folder and a real S3 protocol server (moto_server on
loopback, tests/sweep/s3_server.py)."""
import os
import stat
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest

from bench.errors import UserError
from bench.sweep.folder import layout
from bench.sweep.folder import storage as st
from tests.sweep.s3_server import BUCKET, free_port, s3_server  # noqa: F401 - fixture

ENDPOINT_ENV = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "STORAGE_EMULATOR_HOST", "AWS_REGION", "AWS_DEFAULT_REGION")


@pytest.fixture
def clean_env(monkeypatch):
    for name in ENDPOINT_ENV + st.SECRET_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _options(storage) -> dict:
    """The file system's settings as pyarrow keeps them (what it pickles)."""
    return storage.fs.__reduce__()[1][0]


def _refusal(uri, endpoint=None, option="--storage") -> str:
    with pytest.raises(UserError) as err:
        st.open_storage(uri, endpoint, option=option)
    return str(err.value)


# -- parsing -----------------------------------------------------------------------------------------------------
def test_uri_refusals_word_for_word(clean_env):
    shape = "(expected s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or a local path)"
    assert _refusal("  ", option="--in") == f"--in: empty URI {shape}"
    assert _refusal("s3:/bucket/x") == f"--storage s3:/bucket/x: malformed URI {shape}"
    assert _refusal("GS:bucket") == f"--storage GS:bucket: malformed URI {shape}"
    assert _refusal("http:u:pw@host") == f"--storage ***@host: malformed URI {shape}"
    assert _refusal("rel/dir", "http://h:9") == "--storage-endpoint: only for an s3:// storage, not the local path rel/dir"
    assert _refusal("ftp://b/x?q=1") == ("--storage ftp://b/x: unsupported scheme 'ftp' (expected s3://, gs:// or a "
                                         "local path)")
    assert _refusal("s3:///x", option="--in") == "--in s3:///x: no bucket (expected s3://BUCKET/PREFIX)"
    assert _refusal("gs:///x") == "--storage gs:///x: no bucket (expected gs://BUCKET/PREFIX)"
    assert _refusal("s3://b/x?zz=1&region=r") == (
        "--storage s3://b/x: unknown query parameter 'zz' (known: endpoint_override, scheme, region, "
        "allow_bucket_creation; credentials belong in the environment or ~/.aws)")
    assert _refusal("s3://b/x?b=1&a=2").split("unknown query parameter ")[1].startswith("'a'")  # the first, sorted
    assert _refusal("s3://b/x", "ftp://h:9") == "--storage-endpoint ftp://h:9: expected http(s)://HOST:PORT"
    assert _refusal("s3://b/x", "http://u:pw@h:9") == (
        "--storage-endpoint http://***@h:9: expected http(s)://HOST:PORT without a user or password (credentials belong "
        "in the environment or ~/.aws)")
    clean_env.setenv("AWS_ENDPOINT_URL", "http://:9")
    assert _refusal("s3://b/x") == "AWS_ENDPOINT_URL=http://:9: expected http(s)://HOST:PORT"
    assert _refusal("gs://b/x?region=r") == ("--storage gs://b/x: query parameters and --storage-endpoint are for "
                                             "s3:// only")
    assert _refusal("gs://b/x", "http://h:9").endswith("are for s3:// only")
    assert "holds credentials" in _refusal("s3://u:p@b/x", option="--in") and _refusal(
        "s3://u:p@b/x", option="--in").startswith("--in s3://***@b: the URI holds credentials")


def test_parsed_uris(clean_env, tmp_path):
    s = st.open_storage("S3://Bkt/a/b/")
    assert (s.scheme, s.root, s.uri, s.endpoint_from, s.display) == ("s3", "Bkt/a/b", "s3://Bkt/a/b", "", "s3://Bkt/a/b")
    assert st.open_storage("s3://bkt").root == "bkt"
    assert st.open_storage(" s3://bkt/p ").root == "bkt/p"
    q = st.open_storage("s3://b/p?region=eu-west-1&allow_bucket_creation=")
    assert q.uri == "s3://b/p?region=eu-west-1&allow_bucket_creation="  # blank values kept
    local = st.open_storage(str(tmp_path / "x" / ".." / "y"))
    assert (local.scheme, local.root, local.uri) == ("", str(tmp_path / "y"), str(tmp_path / "y"))
    assert local.display == str(tmp_path / "y") and local.url("/a/b") == "/a/b"
    assert st.open_storage("~/z").root == str(Path("~/z").expanduser().resolve())
    assert s.path("c/", "", "/d", "/") == "Bkt/a/b/c/d" and s.path() == "Bkt/a/b"
    assert st.open_storage("s3://b/p/").path("x") == "b/p/x"
    assert st.is_uri("s3://b") and not st.is_uri("s3:/b") and st.is_uri(Path("x")) is False


def test_the_endpoint_comes_from_the_option_then_the_environment(clean_env):
    opt = st.open_storage("s3://b/p", "https://h:9")
    assert opt.endpoint_from == "--storage-endpoint" and opt.uri == "s3://b/p?endpoint_override=h%3A9&scheme=https"
    assert st.open_storage("s3://b/p", "h:9").uri.endswith("scheme=http")  # no scheme: http
    clean_env.setenv("AWS_ENDPOINT_URL", "http://generic:1")
    clean_env.setenv("AWS_ENDPOINT_URL_S3", "http://s3only:2")
    s3 = st.open_storage("s3://b/p")
    assert s3.endpoint_from == "AWS_ENDPOINT_URL_S3" and "s3only%3A2" in s3.uri  # the S3-specific one wins
    clean_env.delenv("AWS_ENDPOINT_URL_S3")
    generic = st.open_storage("s3://b/p")
    assert generic.endpoint_from == "AWS_ENDPOINT_URL" and "generic%3A1" in generic.uri
    assert st.open_storage("s3://b/p", "http://opt:3").endpoint_from == "--storage-endpoint"
    query = st.open_storage("s3://b/p?endpoint_override=q:4&scheme=http")  # the URI's own endpoint: env not read
    assert query.endpoint_from == "" and "q%3A4" in query.uri and "generic" not in query.uri
    assert _options(query)["endpoint_override"] == "q:4"


def test_the_s3_clients_settings(clean_env):
    plain = _options(st.open_storage("s3://b/p"))
    assert (plain["region"], plain["scheme"], plain["endpoint_override"]) == ("us-east-1", "https", "")
    assert (plain["connect_timeout"], plain["request_timeout"], plain["allow_bucket_creation"]) == (5.0, 30.0, False)
    assert plain["access_key"] is None and plain["anonymous"] is False
    clean_env.setenv("AWS_REGION", "ap-south-1")
    assert _options(st.open_storage("s3://b/p"))["region"] == "ap-south-1"
    clean_env.setenv("AWS_DEFAULT_REGION", "eu-north-1")  # before AWS_REGION
    assert _options(st.open_storage("s3://b/p"))["region"] == "eu-north-1"
    given = _options(st.open_storage("s3://b/p?region=us-west-2&scheme=http&allow_bucket_creation=TRUE"))
    assert (given["region"], given["scheme"], given["allow_bucket_creation"]) == ("us-west-2", "http", True)
    assert _options(st.open_storage("s3://b/p?allow_bucket_creation=yes"))["allow_bucket_creation"] is False


def test_the_server_address_rule():
    ep, port, ok = st._server_address("h:9")
    assert (ep.scheme, ep.hostname, port, ok) == ("http", "h", 9, True)
    assert st._server_address("https://h")[1:] == (None, True)
    assert st._server_address("http://h:notaport")[1:] == (None, True)
    for bad in ("ftp://h:9", "http://:9", "http://u:p@h:9", "http://u@h:9", "http://:p@h:9"):
        assert st._server_address(bad)[2] is False, bad


def test_a_gcs_emulator_address(clean_env):
    clean_env.setenv("STORAGE_EMULATOR_HOST", " http://127.0.0.1:9 ")
    g = st.open_storage("gs://b/p/")
    opts = _options(g)
    assert (g.scheme, g.root, g.uri) == ("gs", "b/p", "gs://b/p")
    assert opts["anonymous"] is True and opts["scheme"] == "http" and opts["endpoint_override"] == "127.0.0.1:9"
    assert opts["retry_time_limit"] == timedelta(seconds=5)
    assert _options(st.open_storage("gs://b/p", option="--in"))["scheme"] == "http"
    clean_env.setenv("STORAGE_EMULATOR_HOST", "https://h:10")
    assert _options(st.open_storage("gs://b"))["scheme"] == "https"
    expected = "expected http(s)://HOST:PORT (a GCS emulator's address)"
    for bad, shown in (("http://h", "http://h"), ("http://h:9/path", "http://h:9/path"), ("http://h:9?x=1", "http://h:9?x=1"),
                       ("http://u:pw@h:9", "http://***@h:9"), ("ftp://h:9", "ftp://h:9"), ("h:9/", "h:9/")):
        clean_env.setenv("STORAGE_EMULATOR_HOST", bad)
        if bad == "h:9/":  # a trailing slash is an empty path: accepted
            st.open_storage("gs://b")
            continue
        assert _refusal("gs://b/x") == f"STORAGE_EMULATOR_HOST={shown}: {expected}", bad


# -- redaction ---------------------------------------------------------------------------------------------------
def test_redact_url_takes_the_last_at():
    assert st.redact_url("http://u:pa55/wordPW42@host:9/x") == "http://***@host:9/x"
    assert st.redact_url("u:p@ssPW42@host") == "***@host"
    assert st.redact_url("http://host:9") == "http://host:9" and st.redact_url("host") == "host"
    assert st._userinfo("s3://k@b/x") == ("s3://", "k", "b/x")
    assert st._userinfo("k@b") == ("", "k", "b")


def test_redact_at_its_thresholds(clean_env):
    clean_env.setenv("AWS_SECRET_ACCESS_KEY", "abcd")  # four characters: a credential
    assert st.redact("x abcd y") == "x *** y"
    clean_env.setenv("AWS_SECRET_ACCESS_KEY", "")
    assert st.redact("x  y") == "x  y"
    for name in st.ADDRESS_ENV:
        clean_env.setenv(name, "http://user:pw9@h:1")  # three characters: a password
        assert st.redact(f"{name} said pw9 and user") == f"{name} said *** and user", name
        clean_env.setenv(name, "http://KEYID42@h:1")  # a user part alone is the credential
        assert st.redact("denied KEYID42") == "denied ***", name
        clean_env.setenv(name, "http://u:ab@h:1")  # two characters: left alone
        assert st.redact("ab cd") == "ab cd", name
        clean_env.delenv(name)
    text = "see s3+x.y-z://KEY@b/x and gs://b/x then http://u:p@h:9/q end"
    assert st.redact(text) == "see s3+x.y-z://***@b/x and gs://b/x then http://***@h:9/q end"


# -- reachability ------------------------------------------------------------------------------------------------
def test_the_server_an_object_storage_talks_to(clean_env):
    assert st._server_of(st.open_storage("s3://b/p")) is None
    assert st._server_of(st.open_storage("/tmp/x")) is None
    assert st._server_of(st.open_storage("s3://b/p?endpoint_override=h&scheme=http")) == ("h", 80, "endpoint_override")
    assert st._server_of(st.open_storage("s3://b/p?endpoint_override=h")) == ("h", 443, "endpoint_override")
    assert st._server_of(st.open_storage("s3://b/p", "https://h:7")) == ("h", 7, "--storage-endpoint")
    clean_env.setenv("AWS_ENDPOINT_URL", "http://h2:8")
    assert st._server_of(st.open_storage("s3://b/p")) == ("h2", 8, "AWS_ENDPOINT_URL")
    clean_env.setenv("STORAGE_EMULATOR_HOST", "http://e:6")
    assert st._server_of(st.open_storage("gs://b/p")) == ("e", 6, "STORAGE_EMULATOR_HOST")
    gs = st.open_storage("gs://b/p")
    clean_env.setenv("STORAGE_EMULATOR_HOST", "http://e")
    assert st._server_of(gs) == ("e", 80, "STORAGE_EMULATOR_HOST")
    clean_env.delenv("STORAGE_EMULATOR_HOST")
    assert st._server_of(gs) == ("storage.googleapis.com", 443, "")


def test_an_unreachable_server_is_one_line_naming_what_chose_it(clean_env):
    port = free_port()  # nothing listens there
    for storage, by in ((st.open_storage("s3://b/p", f"http://127.0.0.1:{port}"), " (from --storage-endpoint)"),
                        (st.open_storage(f"s3://b/p?endpoint_override=127.0.0.1:{port}&scheme=http"),
                         " (from endpoint_override)")):
        with pytest.raises(UserError) as err:
            st.check_storage(storage, option="--in")
        assert str(err.value) == f"--in s3://b/p: cannot reach the storage server 127.0.0.1:{port}{by}: Connection refused"
    clean_env.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
    with pytest.raises(UserError) as err:
        st._require_reachable(st.open_storage("gs://b/p"), "W")
    assert str(err.value) == f"W: cannot reach the storage server 127.0.0.1:{port} (from STORAGE_EMULATOR_HOST): " \
                             "Connection refused"


# -- a local folder ----------------------------------------------------------------------------------------------
def test_push_pull_and_subfolders_on_a_local_folder(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.json").write_text("A")
    (src / "b.json").write_text("B")
    (src / "sub").mkdir()
    store = st.open_storage(str(tmp_path / "store"))
    store.push(src, "trials/h1", ["a.json", "missing.json", "sub"])
    assert sorted(p.name for p in (tmp_path / "store" / "trials" / "h1").iterdir()) == ["a.json"]
    store.push(src, "trials/h2/deep", ["b.json"])
    (tmp_path / "store" / "trials" / "top.txt").write_text("a file, not a trial")
    assert store.subfolders("trials") == ["h1", "h2"] and store.subfolders("none") == []

    dest = tmp_path / "dest" / "new"
    assert store.pull("trials/h1", dest, ["a.json", "gone.json"]) == ["a.json"]
    assert (dest / "a.json").read_text() == "A" and sorted(p.name for p in dest.iterdir()) == ["a.json"]
    assert store.pull("trials/nothing", tmp_path / "never") == [] and not (tmp_path / "never").exists()
    everything = tmp_path / "all"
    assert sorted(store.pull("trials/h2", everything)) == [] and not everything.exists()  # only a folder there
    assert store.pull("trials", everything) == ["top.txt"]


def test_push_and_pull_a_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    (sweep / layout.MEASUREMENTS).mkdir(parents=True)
    for name in (*layout.TABLE_FILES, layout.TUNE_STATE, "other.txt"):
        (sweep / name).write_text(name)
    (sweep / layout.MEASUREMENTS / "k1.json").write_text("{}")
    (sweep / layout.MEASUREMENTS / "notes.txt").write_text("x")
    store = st.open_storage(str(tmp_path / "store"))
    st.push_sweep(store, sweep)
    root = tmp_path / "store"
    assert sorted(p.name for p in root.iterdir()) == sorted([*layout.TABLE_FILES, layout.TUNE_STATE,
                                                             layout.MEASUREMENTS])
    assert sorted(p.name for p in (root / layout.MEASUREMENTS).iterdir()) == ["k1.json"]
    st.push_sweep(st.open_storage(str(tmp_path / "store2")), tmp_path / "store2-src")  # no folder: nothing pushed
    for h in ("h1", "h2"):
        (root / "trials" / h).mkdir(parents=True)
        (root / "trials" / h / layout.RESULT).write_text(h)
        (root / "trials" / h / "checkpoint.pt").write_text("not a record")
    local = tmp_path / "local"
    st.pull_sweep(store, local, ["h1"])
    assert (local / "trials" / "h1" / layout.RESULT).read_text() == "h1"
    assert not (local / "trials" / "h1" / "checkpoint.pt").exists() and not (local / "trials" / "h2").exists()
    assert (local / layout.MEASUREMENTS / "k1.json").is_file()
    down = st.download_sweep(store, tmp_path / "down")
    assert down == tmp_path / "down" and (down / "trials" / "h2" / layout.RESULT).read_text() == "h2"
    assert not (down / layout.TUNE_STATE).exists() and not (down / "trials" / "h2" / "checkpoint.pt").exists()


def test_check_storage_and_check_readable_on_a_local_folder(tmp_path):
    store = st.open_storage(str(tmp_path / "new" / "sweep"))
    st.check_storage(store)
    assert (tmp_path / "new" / "sweep").is_dir() and list((tmp_path / "new" / "sweep").iterdir()) == []
    with pytest.raises(UserError) as err:
        st.check_readable(store, "--in")
    assert str(err.value) == (f"--in {tmp_path / 'new' / 'sweep'}: no results.csv or results.parquet there "
                              "(not a sweep's storage)")
    (tmp_path / "new" / "sweep" / "results.parquet").write_text("x")
    st.check_readable(store, "--in")
    (tmp_path / "new" / "sweep" / "results.parquet").unlink()
    (tmp_path / "new" / "sweep" / "results.csv").write_text("x")
    st.check_readable(store, "--in")


def test_materialize_a_local_path_and_shown_uri(tmp_path):
    holder = []
    assert st.materialize(str(tmp_path / "x"), "--in", None, holder) == tmp_path / "x" and holder == []
    assert st.shown_uri("s3://b/p/?endpoint_override=h:9") == "s3://b/p"
    assert st.shown_uri("s3://b/p") == "s3://b/p" and st.shown_uri("rel/dir/") == "rel/dir/"
    assert st.shown_uri(Path("a/b")) == "a/b"


def test_scratch_folders_are_private_and_named_after_their_process(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    base = tmp_path / layout.SCRATCH
    base.mkdir()
    dead = base / layout.scratch_name("ab12", 2 ** 22 + 12345, "0" * 8)  # a PID above pid_max: no such process
    dead.mkdir()
    folder = st.scratch_dir("abc123")
    assert folder.parent == base and folder.is_dir() and not dead.exists()
    match = layout.SCRATCH_NAME.fullmatch(folder.name)
    assert match and int(match.group(1)) == os.getpid() and folder.name.startswith("abc123-")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    other = st.scratch_dir("abc123")
    assert other != folder and folder.is_dir()  # the live process's folder stays
    st.remove_scratch(folder)
    assert not folder.exists()
    st.remove_scratch(folder)  # already gone: no error
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "fresh"))
    (tmp_path / "fresh").mkdir()
    st.scratch_dir("ff")
    assert stat.S_IMODE((tmp_path / "fresh" / layout.SCRATCH).stat().st_mode) == 0o700


# -- a real S3 server ----------------------------------------------------------------------------------------------
def test_an_s3_bucket_end_to_end(s3_server, tmp_path):  # noqa: F811
    store = st.open_storage(s3_server.uri("e2e/sweep"))
    assert store.endpoint_from == "" and store.root == f"{BUCKET}/e2e/sweep"
    st.check_storage(store)
    from pyarrow import fs as pafs

    left = [i.path for i in s3_server.fs().get_file_info(pafs.FileSelector(f"{BUCKET}/e2e", allow_not_found=True,
                                                                           recursive=True)) if i.type == pafs.FileType.File]
    assert left == []  # the write probe is removed
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    for name in layout.TABLE_FILES:
        (sweep / name).write_text(name)
    st.push_sweep(store, sweep)
    src = tmp_path / "rec"
    src.mkdir()
    (src / layout.RESULT).write_text("{}")
    store.push(src, "trials/h9", [layout.RESULT])  # no folder marker objects: the folder is implied
    assert store.subfolders("trials") == ["h9"]
    st.check_readable(store, "--in")
    holder = []
    got = st.materialize(s3_server.uri("e2e/sweep"), "--in", None, holder)
    assert len(holder) == 1 and got == Path(holder[0].name) / "sweep"
    assert (got / "results.csv").read_text() == "results.csv" and (got / "trials" / "h9" / layout.RESULT).is_file()

    with pytest.raises(UserError) as err:
        st.check_storage(st.open_storage(s3_server.uri("x", "no-such-bucket")), option="--in")
    assert str(err.value) == ("--in s3://no-such-bucket/x: bucket 'no-such-bucket' does not exist (or these "
                              "credentials cannot see it)")
    with pytest.raises(UserError) as err:
        st.check_readable(st.open_storage(s3_server.uri("empty")), "--in")
    assert str(err.value).startswith(f"--in s3://{BUCKET}/empty: no results.csv")


# -- from the mutation run's survivors -----------------------------------------------------------------------------
def test_gs_without_an_emulator_is_googles_file_system(clean_env):
    """No STORAGE_EMULATOR_HOST: pyarrow's own GCS client for the bucket (built offline; nothing is contacted)."""
    from pyarrow import fs as pafs

    g = st.open_storage("gs://b/p")
    assert isinstance(g.fs, pafs.GcsFileSystem) and _options(g)["anonymous"] is False
    assert (g.root, g.uri) == ("b/p", "gs://b/p")
    clean_env.setenv("STORAGE_EMULATOR_HOST", "http://h:9/X")  # a path, even one of strip's characters
    assert _refusal("gs://b").startswith("STORAGE_EMULATOR_HOST=http://h:9/X: expected")


def test_redaction_of_nested_urls_and_colons_in_a_password(clean_env):
    assert st.redact_url("http://KEY@h/x?next=http://y") == "http://***@h/x?next=http://y"
    clean_env.setenv("AWS_ENDPOINT_URL", "http://user:pa:ss9@h:1")  # the password is all after the first colon
    assert st.redact("x pa:ss9 y") == "x *** y"


def test_shown_uri_cuts_at_the_first_question_mark():
    assert st.shown_uri("s3://b/p?endpoint_override=h:9?x") == "s3://b/p"
    assert st.shown_uri("s3://b/runX/") == "s3://b/runX"


def test_subfolders_of_a_root_whose_name_ends_in_x(tmp_path):
    store = st.open_storage(str(tmp_path / "storeX"))
    (tmp_path / "storeX" / "a").mkdir(parents=True)
    (tmp_path / "storeX" / "a" / "f").write_text("f")
    assert store.subfolders("") == ["a"]


def test_scratch_under_a_temp_dir_that_does_not_exist_yet(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing" / "deeper"))
    folder = st.scratch_dir("ab")
    assert folder.parent == tmp_path / "missing" / "deeper" / layout.SCRATCH


def test_check_storage_names_the_default_option(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(UserError) as err:
        st.check_storage(st.open_storage(str(blocker / "sweep")))
    assert str(err.value).startswith(f"--storage {blocker / 'sweep'}: cannot use the storage (")


def test_an_unreadable_storage_is_one_line(clean_env):
    port = free_port()  # nothing listens there
    storage = st.open_storage(f"s3://b/x?endpoint_override=127.0.0.1:{port}&scheme=http")
    with pytest.raises(UserError) as err:
        st.check_readable(storage, "--in")
    assert str(err.value).startswith("--in s3://b/x: cannot read the storage (") and f"127.0.0.1:{port}" in str(err.value)


def test_materialize_a_uri_with_its_option_and_endpoint(s3_server, tmp_path):  # noqa: F811
    for key in ("runX/results.csv", "results.csv"):
        with s3_server.fs().open_output_stream(f"{BUCKET}/{key}") as f:
            f.write(b"dataset\nx\n")
    holder = []
    got = st.materialize(f"s3://{BUCKET}/runX", "--in", s3_server.endpoint, holder)
    assert got.name == "runX" and (got / "results.csv").is_file()
    assert Path(holder[0].name).name.startswith("ifa-storage-")
    whole = st.materialize(f"s3://{BUCKET}", "--in", s3_server.endpoint, holder)
    assert whole.name == BUCKET and (whole / "results.csv").is_file()
    with pytest.raises(UserError) as err:
        st.materialize(f"s3://{BUCKET}/nothing", "--in", s3_server.endpoint, holder)
    assert str(err.value) == f"--in s3://{BUCKET}/nothing: no results.csv or results.parquet there (not a sweep's storage)"
    with pytest.raises(UserError) as err:
        st.materialize("s3://KEY@b/x", "--in", None, holder)
    assert str(err.value).startswith("--in s3://***@b: the URI holds credentials")


def test_more_parsing_boundaries(clean_env):
    with pytest.raises(UserError) as err:
        st.open_storage("s3://KEY@b/x")  # the default option
    assert str(err.value).startswith("--storage s3://***@b: the URI holds credentials")
    with pytest.raises(UserError) as err:
        st.open_storage("s3://[b/x")  # an unclosed bracket: urlsplit's ValueError, not a traceback
    assert str(err.value) == ("--storage s3://[b/x: malformed URI (expected s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or "
                              "a local path)")
    assert _refusal("gs://a b/x", option="--in").startswith("--in gs://a b/x: Cannot parse URI: 'gs://a b/x'")
    assert st.open_storage("s3://b/runX/").root == "b/runX" and st.open_storage("gs://b/runX/").root == "b/runX"
    s = st.open_storage("s3://b/p")
    assert s.path("runX/", "X") == "b/p/runX/X"
