"""The one rule for `name` (an experiment's and a sweep's): it becomes part of default paths (runs/<name>-<hash>,
runs/<sweep name>), so it must be one safe file name, never a path. A bad name is refused in our words, naming the
value and the rule (pydantic's pattern text says neither)."""
from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

MAX_NAME = 100
RULE = (f"a name is 1 to {MAX_NAME} letters, digits, '.', '_', '+' or '-', starting with a letter or digit (it "
        f"names the run folder)")
_SAFE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._+-]{{0,{MAX_NAME - 1}}}")


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "...")


def _why(value: str) -> str:
    if not value:
        return "is empty"
    if len(value) > MAX_NAME:
        return f"is {len(value)} characters long"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "holds a control character"
    if "/" in value or "\\" in value:
        return "is a path"
    return "is not a safe file name"


def check_name(value: str) -> str:
    if _SAFE.fullmatch(value):
        return value
    raise PydanticCustomError("unsafe_name", f"{_shown(value)} {_why(value)}; {RULE}".replace("{", "{{")
                              .replace("}", "}}"))


SafeName = Annotated[str, AfterValidator(check_name)]
