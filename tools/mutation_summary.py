"""Kill rate per module of the last `mutmut run` (its mutants/**/*.meta files), and the surviving mutants.

Detected = killed, timeout, segfault or caught by type check. The rate is detected / all mutants: a mutant that no
selected test reaches ("no tests") counts as surviving; "of run" leaves out mutants not checked yet (a partial run). `--min P` exits 1 when the overall rate is below P percent.
Usage: .venv/bin/python tools/mutation_summary.py [--min 90] [--mutants mutants]
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

DETECTED = {"killed", "timeout", "segfault", "caught by type check"}


def load(mutants: Path) -> dict[str, dict[str, str]]:
    """{module path: {mutant name: status}}"""
    out = {}
    for meta in sorted(mutants.rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        out[str(meta.relative_to(mutants))[: -len(".meta")]] = {k: status_by_exit_code[v] for k, v in codes.items()}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mutants", type=Path, default=Path("mutants"))
    ap.add_argument("--min", type=float, default=None, help="fail (exit 1) below this overall kill rate, percent")
    args = ap.parse_args(argv)
    by_module = load(args.mutants)
    if not by_module:
        print(f"no mutmut results under {args.mutants}/ (run `make mutation`)", file=sys.stderr)
        return 2
    total, detected, checked, survivors = 0, 0, 0, []
    print(f"{'module':32} {'mutants':>7} {'detected':>8} {'survived':>8} {'no tests':>8} {'not run':>7} {'rate':>7} {'of run':>7}")
    for module, statuses in by_module.items():
        counts = Counter(statuses.values())
        n, d = len(statuses), sum(counts[s] for s in DETECTED)
        total, detected = total + n, detected + d
        survivors += [(name, s) for name, s in statuses.items() if s not in DETECTED]
        run = n - counts["not checked"]
        rate = f"{100 * d / n:.1f}%" if n else "-"
        of_run = f"{100 * d / run:.1f}%" if run else "-"
        print(f"{module:32} {n:7d} {d:8d} {counts['survived']:8d} {counts['no tests']:8d} "
              f"{counts['not checked']:7d} {rate:>7} {of_run:>7}")
        checked += run
    overall = 100 * detected / total if total else 0.0
    of_run = f"{100 * detected / checked:.1f}%" if checked else "-"
    print(f"{'all':32} {total:7d} {detected:8d} {'':8} {'':8} {total - checked:7d} {overall:6.1f}% {of_run:>7}")
    if survivors:
        print("\nnot detected (`.venv/bin/mutmut show NAME` prints the change):")
        for name, status in survivors:
            print(f"  {status:12} {name}")
    if args.min is not None and overall < args.min:
        print(f"\nkill rate {overall:.1f}% is below the goal of {args.min:g}%")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
