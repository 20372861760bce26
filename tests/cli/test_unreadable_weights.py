"""A weights file that torch.load(weights_only=True) refuses: every reader says why in a few words, on one line, and
never relays torch's advice to load it with weights_only=False."""
import collections
from pathlib import Path

import pytest
import torch

from bench.convert.loading import load_checkpoint_state
from bench.engine.checkpoint import load_checkpoint
from bench.errors import UserError
from bench.models.pretrained import read_state_dict


def _files(folder: Path) -> dict[str, Path]:
    tensors = {"w": torch.ones(2)}
    torch.save(tensors, folder / "good.pt")
    # a global outside the weights-only allowlist (an OrderedDict subclass defined here, saved as its class)
    torch.save({"model": _Odd(tensors)}, folder / "object.pt")
    data = (folder / "good.pt").read_bytes()
    files = {"object": folder / "object.pt", "truncated": folder / "truncated.pt", "empty": folder / "empty.pt",
             "text": folder / "text.pt"}
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["empty"].write_bytes(b"")
    files["text"].write_text("name: not a checkpoint\n")
    return files


class _Odd(collections.OrderedDict):
    pass


REASONS = {
    "object": "holds a Python object, tests.cli.test_unreadable_weights._Odd, that a weights-only read refuses",
    "truncated": "truncated or corrupt: not a complete PyTorch zip file",
    "empty": "empty or truncated file",
    "text": "not a PyTorch checkpoint: its data is not a weights-only pickle",
}


@pytest.mark.parametrize("reader", [load_checkpoint_state, load_checkpoint, read_state_dict])
def test_every_reader_says_why_in_one_line(tmp_path, reader):
    for kind, path in _files(tmp_path).items():
        with pytest.raises(UserError) as info:
            reader(path)
        message = str(info.value)
        assert message.startswith(str(path)) and REASONS[kind] in message, (kind, message)
        assert "\n" not in message and "\x1b" not in message and "weights_only" not in message, (kind, message)
