"""`sweep --storage URI`: a sweep's persistent state in object storage (s3://, gs://) or a local/NFS path.

What lives at the URI (pyarrow file systems; Tune writes its own part through RunConfig.storage_path):
    <uri>/tune/<experiment>/...        Tune's experiment state and every trial's checkpoints (Tune uploads them)
    <uri>/tune/train/...               Ray Train runs of multi-worker trials, with their checkpoints
    <uri>/trials/<config_hash>/        the trial's records (layout.RECORD_FILES): attempts, metrics, done record, log
    <uri>/measurements/<key>.json      the measurement phase's records
    <uri>/results.csv, results.parquet, per_class_iou.csv
Local scratch stays local: the driver keeps its copy in --out, and each trial attempt trains in a fresh folder
under the node's temp dir (scratch_dir), filled from the URI and removed when the attempt ends.

Credentials come only from the environment and config files the cloud SDKs read (AWS_* variables, ~/.aws,
GOOGLE_APPLICATION_CREDENTIALS). A URI holding credentials is refused, so none is ever copied into a trial's
payload, Tune's state, a record or a log; error messages are redacted (redact) as well.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional
from urllib.parse import parse_qsl, urlencode, urlsplit

from bench.errors import UserError, one_line
from bench.sweep.folder import layout
from bench.results.schema import RESULTS_CSV, RESULTS_PARQUET, TRIALS, trial_rel

SCHEMES = ("s3", "gs", "gcs")
S3_QUERY_KEYS = ("endpoint_override", "scheme", "region", "allow_bucket_creation")  # no credential in a query
SECRET_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "GOOGLE_OAUTH_ACCESS_TOKEN")
CONNECT_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 30.0


def is_uri(text: str) -> bool:
    return "://" in str(text)


ADDRESS_ENV = ("STORAGE_EMULATOR_HOST", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")  # may hold user:password@
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


def _userinfo(address: str) -> tuple[str, str, str]:
    """(scheme://, user:password, rest) of an address; the user part ends at the LAST '@' before the host, so that
    a password holding '/' or '@' (`http://u:pa55/wordPW42@host`, `u:p@ssPW42@host`) is taken whole."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "", address
    else:
        scheme += sep
    if "@" not in rest:
        return scheme, "", rest
    userinfo, host = rest.rsplit("@", 1)
    return scheme, userinfo, host


def redact_url(address: str) -> str:
    """The address with everything before its host replaced by ***: `http://***@host:port`. The user part goes too:
    it can be a credential of its own (an access key id)."""
    scheme, userinfo, host = _userinfo(address)
    if not userinfo:
        return address
    return f"{scheme}***@{host}"


def redact(text: str) -> str:
    """The text with the value of every credential variable of the environment, the password of every address
    variable, and the user part of every URL in it replaced by ***."""
    for name in SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    for name in ADDRESS_ENV:
        userinfo = _userinfo(os.environ.get(name, ""))[1]
        secret = userinfo.partition(":")[2] or userinfo
        if len(secret) >= 3:
            text = text.replace(secret, "***")
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


def _redacted_line(exc: BaseException) -> str:
    return redact(one_line(exc))


@dataclass(frozen=True)
class Storage:
    uri: str  # as given on the command line (with the endpoint folded into the query); never holds credentials
    fs: "object"  # pyarrow.fs.FileSystem
    root: str  # the URI's path inside fs (bucket/prefix for S3)
    scheme: str  # "s3", "gs", or "" for a local path
    endpoint_from: str = ""  # what named the server: "--storage-endpoint", "AWS_ENDPOINT_URL", ... ("" = the URI)

    @property
    def display(self) -> str:
        return f"{self.scheme}://{self.root}" if self.scheme else self.root

    def path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *(p.strip("/") for p in parts if p.strip("/"))])

    def url(self, fs_path: str) -> str:
        """A path inside fs as a URI a reader can open (s3://bucket/key) or a local path."""
        return f"{self.scheme}://{fs_path}" if self.scheme else fs_path

    # -- records -----------------------------------------------------------------------------------------------
    def push(self, folder: Path, rel: str, names: Iterable[str]) -> None:
        """Copy the named files that exist in the local folder to <root>/<rel>/ (each object replaced whole)."""
        from pyarrow import fs as pafs

        local = pafs.LocalFileSystem()
        dest = self.path(rel)
        self.fs.create_dir(dest, recursive=True)
        for name in names:
            src = Path(folder) / name
            if src.is_file():
                pafs.copy_files(str(src), f"{dest}/{name}", source_filesystem=local, destination_filesystem=self.fs)

    def pull(self, rel: str, folder: Path, names: Optional[Iterable[str]] = None) -> list[str]:
        """Copy <root>/<rel>/ files (all, or the named ones that exist) into the local folder; returns the names
        copied."""
        from pyarrow import fs as pafs

        src = self.path(rel)
        if names is None:
            infos = self.fs.get_file_info(pafs.FileSelector(src, allow_not_found=True, recursive=False))
        else:
            infos = self.fs.get_file_info([f"{src}/{n}" for n in names])
        got = []
        for info in infos:
            if info.type != pafs.FileType.File:
                continue
            Path(folder).mkdir(parents=True, exist_ok=True)
            tmp = Path(folder) / f".{info.base_name}.pull"
            pafs.copy_files(info.path, str(tmp), source_filesystem=self.fs,
                            destination_filesystem=pafs.LocalFileSystem())
            os.replace(tmp, Path(folder) / info.base_name)
            got.append(info.base_name)
        return got

    def subfolders(self, rel: str) -> list[str]:
        from pyarrow import fs as pafs

        # recursive: pyarrow's GCS listing shows only folders that have a marker object, not implied ones
        top = self.path(rel)
        base = top.rstrip("/") + "/"
        names = set()
        for info in self.fs.get_file_info(pafs.FileSelector(top, allow_not_found=True, recursive=True)):
            first, sep, _ = info.path[len(base):].partition("/") if info.path.startswith(base) else ("", "", "")
            if first and (sep or info.type == pafs.FileType.Directory):
                names.add(first)
        return sorted(names)


