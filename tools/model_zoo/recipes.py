"""The recipes (experiments/*.yaml, each sweep trial) that reproduce published rows, by the check's match keys."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from reports.regression.check import MODEL_COLUMNS, _same

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def recipe_trials(directory: Path = EXPERIMENTS) -> list[dict]:
    """One dict per sweep trial of every experiment file: `recipe` (file stem), `trial_id`, `config`, and the
    model columns the check matches on."""
    from bench.sweep.spec.trials import load_sweep

    out = []
    for path in sorted(p for p in Path(directory).rglob("*.yaml") if p.parent.name != "base"):
        for trial in load_sweep(path).trials:
            cfg = trial.config
            b = cfg.model.backbone
            out.append({"recipe": path.stem, "trial_id": trial.trial_id, "config": cfg,
                        "dataset": cfg.data.dataset, "head": cfg.model.head.name, "backbone": b.name,
                        "stem": b.stem, "output_stride": b.output_stride, "iterations": cfg.train.iterations,
                        "crop": "x".join(str(v) for v in cfg.data.crop_size), "batch_size": cfg.train.batch_size})
    return out


def recipe_for(published_row: dict, trials: list[dict]) -> Optional[dict]:
    """The first recipe trial whose model columns agree with the published row's match keys, or None."""
    match = published_row["match"]
    for t in trials:
        if all(_same(match.get(c), t[c]) for c in MODEL_COLUMNS):
            return t
    return None


def why_no_recipe(published_row: dict, trials: list[dict]) -> str:
    """Why no recipe reproduces a published row: the match keys that no recipe trial of the same dataset, head
    and backbone agrees with, or that none trains that combination at all."""
    match = published_row["match"]
    if match.get("unmatchable"):
        return str(match["unmatchable"])
    same_model = [t for t in trials if all(_same(match.get(c), t[c]) for c in ("dataset", "head", "backbone",
                                                                                 "stem", "output_stride"))]
    model = (f"{match.get('head')} on {match.get('backbone')} (stem {match.get('stem')}, OS "
             f"{match.get('output_stride')}) for {match.get('dataset')}")
    if not same_model:
        return f"no recipe in experiments/ trains {model}"
    keys = [c for c in ("iterations", "crop", "batch_size") if not any(_same(match.get(c), t[c]) for t in same_model)]
    wanted = ", ".join(f"{c} {match.get(c)}" for c in keys) or "this schedule"
    return f"recipes train {model}, but none with {wanted}"
