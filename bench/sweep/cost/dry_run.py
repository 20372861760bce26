"""`--dry-run`: the expanded trial table, with what is already done in the sweep folder. Starts nothing."""
from __future__ import annotations

from pathlib import Path

from bench.results.text_table import plural, text_table
from bench.sweep.folder import layout, records
from bench.sweep.spec.trials import NAMED_AXES, Sweep


def trial_table(sweep: Sweep, sweep_dir: Path) -> str:
    extra = sweep.extra_axis_keys
    headers = ["#", "trial_id", "config_hash", "dataset", "backbone", "head", "seed", *extra, "resources", "state"]
    rows = []
    for i, t in enumerate(sweep.trials):
        r = t.resources
        res = f"{r.cpus:g} CPU" + (f" {r.gpus:g} GPU" if r.gpus else "") + (f" x {r.workers} workers" if r.workers > 1 else "")
        state = records.trial_state(layout.trial_dir(Path(sweep_dir), t.config_hash))
        cfg = t.config
        named = {
            "dataset": t.axis_values.get("dataset", cfg.data.dataset),
            "backbone": t.axis_values.get("backbone", cfg.model.backbone.name),
            "head": t.axis_values.get("head", cfg.model.head.name),
            "seed": cfg.seed,
        }
        extras = [("-" if t.extra_axes.get(k) == "" else str(t.extra_axes.get(k))) for k in extra]
        rows.append([str(i), t.trial_id, t.config_hash, *(str(named[a]) for a in NAMED_AXES), *extras, res, state])
    numeric = [h in ("#", "seed") for h in headers]  # hashes and ids stay left-aligned text
    lines = [text_table(headers, rows, numeric=numeric)]
    n_done = sum(r[-1] == "done" for r in rows)
    note = f"; {sweep.collapsed} identical combinations collapsed" if sweep.collapsed else ""
    lines.append(
        f"{plural(len(rows), 'trial')} ({n_done} already done in {sweep_dir}){note}; max_failures={sweep.section.max_failures}"
    )
    if sweep.protocols:  # `evaluate:`: each protocol a Ray task per trial it applies to
        n = sum(p.applies_to(t.config) for t in sweep.trials for p in sweep.protocols)
        lines.append(f"evaluate: {', '.join(p.name for p in sweep.protocols)} ({plural(n, 'evaluation')}, one row each)")
    return "\n".join(lines)