def _s3_filesystem(parts, query: dict):
    from pyarrow import fs as pafs

    endpoint = query.get("endpoint_override") or None
    return pafs.S3FileSystem(
        region=query.get("region") or os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
        or "us-east-1",
        scheme=query.get("scheme") or "https", endpoint_override=endpoint,
        connect_timeout=CONNECT_TIMEOUT_S, request_timeout=REQUEST_TIMEOUT_S,
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=2),
        allow_bucket_creation=query.get("allow_bucket_creation", "").lower() == "true",
    )


def open_storage(uri: str, endpoint: Optional[str] = None, option: str = "--storage") -> Storage:
    """Parse the URI (no network yet). `endpoint` (http://HOST:PORT) is an S3-compatible server's address, the same as
    `?endpoint_override=HOST:PORT&scheme=http` in the URI; AWS_ENDPOINT_URL is used when neither is given."""
    text = str(uri).strip()
    if not text:
        raise UserError(f"{option}: empty URI (expected s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or a local path)")
    malformed = UserError(f"{option} {redact_url(text)}: malformed URI (expected s3://BUCKET/PREFIX, "
                          f"gs://BUCKET/PREFIX or a local path)")
    if not is_uri(text) and re.match(r"(?i)(s3|gs|gcs|https?|file):", text):  # s3:/bucket, gs:bucket: a typo, not a local folder
        raise malformed
    if not is_uri(text):
        if endpoint:
            raise UserError(f"--storage-endpoint: only for an s3:// storage, not the local path {text}")
        path = Path(text).expanduser().resolve()
        from pyarrow import fs as pafs

        return Storage(uri=str(path), fs=pafs.LocalFileSystem(), root=str(path), scheme="")
    try:
        parts = urlsplit(text)
    except ValueError:  # s3://[bucket/x: an unclosed IPv6 bracket
        raise malformed from None
    scheme = parts.scheme.lower()
    if parts.username or parts.password or "@" in text:  # also `s3://u:pa?ss@b`: urlsplit sees no user part there
        where = ("GOOGLE_APPLICATION_CREDENTIALS" if scheme in ("gs", "gcs") else
                 "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or ~/.aws")
        host = parts.hostname if parts.username else "..."
        raise UserError(f"{option} {scheme}://***@{host}: the URI holds credentials (or an '@'); remove them and set "
                        f"them in the environment {where} instead")
    safe = f"{scheme}://{parts.netloc}{parts.path}"
    if scheme not in SCHEMES:
        raise UserError(f"{option} {safe}: unsupported scheme {scheme!r} (expected s3://, gs:// or a local path)")
    bucket = parts.netloc
    if not bucket:
        raise UserError(f"{option} {safe}: no bucket (expected {scheme}://BUCKET/PREFIX)")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    root = (bucket + "/" + parts.path.strip("/")).rstrip("/")
    if scheme == "s3":
        unknown = sorted(set(query) - set(S3_QUERY_KEYS))
        if unknown:
            raise UserError(f"{option} {safe}: unknown query parameter {unknown[0]!r} (known: "
                            f"{', '.join(S3_QUERY_KEYS)}; credentials belong in the environment or ~/.aws)")
        given = "--storage-endpoint " if endpoint else ""
        if not endpoint and "endpoint_override" not in query:
            for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
                if os.environ.get(name):
                    endpoint, given = os.environ[name], f"{name}="
                    break
        if endpoint:
            ep, port, ok = _server_address(endpoint)
            if not ok:
                raise UserError(f"{given}{redact_url(endpoint)}: expected http(s)://HOST:PORT" + (
                    " without a user or password (credentials belong in the environment or ~/.aws)"
                    if _userinfo(endpoint)[1] else ""))
            query.update(endpoint_override=ep.netloc, scheme=ep.scheme)
        fs = _s3_filesystem(parts, query)
        full = f"s3://{root}" + (f"?{urlencode(query)}" if query else "")
        return Storage(uri=full, fs=fs, root=root, scheme="s3", endpoint_from=given.rstrip("= "))
    if query or endpoint:
        raise UserError(f"{option} {safe}: query parameters and --storage-endpoint are for s3:// only")
    try:
        fs = _gcs_filesystem(root)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyarrow built without GCS, bad bucket name, ...
        raise UserError(f"{option} {safe}: {_redacted_line(exc)}") from None
    return Storage(uri=f"gs://{root}", fs=fs, root=root, scheme="gs")


