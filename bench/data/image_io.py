"""Reading images and label maps with errors that name the file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from bench.errors import UserError

_LABEL_MODES_8BIT = {"L", "P"}
_LABEL_MODES_WIDE = {"I", "I;16", "I;16B", "I;16L"}


def _open(path: Path, what: str) -> Image.Image:
    try:
        img = Image.open(path)
        img.load()  # decode now, so truncated or corrupt data fails here and not later
        return img
    except FileNotFoundError:
        raise UserError(f"{path}: {what} file is missing") from None
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, zlib.error, ...
        raise UserError(f"{path}: corrupt or unreadable {what} ({type(exc).__name__}: {exc})") from None


def read_image(path) -> np.ndarray:
    """RGB uint8 HxWx3 (greyscale/RGBA/palette images are converted)."""
    img = _open(Path(path), "image")
    if img.mode in _LABEL_MODES_WIDE:  # 16-bit greyscale: PIL's convert("RGB") clips it to white, so scale it
        arr = np.asarray(img)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise UserError(f"{path}: image values {int(arr.min())}..{int(arr.max())} exceed 16 bits (mode "
                            f"{img.mode}); expected an 8- or 16-bit image")
        grey = np.round(arr.astype(np.float64) / 257.0).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if img.mode == "F":
        raise UserError(f"{path}: floating-point image (mode F); expected an 8- or 16-bit image")
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8).copy()


def read_label(path) -> np.ndarray:
    """The stored label values, uint8 HxW. Colour images are refused (they are visualisations, not ids)."""
    path = Path(path)
    img = _open(path, "label")
    if img.mode in _LABEL_MODES_8BIT:
        return np.asarray(img, dtype=np.uint8).copy()
    if img.mode == "1":
        return np.asarray(img).astype(np.uint8)
    if img.mode in _LABEL_MODES_WIDE:
        arr = np.asarray(img)
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise UserError(f"{path}: label values {int(arr.min())}..{int(arr.max())} do not fit 8 bits "
                            f"(expected ids 0..255 in a single-channel PNG)")
        return arr.astype(np.uint8)
    raise UserError(f"{path}: label must be a single-channel (L or P mode) PNG of ids, got mode {img.mode} "
                    f"(a colour visualisation?)")

