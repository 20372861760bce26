"""The one rule for every command that writes: nothing is deleted or overwritten that ifa-bench did not create.

- An output is refused when it is an input, lies inside an input folder, or lies above an input (`overlap`), before
  anything runs. A command whose own output belongs inside its input by design (a sweep's `report/`) names that one
  place in `allowed`.
- An output folder is written only when it is absent, empty, or holds a marker of ours (`claim_dir`): the marker
  file a command drops when it first writes there (`mark`), or the records of a run or sweep it resumes.
- An output file that exists is replaced only when the command recognises it as its own output (`claim_file`).
- Prediction folders never go into a dataset (`overlap` with the dataset root as an input).
Each refusal is a one-line UserError naming the flag and the path, raised before anything is written.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable, Optional

from bench.errors import UserError

REPORT_MARKER = ".ifa-bench-report"
PREDICTIONS_MARKER = ".ifa-bench-predictions"
SWEEP_MARKER = ".ifa-bench-sweep"
# names that a folder of ours may hold besides its marker without making it someone else's: the lock (a crashed
# process leaves it behind) and our temp files (".NAME.XXXX.tmp")
_OURS_ALWAYS = (".ifa-bench.lock",)


def _real(path: Path) -> Path:
    return Path(os.path.realpath(os.path.abspath(os.fspath(path))))


def _within(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def overlap(out: Path, inputs: Iterable[Optional[Path]], flag: str = "--out", *,
            allowed: Iterable[Path] = (), file_output: bool = False) -> None:
    """Refuse `out` equal to an input, inside an input folder, or above an input (symlinks resolved). A new file
    (`file_output`) may go inside an input folder: it is read as nothing there, and claim_file refuses replacing
    one of the input's files; a folder inside an input would be read back as part of it."""
    target = _real(out)
    allow = {_real(a) for a in allowed}
    for given in inputs:
        if given is None or (isinstance(given, str) and "://" in given):
            continue
        source = _real(Path(given))
        if target == source:
            raise UserError(f"{flag} {out}: is the input {given}; write the output elsewhere")
        if _within(source, target):
            raise UserError(f"{flag} {out}: holds the input {given}; write the output elsewhere")
        if _within(target, source) and not file_output and not any(_within(target, a) for a in allow):
            raise UserError(f"{flag} {out}: is inside the input {given}; write the output elsewhere")


def _foreign(folder: Path, ours: Iterable[str]) -> list[str]:
    keep = set(_OURS_ALWAYS) | set(ours)
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def claim_dir(out: Path, marker: str, flag: str = "--out", *, records: Iterable[str] = ()) -> bool:
    """Check that `out` may be written: absent, empty (but for our lock), holding `marker`, or holding one of
    `records` (a run or sweep of ours that the command resumes). Returns whether the folder already was ours."""
    out = Path(out)
    if out.is_symlink() and not out.exists():
        raise UserError(f"{flag} {out}: is a dangling symbolic link; choose a folder")
    if not out.exists():
        return False
    if not out.is_dir():
        raise UserError(f"{flag} {out}: exists and is not a directory")
    if (out / marker).is_file() or any((out / r).exists() for r in records):
        return True
    try:
        foreign = _foreign(out, ())
    except OSError as exc:
        raise UserError(f"{flag} {out}: cannot list it ({exc.strerror})") from None
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise UserError(f"{flag} {out}: holds files ifa-bench did not write ({foreign[0]!r}{more}); choose an empty "
                        f"or new folder")
    return False


def mark(folder: Path, marker: str, text: str = "") -> None:
    """Drop our marker into `folder` (made if missing) so that a later run may write there again."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / marker
    if not path.exists():
        path.write_text(text or "written by ifa-bench; it may replace what is in this folder\n")


def marker_text(path: Path) -> Optional[str]:
    try:
        return Path(path).read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def claim_file(out: Path, flag: str, is_ours: Callable[[Path], bool], what: str) -> None:
    """Check that the file `out` may be written: absent, or an earlier output of this command (`is_ours`)."""
    out = Path(out)
    if out.is_symlink():
        raise UserError(f"{flag} {out}: is a symbolic link; give a plain file name")
    if not out.exists():
        return
    if out.is_dir():
        raise UserError(f"{flag} {out}: is a directory; give a file name")
    try:
        ours = is_ours(out)
    except (OSError, ValueError, UnicodeDecodeError):
        ours = False
    if not ours:
        raise UserError(f"{flag} {out}: exists and is not {what}; refusing to overwrite it (remove it or choose "
                        f"another name)")


def first_line(path: Path, limit: int = 65536) -> str:
    with open(path, "rb") as f:
        return f.read(limit).split(b"\n", 1)[0].decode("utf-8")


class StagedFolder:
    """A private folder beside `out` that receives a command's files; on success they move into `out` with our
    `marker`, on failure it is removed with any parent folders it made, so an error leaves nothing behind."""

    def __init__(self, out: Path, marker: str):
        self.out, self.marker = Path(out), marker
        self.made = next((p for p in [self.out, *self.out.parents][::-1] if not p.exists()), None)

    def __enter__(self) -> "StagedFolder":
        import tempfile

        try:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", dir=self.out.parent))
        except OSError as exc:
            raise UserError(f"{self.out}: cannot write ({exc.strerror})") from None
        return self

    def __exit__(self, kind, exc, tb) -> None:
        import os
        import shutil

        if kind is None:
            mark(self.tmp, self.marker)
            for path in sorted(p for p in self.tmp.rglob("*") if not p.is_dir()):
                target = self.out / path.relative_to(self.tmp)
                target.parent.mkdir(parents=True, exist_ok=True)  # with the mode mkdir gives (tmp is 0700)
                os.replace(path, target)
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.made is not None and self.made != self.out:  # parents this run made, and no others
            for d in [self.out.parent, *self.out.parent.parents]:
                try:
                    d.rmdir()
                except OSError:
                    break
                if d == self.made:
                    break
