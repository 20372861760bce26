"""The measurement conditions a number was taken under, as one phrase: "256x512, batch 1, fp32, 2 CPU threads".

The measurement layer owns the wording (bench.measure.conditions.conditions_text, issue 9); until it exists,
`_conditions_text` below stands in. Every report, table and plot calls `conditions_text` from here only.
"""
from __future__ import annotations

import math

# results.csv columns that describe how a row was measured (older results lack most of them).
CONDITION_COLUMNS = ["measure_input", "measure_batch", "measure_dtype", "measure_threads", "measure_device",
                     "measure_device_name", "measure_node"]

_DTYPES = {"float32": "fp32", "torch.float32": "fp32", "float16": "fp16", "torch.float16": "fp16",
           "bfloat16": "bf16", "torch.bfloat16": "bf16"}


def _present(value) -> bool:
    return value is not None and value != "" and not (isinstance(value, float) and math.isnan(value))


def _int_text(value) -> str:
    return str(int(float(value))) if _present(value) else ""


def _conditions_text(row: dict) -> str:
    """Input size, batch, dtype, and the CPU threads or the GPU model, from whichever columns the row has.
    Falls back on the trial's environment columns (device, dtype, threads) for results written before the
    measurement columns existed."""
    parts = []
    if _present(row.get("measure_input")):
        parts.append(str(row["measure_input"]))
    if _present(row.get("measure_batch")):
        parts.append(f"batch {_int_text(row['measure_batch'])}")
    dtype = row.get("measure_dtype") if _present(row.get("measure_dtype")) else row.get("dtype")
    if _present(dtype):
        parts.append(_DTYPES.get(str(dtype), str(dtype)))
    device = row.get("measure_device") if _present(row.get("measure_device")) else row.get("device")
    if str(device).startswith("cuda"):
        name = row.get("measure_device_name") if _present(row.get("measure_device_name")) else row.get("device_name")
        parts.append(str(name) if _present(name) else "GPU")
    else:
        threads = row.get("measure_threads") if _present(row.get("measure_threads")) else row.get("threads")
        if _present(threads):
            n = _int_text(threads)
            parts.append(f"{n} CPU thread{'s' if n != '1' else ''}")
        elif _present(device):
            parts.append(str(device))
    return ", ".join(parts)


try:  # the measurement layer's wording, once it is there (the i9 branches add it)
    from bench.measure.conditions import conditions_text  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - depends on the merge
    conditions_text = _conditions_text


def shared_conditions(rows: list[dict]) -> tuple[str, bool]:
    """(the conditions phrase, whether all rows share it). Differing rows: the phrases joined by " / "."""
    texts = list(dict.fromkeys(t for t in (conditions_text(r) for r in rows) if t))
    return " / ".join(texts), len(texts) <= 1
