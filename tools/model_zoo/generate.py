"""docs/generated/model_zoo.md: one row per published row (reports/published.yaml), the recipe that reproduces it, and the
parameters and GMACs of that model at the evaluation size.

    python -m tools.model_zoo.generate [--out docs/generated/model_zoo.md] [--cache runs/zoo_cache.json]

Counting: parameters of the inference model (backbone + head; the auxiliary head is training-only). MACs of one
eval forward at batch 1 with the project's fvcore counting (bench.measure.macs.count_macs, what `ifa-bench measure`
reports; docs/measurement.md has its conventions). fvcore traces a real forward, so a count at 1024x2048 takes
minutes on a CPU: counts are cached by model and size, and saved as they are made.
Rows without a recipe are still counted, from their match keys with the head's defaults, and say so.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import torch

from bench.files.atomic import write_text
from reports.regression.published import load_published
from tools.model_zoo.recipes import recipe_for, recipe_trials, why_no_recipe

NUM_CLASSES = {"cityscapes": 19, "ade20k": 150, "pascal_context_59": 59, "pascal_context_60": 60}
# The size the sources evaluate at, for rows without a recipe (mmseg: Cityscapes whole 1024x2048, ADE20K short side
# 512, Pascal Context short side 520 / 480 crops); a recipe's own measure.input_size wins.
EVAL_SIZE = {"cityscapes": (1024, 2048), "ade20k": (512, 512), "pascal_context_59": (480, 480),
             "pascal_context_60": (480, 480)}
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "docs" / "generated" / "model_zoo.md"


def _model_config(row, recipe):
    from bench.config.model import ModelConfig

    if recipe is not None:
        cfg = recipe["config"].model
        return cfg.model_copy(update={"backbone": cfg.backbone.model_copy(update={"pretrained": None})})
    m = row["match"]
    backbone = {"name": m["backbone"]}
    if m.get("stem"):
        backbone.update(stem=m["stem"], output_stride=m["output_stride"])
    return ModelConfig(num_classes=NUM_CLASSES[m["dataset"]], backbone=backbone, head={"name": m["head"]})


def _inference_config(model_cfg):
    return model_cfg.model_copy(update={"aux_head": model_cfg.aux_head.model_copy(update={"enabled": False})})


def count(model_cfg, size) -> tuple[int, float]:
    """(inference parameters, GMACs of one eval forward at `size`), as `ifa-bench measure` counts them."""
    from bench.measure.macs import count_macs
    from bench.models.build import build_segmentor

    model = build_segmentor(_inference_config(model_cfg)).eval()
    params = sum(p.numel() for p in model.parameters())
    return params, count_macs(model, torch.zeros(1, 3, *size)).gmacs


def inference_params(model_cfg) -> int:
    from bench.models.build import build_segmentor

    with torch.device("meta"):
        return sum(p.numel() for p in build_segmentor(_inference_config(model_cfg)).parameters())


def _cache_key(cfg, size) -> str:
    # "fvcore": counts made by an earlier counter (FlopCounterMode) are not reused
    text = "fvcore" + _inference_config(cfg).model_dump_json() + str(tuple(size))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_rows(cache_path=None, real=True) -> list[dict]:
    """One dict per published row. Missing counts are made smallest evaluation size first (so an interrupted run
    has filled in as many rows as it could) and cached as they are made; with real=False nothing new is counted
    and rows without a cached count say "not counted"."""
    cache = json.loads(Path(cache_path).read_text()) if cache_path and Path(cache_path).is_file() else {}
    trials = recipe_trials()
    planned = []
    for row in load_published():
        recipe = recipe_for(row, trials)
        cfg = _model_config(row, recipe)
        size = tuple(recipe["config"].measure.input_size) if recipe else EVAL_SIZE[row["match"]["dataset"]]
        planned.append((row, recipe, cfg, size, _cache_key(cfg, size)))
    todo = {key: (cfg, size) for _, _, cfg, size, key in planned if key not in cache}
    for key, (cfg, size) in sorted(todo.items(), key=lambda item: item[1][1][0] * item[1][1][1]) if real else ():
        cache[key] = count(cfg, size)
        if cache_path:  # saved as it goes: real-tensor counts are slow
            Path(cache_path).parent.mkdir(parents=True, exist_ok=True)
            write_text(Path(cache_path), json.dumps(cache, indent=1))
    out = []
    for row, recipe, cfg, size, key in planned:
        params, gmacs = cache.get(key, (None, None))
        if params is None:  # not counted: parameters still are, on meta tensors
            params = inference_params(cfg)
        out.append({**row, "recipe": f"{recipe['recipe']} ({recipe['trial_id']})" if recipe else "",
                    "no_recipe": "" if recipe else why_no_recipe(row, trials), "how": how_matched(row, recipe, trials),
                    "size": size, "params": params, "gmacs": gmacs})
    return out


def _num(value) -> str:
    return "-" if value is None or value != value else f"{value:g}"


def how_matched(row, recipe, trials) -> str:
    """One line per published row: the keys `check` matches it on, or why no recipe reproduces it."""
    if recipe is None:
        return "no match: " + why_no_recipe(row, trials)
    m = row["match"]
    stated = [f"{k} {m[k]}" for k in ("head", "backbone", "stem", "output_stride", "iterations", "crop",
                                       "batch_size") if m.get(k) is not None]
    unstated = [k for k in ("stem", "output_stride", "batch_size") if m.get(k) is None]
    text = "on " + ", ".join(stated)
    if unstated:
        text += "; any " + ", ".join(unstated) + " (not stated by the source)"
    if m.get("assumed"):
        text += f"; assumed: {m['assumed']}"
    return text


def render(rows) -> str:
    lines = [
        "# Model zoo",
        "",
        "Generated by `python -m tools.model_zoo.generate` from reports/published.yaml and the recipes in experiments/; do not",
        "edit by hand. One row per published row. *Recipe*: the experiment file and sweep trial that `ifa-bench check`",
        "matches to the row; *How check matches it*: the match keys it compares (dataset too), or why no recipe",
        "reproduces the row. *Params*: the inference model (backbone + head, no auxiliary head). *GMACs*: one eval",
        "forward at batch 1 and *Eval size*, counted as `ifa-bench measure` counts (fvcore with the project's op",
        "handles, bench/measure/macs.py: the final resize to the input size and interpolations count; see",
        "docs/measurement.md). Rows without a recipe are counted from their match keys with the head's defaults.",
        "",
        "| # | Dataset | Method | Backbone | Iters | Crop | mIoU ss | mIoU ms+flip | Kind | Recipe | Eval size | "
        "Params (M) | GMACs | How check matches it |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(rows):
        lines.append(
            f"| {i} | {r['dataset']} | {r['method']} | {r['backbone']} | {_num(r.get('iterations'))} | "
            f"{r['match'].get('crop') or '-'} | {_num(r.get('miou_ss'))} | {_num(r.get('miou_ms_flip'))} | "
            f"{r['kind']} | {r['recipe'] or '-'} | {r['size'][0]}x{r['size'][1]} | "
            f"{'-' if r['params'] is None else format(r['params'] / 1e6, '.2f')} | "
            f"{'not counted' if r['gmacs'] is None else format(r['gmacs'], '.1f')} | "
            f"{r.get('how') or r['no_recipe'] or ''} |")
    covered = sum(1 for r in rows if r["recipe"])
    lines += ["", f"{covered} of {len(rows)} published rows have a recipe."]
    if any(r["gmacs"] is None for r in rows):
        lines += ["", "*not counted*: no fvcore count of that model at that size was in the cache when the page was "
                  "generated (`--skip-real`, or a run stopped early; counts are made smallest size first). Run "
                  "`python -m tools.model_zoo.generate` to fill them in."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.model_zoo.generate", description="Write docs/generated/model_zoo.md.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--cache", type=Path, default=Path("runs/zoo_cache.json"),
                        help="counts by model config and size, reused across runs")
    parser.add_argument("--skip-real", action="store_true",
                        help="count nothing new: GMACs from the cache only, other cells say 'not counted'")
    args = parser.parse_args(argv)
    write_text(args.out, render(build_rows(args.cache, real=not args.skip_real)))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
