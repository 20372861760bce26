"""Kill rate per module of the last `make mutation` (tools/mutation_run.py's mutation-results/), and the survivors.

Detected = killed, timeout, segfault or caught by type check. The rate is detected / in-scope mutants: a mutant that
no selected test reaches ("no tests") counts as surviving; "of run" leaves out mutants not checked (a module
interrupted by its time budget). Only the mutants of each module's checked functions count (MODULES in
tools/mutation_run.py). `--min P` exits 1 when the overall rate is below P percent.
Usage: .venv/bin/python tools/mutation_summary.py [--min 90] [--results mutation-results]
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from tools.mutation_cosmic import CosmicModule
from tools.mutation_run import DETECTED, MODULES, load_meta


def load(results: Path) -> dict[str, tuple[dict, dict[str, str]]]:
    """{module name: (run.json, {in-scope mutant: status})}, in tools/mutation_run.py's module order."""
    out = {}
    for name, module in MODULES.items():
        run_file = results / name / "run.json"
        if not run_file.exists():
            continue
        if isinstance(module, CosmicModule):  # tools/mutation_cosmic.py writes the statuses themselves
            meta = results / name / "statuses.json"
            statuses = json.loads(meta.read_text()) if meta.exists() else {}
        else:
            meta = results / name / (Path(module.path).name + ".meta")
            statuses = load_meta(meta) if meta.exists() else {}
        out[name] = (json.loads(run_file.read_text()), {k: s for k, s in statuses.items() if module.in_scope(k)})
    return out


def markdown(by_module) -> str:
    rows = ["| module | mutants | killed | timeout | survived | no tests | not run | rate | time |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    sums = Counter()
    for name, (run, statuses) in by_module.items():
        c = Counter(statuses.values())
        n, d = len(statuses), sum(c[s] for s in DETECTED)
        sums.update(n=n, d=d, killed=c["killed"], timeout=c["timeout"], survived=c["survived"],
                    no_tests=c["no tests"], not_run=c["not checked"], s=run["elapsed_s"])
        rate = f"{100 * d / n:.1f}%" if n else "-"
        note = "" if run["finished"] else " (budget)"
        rows.append(f"| {name} | {n} | {c['killed']} | {c['timeout']} | {c['survived']} | {c['no tests']} | "
                    f"{c['not checked']} | {rate} | {run['elapsed_s']:.0f} s{note} |")
    rate = f"{100 * sums['d'] / sums['n']:.1f}%" if sums["n"] else "-"
    rows.append(f"| **all** | {sums['n']} | {sums['killed']} | {sums['timeout']} | {sums['survived']} | "
                f"{sums['no_tests']} | {sums['not_run']} | **{rate}** | {sums['s']:.0f} s |")
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path("mutation-results"))
    ap.add_argument("--min", type=float, default=None, help="fail (exit 1) below this overall kill rate, percent")
    ap.add_argument("--markdown", action="store_true", help="the per-module table as markdown (docs/contributing/testing.md)")
    args = ap.parse_args(argv)
    by_module = load(args.results)
    if not by_module:
        print(f"no results under {args.results}/ (run `make mutation`)", file=sys.stderr)
        return 2
    if args.markdown:
        print(markdown(by_module))
        return 0
    total, detected, checked, seconds, survivors = 0, 0, 0, 0.0, []
    print(f"{'module':12} {'file':27} {'mutants':>7} {'killed':>6} {'timeout':>7} {'survived':>8} {'no tests':>8} "
          f"{'not run':>7} {'rate':>6} {'time':>6}")
    for name, (run, statuses) in by_module.items():
        counts = Counter(statuses.values())
        n, d = len(statuses), sum(counts[s] for s in DETECTED)
        total, detected, seconds = total + n, detected + d, seconds + run["elapsed_s"]
        survivors += [(name, m, s) for m, s in sorted(statuses.items()) if s not in DETECTED]
        checked += n - counts["not checked"]
        rate = f"{100 * d / n:.1f}%" if n else "-"
        note = "" if run["finished"] else " (budget reached)"
        print(f"{name:12} {run['path']:27} {n:7d} {counts['killed']:6d} {counts['timeout']:7d} "
              f"{counts['survived']:8d} {counts['no tests']:8d} {counts['not checked']:7d} {rate:>6} "
              f"{run['elapsed_s']:5.0f}s{note}")
    overall = 100 * detected / total if total else 0.0
    print(f"{'all':12} {'':27} {total:7d} {detected:6d} (detected) {'':16} {total - checked:7d} {overall:5.1f}% "
          f"{seconds:5.0f}s")
    if survivors:
        print("\nnot detected (mutation-results/<module>/survivors.txt has each diff):")
        for name, mutant, status in survivors:
            print(f"  {status:12} {mutant}")
    if args.min is not None and overall < args.min:
        print(f"\nkill rate {overall:.1f}% is below the goal of {args.min:g}%")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
