"""The measurement conditions of report rows. The wording of one row's phrase ("256x512, batch 1, fp32, 2 CPU
threads") is the measurement layer's (bench.measure.conditions.conditions_text); every report, table and plot takes
it from here."""
from __future__ import annotations

from bench.measure.conditions import conditions_text

__all__ = ["CONDITION_COLUMNS", "conditions_text", "shared_conditions"]

# results.csv columns that describe how a row was measured (older results lack most of them).
CONDITION_COLUMNS = ["measure_input", "measure_batch", "measure_dtype", "measure_threads", "measure_device",
                     "measure_device_name", "measure_node"]


def shared_conditions(rows: list[dict]) -> tuple[str, bool]:
    """(the conditions phrase, whether all rows share it). Differing rows: the phrases joined by " / "."""
    texts = list(dict.fromkeys(t for t in (conditions_text(r) for r in rows) if t))
    return " / ".join(texts), len(texts) <= 1
