"""Graph breaks of torch.compile in each head's training forward: `python -m perf.graph_breaks [--size 128 256]`.

torch._dynamo.explain on the segmentor (CPU-sized demo widths, batch 2, train mode) and on IFA's eval forward (under
inference_mode, as evaluation runs it); prints, per model, the number of graphs and breaks and each break's reason
and source line (deduplicated). Each model is explained twice: `first` is its first call, `warm` a call after one
eager call at the same shape. Only `warm` matters for speed: IFA builds its per-shape plans (host work with
data-dependent shapes: torch.unique, .item()) on the first call at a shape and reuses them, so a compiled model
recompiles once after that call and runs the warm graphs from then on. Writes DIR/graph_breaks.json with --out.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import torch

from perf.train_throughput import CPU_SMALL, HEADS


def _explain_call(model, x) -> dict:
    torch._dynamo.reset()
    out = torch._dynamo.explain(model)(x)
    reasons = {}
    for b in out.break_reasons:
        frame = b.user_stack[-1] if b.user_stack else None
        where = f"{Path(frame.filename).name}:{frame.lineno} ({frame.name})" if frame else "?"
        key = (str(b.reason).splitlines()[0][:200], where)
        reasons[key] = reasons.get(key, 0) + 1
    return {"graphs": out.graph_count, "breaks": out.graph_break_count,
            "reasons": [{"reason": r, "where": w, "count": n} for (r, w), n in reasons.items()]}


def explain(head_key: str, size, train: bool) -> dict:
    from bench.config.model import ModelConfig
    from bench.data.classes import SYNTHETIC_CLASSES
    from bench.models import build_segmentor

    head = {**HEADS[head_key], **CPU_SMALL["heads"].get(HEADS[head_key]["name"], {})}
    cfg = ModelConfig.model_validate({"num_classes": len(SYNTHETIC_CLASSES), "backbone": CPU_SMALL["backbone"],
                                      "head": head, "aux_head": CPU_SMALL["aux"]})
    torch.manual_seed(0)
    model = build_segmentor(cfg).train(train)
    x = torch.randn(2, 3, *size)
    with contextlib.nullcontext() if train else torch.inference_mode():
        first = _explain_call(model, x)
        model(x)  # eager: IFA's plans for this shape exist from here on
        warm = _explain_call(model, x)
    return {"model": head_key, "mode": "train" if train else "eval", **warm, "first_call": first}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m perf.graph_breaks", description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, nargs=2, default=[128, 256])
    ap.add_argument("--heads", default=",".join(HEADS))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    results = []
    for h in args.heads.split(","):
        for train in (True, False) if h.startswith("ifa") else (True,):
            r = explain(h, args.size, train)
            results.append(r)
            for label, e in (("warm", r), ("first call", r["first_call"])):
                print(f"[graph-breaks] {h} {r['mode']} {label}: {e['graphs']} graphs, {e['breaks']} breaks", flush=True)
                for x in e["reasons"]:
                    print(f"    {x['count']}x {x['where']}: {x['reason']}")
    if args.out is not None:
        from bench.files.atomic import write_json

        print(f"[graph-breaks] wrote {write_json(args.out / 'graph_breaks.json', {'size': args.size, 'results': results})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
