"""Errors that mean "the user's input is wrong": the CLI prints them as one line and exits 2."""


class UserError(Exception):
    """Bad input (file, key, value). The message must name the file or key and what is wrong."""


EXIT_USER_ERROR = 2


def os_error_line(exc: OSError) -> str:
    """`PATH: OS reason` of a file-system error (a write under a regular file, a read-only or full file system)."""
    reason = exc.strerror or (str(exc.args[-1]) if exc.args else type(exc).__name__)
    return f"{exc.filename}: {reason}" + (f" (-> {exc.filename2})" if exc.filename2 else "")
