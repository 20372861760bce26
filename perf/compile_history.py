"""Does a compiled model's latency depend on what the process compiled before it?

    python -m perf.compile_history [--heads fpn,ifa] [--rounds 2] [--out DIR]

dynamo keeps its caches per code object, so a second compiled model of the same classes (the same ResNet, the same
head) at other shapes is compiled with shape-dynamic graphs (torch's automatic dynamic shapes), where a fresh
process compiles static ones. The measurement phase times compiled models in its own process, one after another
(bench/measure/model.py), so this harness times the same model (resnet18, 19 classes, `model.compile: true`, batch
1, 128x256, one thread, in-process rounds of bench.measure) in a fresh process `alone` and `after` another compiled
model of the same classes at 96x160, each case in its own process, the cases alternating over --rounds.
Writes DIR/compile_history.json atomically: every record (with its conditions) and the after/alone ratio per head.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZE, BEFORE_SIZE = (128, 256), (96, 160)


def _case(head: str, case: str) -> dict:
    """Run in a child process: the record of the model at SIZE, measured alone or after one at BEFORE_SIZE."""
    import torch

    torch.set_num_threads(1)
    from bench.config.model import ModelConfig
    from bench.host.compiled import maybe_compile
    from bench.measure.model import ModelToMeasure, measure_models
    from bench.models.build import build_segmentor

    def spec(size):
        cfg = ModelConfig.model_validate({"backbone": {"name": "resnet18"}, "head": {"name": head},
                                          "num_classes": 19, "compile": True})
        torch.manual_seed(0)
        return ModelToMeasure(maybe_compile(build_segmentor(cfg), cfg), size, warmup=3, runs=20, memory=False,
                              rounds=3)

    specs = ([spec(BEFORE_SIZE)] if case == "after" else []) + [spec(SIZE)]
    record = measure_models(specs)[-1]
    return {"head": head, "case": case, **record}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--heads", default="fpn,ifa")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "compile_history")
    ap.add_argument("--child", nargs=2, metavar=("HEAD", "CASE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    from bench.config.model import head_names

    heads = args.heads.split(",")
    if not set(heads) <= set(head_names()):
        ap.error(f"--heads {args.heads!r}: names from {', '.join(head_names())} expected")
    if args.child:
        print(json.dumps(_case(*args.child), default=str))
        return 0
    records = []
    for r in range(args.rounds):
        for head in heads:
            for case in (("alone", "after") if r % 2 == 0 else ("after", "alone")):
                out = subprocess.run([sys.executable, "-m", "perf.compile_history", "--child", head, case],
                                     cwd=ROOT, capture_output=True, text=True, check=True).stdout
                rec = json.loads(out.strip().splitlines()[-1])
                records.append(rec)
                print(f"round {r + 1} {head} {case}: {rec['latency_ms_median']:.2f} ms", flush=True)
    ratios = {}
    for head in heads:
        med = {case: statistics.median(x["latency_ms_median"] for x in records if x["head"] == head and x["case"] == case)
               for case in ("alone", "after")}
        ratios[head] = med["after"] / med["alone"]
        print(f"{head}: after/alone {ratios[head]:.3f}")
    from bench.files.atomic import write_json
    from bench.results.provenance import from_checkout

    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "compile_history.json", {**(from_checkout(ROOT) or {}), "size": list(SIZE),
                                                   "before_size": list(BEFORE_SIZE),
                                                   "ratios_after_over_alone": ratios, "records": records})
    return 0


if __name__ == "__main__":
    sys.exit(main())