def _server_address(text: str):
    """(urlsplit, port or None, ok) of a storage server's address, http:// when it names no scheme; ok when the scheme
    is http(s), there is a host and no user:password part (--storage-endpoint, STORAGE_EMULATOR_HOST)."""
    ep = urlsplit(text if "://" in text else f"http://{text}")
    try:
        port = ep.port
    except ValueError:  # a port that is not a number
        port = None
    return ep, port, ep.scheme in ("http", "https") and bool(ep.hostname) and not (ep.username or ep.password)


def _gcs_filesystem(root: str):
    """gs:// with the Google environment's credentials; STORAGE_EMULATOR_HOST (http://HOST:PORT, as Google's client
    libraries read it) points it at a GCS emulator instead, anonymously."""
    from datetime import timedelta

    from pyarrow import fs as pafs

    host = os.environ.get("STORAGE_EMULATOR_HOST", "").strip()
    if not host:
        return pafs.FileSystem.from_uri(f"gs://{root}")[0]
    ep, port, ok = _server_address(host)
    if not ok or not port or ep.path.strip("/") or ep.query:
        shown = redact_url(host)  # never echo a user:password part
        raise UserError(f"STORAGE_EMULATOR_HOST={shown}: expected http(s)://HOST:PORT (a GCS emulator's address)")
    return pafs.GcsFileSystem(anonymous=True, scheme=ep.scheme, endpoint_override=ep.netloc,
                              retry_time_limit=timedelta(seconds=CONNECT_TIMEOUT_S))


def _server_of(storage: Storage) -> tuple[str, int, str] | None:
    """(host, port, what named it) of the server an object storage talks to; None for a local path or AWS itself
    (which answers or fails at once)."""
    if storage.scheme == "s3":
        query = dict(parse_qsl(urlsplit(storage.uri).query))
        if "endpoint_override" not in query:
            return None
        ep = urlsplit(f"{query.get('scheme', 'https')}://{query['endpoint_override']}")
        port = ep.port or (443 if ep.scheme == "https" else 80)
        return ep.hostname or "", port, storage.endpoint_from or "endpoint_override"
    if storage.scheme == "gs":
        host = os.environ.get("STORAGE_EMULATOR_HOST", "").strip()
        if host:
            ep = _server_address(host)[0]
            return ep.hostname or "", ep.port or 80, "STORAGE_EMULATOR_HOST"
        return "storage.googleapis.com", 443, ""
    return None


def _require_reachable(storage: Storage, where: str) -> None:
    """A server that does not answer is one line within CONNECT_TIMEOUT_S, naming the server and the variable or
    option that chose it; not a missing bucket, and not minutes of the SDK's retries (gs:// without a network)."""
    import socket

    server = _server_of(storage)
    if server is None:
        return
    host, port, named_by = server
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        by = f" (from {named_by})" if named_by else ""
        raise UserError(f"{where}: cannot reach the storage server {host}:{port}{by}: {reason}") from None


def check_storage(storage: Storage, option: str = "--storage") -> None:
    """One-line UserError unless the bucket exists, answers and takes a write (before any trial runs)."""
    from pyarrow import fs as pafs

    where = f"{option} {storage.display}"
    _require_reachable(storage, where)
    try:
        if storage.scheme:
            bucket = storage.root.split("/", 1)[0]
            info = storage.fs.get_file_info(bucket)
            if info.type == pafs.FileType.NotFound:
                raise UserError(f"{where}: bucket {bucket!r} does not exist (or these credentials cannot see it)")
        storage.fs.create_dir(storage.root, recursive=True)
        probe = storage.path(f".write-test-{uuid.uuid4().hex[:8]}")
        with storage.fs.open_output_stream(probe) as f:
            f.write(b"ok")
        storage.fs.delete_file(probe)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyarrow raises OSError subclasses with the SDK's message
        raise UserError(f"{where}: cannot use the storage ({_redacted_line(exc)})") from None


