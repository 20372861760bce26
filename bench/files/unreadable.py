"""Why torch.load(weights_only=True) refused a file, in a few words, for the one-line errors of every command that
reads weights (checkpoints, pretrained backbones, foreign checkpoints)."""
from __future__ import annotations

import re

from bench.errors import one_line, plain

_GLOBAL = re.compile(r"Unsupported global: GLOBAL (\S+)")


def unreadable_reason(exc: BaseException) -> str:
    """torch's own first line is a paragraph advising weights_only=False, which this suite never does."""
    text = plain(str(exc))
    found = _GLOBAL.search(text)
    if found:
        return (f"it holds a Python object, {found.group(1)}, that a weights-only read refuses; save the "
                f"state_dict instead")
    if "Unsupported operand" in text:
        return "not a PyTorch checkpoint: its data is not a weights-only pickle"
    if "central directory" in text or "zip archive" in text:
        return "truncated or corrupt: not a complete PyTorch zip file"
    if isinstance(exc, EOFError):
        return "empty or truncated file"
    return one_line(exc, 200)
