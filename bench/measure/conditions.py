"""The measurement conditions of a results row as one short phrase, for table captions and plot axis titles:

    "1024x2048, batch 1, fp32, 2 CPU threads"      (CPU: the intra-op thread count decides latency)
    "1024x2048, batch 1, fp32, NVIDIA H200"        (GPU: the GPU model)

Rows written before the measure_* columns existed fall back to their device/threads/dtype columns. Parts that were
not recorded are left out; a row with none of them gives ""."""
from __future__ import annotations

import math
from typing import Any

_DTYPE_SHORT = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "float64": "fp64"}


def _known(v: Any) -> bool:
    if v is None:
        return False
    if isinstance(v, float) and math.isnan(v):
        return False
    return str(v).strip() not in ("", "nan", "None", "<NA>")


def _first(row: dict, *keys: str) -> Any:
    for k in keys:
        if _known(row.get(k)):
            return row[k]
    return None


def _int(v: Any) -> int | None:
    try:
        return int(float(v))
    except (TypeError, ValueError):
        return None


def conditions_text(row: dict) -> str:
    parts = []
    size = _first(row, "measure_input")
    if size is not None:
        parts.append(str(size))
    batch = _int(_first(row, "measure_batch"))
    if batch is not None:
        parts.append(f"batch {batch}")
    dtype = _first(row, "measure_dtype", "dtype")
    if dtype is not None:
        name = str(dtype).removeprefix("torch.")
        parts.append(_DTYPE_SHORT.get(name, name))
    device = str(_first(row, "measure_device", "device") or "")
    if device.startswith("cuda"):
        name = _first(row, "measure_device_name", "device_name")
        parts.append(str(name) if name is not None else "GPU")
    else:
        threads = _int(_first(row, "measure_threads", "threads"))
        if threads is not None:
            parts.append(f"{threads} CPU thread{'s' if threads != 1 else ''}")
        elif device:
            parts.append("CPU")
    return ", ".join(parts)