def check_readable(storage: Storage, option: str) -> None:
    """For report/check: the URI must hold a sweep's results table."""
    from pyarrow import fs as pafs

    try:
        infos = storage.fs.get_file_info([storage.path(n) for n in (RESULTS_CSV, RESULTS_PARQUET)])
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"{option} {storage.display}: cannot read the storage ({_redacted_line(exc)})") from None
    if all(i.type == pafs.FileType.NotFound for i in infos):
        raise UserError(f"{option} {storage.display}: no results.csv or results.parquet there (not a sweep's storage)")


def download_sweep(storage: Storage, sweep_dir: Path) -> Path:
    """Copy a sweep's results table and trial records (not Tune's state or checkpoints) into sweep_dir."""
    sweep_dir = Path(sweep_dir)
    storage.pull("", sweep_dir, layout.TABLE_FILES)
    for key in storage.subfolders(TRIALS):
        storage.pull(trial_rel(key), layout.trial_dir(sweep_dir, key), layout.RECORD_FILES)
    storage.pull(layout.MEASUREMENTS, sweep_dir / layout.MEASUREMENTS)
    return sweep_dir


def shown_uri(value) -> str:
    """A storage URI as messages name it: without its query (the endpoint) and trailing slash."""
    text = str(value)
    return text.split("?", 1)[0].rstrip("/") if is_uri(text) else text


def materialize(value, option: str, endpoint: Optional[str], holder: list) -> Path:
    """A report/check input: a local path as it is; a URI downloaded into a temp dir that `holder` keeps alive."""
    if not is_uri(str(value)):
        return Path(value)
    storage = open_storage(str(value), endpoint, option=option)
    check_readable(storage, option)
    tmp = tempfile.TemporaryDirectory(prefix="ifa-storage-")
    holder.append(tmp)
    name = storage.root.rstrip("/").rsplit("/", 1)[-1] or "sweep"
    return download_sweep(storage, Path(tmp.name) / name)


def scratch_dir(config_hash: str) -> Path:
    """A new local folder for one trial attempt on this node (never shared with another attempt), named after the
    process that owns it. The folders of attempts whose process is gone are removed first (remove_orphaned_scratch)."""
    base = Path(tempfile.gettempdir()) / layout.SCRATCH
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    remove_orphaned_scratch(base)
    trial_dir = base / layout.scratch_name(config_hash, os.getpid(), uuid.uuid4().hex[:8])
    trial_dir.mkdir(mode=0o700)
    return trial_dir


def remove_orphaned_scratch(base: Path) -> list[Path]:
    """Remove the scratch folders under `base` whose owner process no longer runs. An attempt killed with its worker
    (or a node's processes killed while the node lives on) never reaches remove_scratch, and its folder, a
    checkpoint or more, would stay on the node's disk for good. Folders whose owner PID is alive (or reused) and
    folders of another name are left alone. Returns what it removed."""
    import psutil

    def running(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE  # killed, not yet reaped: gone all the same
        except psutil.NoSuchProcess:
            return False
        except psutil.Error:  # exists, but not ours to inspect
            return True

    removed = []
    for child in sorted(base.iterdir()):
        match = layout.SCRATCH_NAME.fullmatch(child.name)
        if match is None or not child.is_dir() or running(int(match.group(1))):
            continue
        remove_scratch(child)
        removed.append(child)
    return removed


def remove_scratch(trial_dir: Path) -> None:
    shutil.rmtree(trial_dir, ignore_errors=True)


# -- the driver's side: its local --out folder mirrors what the sweep needs from the URI -------------------------
def pull_sweep(storage: Storage, sweep_dir: Path, hashes: Iterable[str]) -> None:
    """Bring every trial's records and the measurements from the URI into the local sweep folder."""
    for h in hashes:
        storage.pull(trial_rel(h), layout.trial_dir(sweep_dir, h), layout.RECORD_FILES)
    storage.pull(layout.MEASUREMENTS, Path(sweep_dir) / layout.MEASUREMENTS)


def push_sweep(storage: Storage, sweep_dir: Path) -> None:
    """The results table, the experiment state file and the measurements, from the local sweep folder to the URI."""
    storage.push(sweep_dir, "", layout.TABLE_FILES + (layout.TUNE_STATE,))
    meas = Path(sweep_dir) / layout.MEASUREMENTS
    if meas.is_dir():
        storage.push(meas, layout.MEASUREMENTS, sorted(p.name for p in meas.glob("*.json")))
