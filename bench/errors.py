"""Errors that mean "the user's input is wrong": the CLI prints them as one line and exits 2; and any exception as
one line of text for such messages."""
import re

_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


class UserError(Exception):
    """Bad input (file, key, value). The message must name the file or key and what is wrong."""


EXIT_USER_ERROR = 2


def os_error_line(exc: OSError) -> str:
    """`PATH: OS reason` of a file-system error (a write under a regular file, a read-only or full file system)."""
    reason = exc.strerror or (str(exc.args[-1]) if exc.args else type(exc).__name__)
    return f"{exc.filename}: {reason}" + (f" (-> {exc.filename2})" if exc.filename2 else "")


def plain(text: str) -> str:
    """`text` without terminal colour codes (torch and Ray colour some of their messages)."""
    return _COLOUR.sub("", text)


def one_line(exc: BaseException, limit: int = 300) -> str:
    """The first non-blank line of the exception's message (colours and surrounding space removed), or its type name
    when the message is empty; at most `limit` characters."""
    first = next((line.strip() for line in plain(str(exc)).splitlines() if line.strip()), type(exc).__name__)
    return first[:limit]


def typed_line(exc: BaseException, limit: int = 500) -> str:
    """`Type: first line` of an exception; when its message wraps another traceback (Ray Train, Ray tasks), the
    root cause's line is added after ` ... `. At most `limit` characters."""
    lines = [ln.strip() for ln in plain(f"{type(exc).__name__}: {exc}").splitlines() if ln.strip()]
    tail = [ln for ln in lines[1:] if not ln.startswith(("...", "File ", "^", "[", "Traceback"))]
    text = lines[0] + (f" ... {tail[-1]}" if tail and tail[-1] != lines[0] else "")
    return text[:limit]
