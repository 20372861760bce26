"""`ifa-bench report DIR [DIR ...] [--out DIR]`: tables, plots, report.md and index.html over sweeps and runs."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", type=Path, nargs="+", metavar="DIR",
                        help="sweep folders, results.csv/.parquet files, or `train` run folders (holding final.json); "
                             "several are combined into one report")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="output folder (default: <sweep>/report; required with several inputs)")
    parser.add_argument("--published", type=Path, default=None, metavar="YAML",
                        help="published numbers to compare and draw (e.g. reports/published.yaml)")
    parser.add_argument("--ci", type=float, default=None, metavar="LEVEL",
                        help="compare with --published by the interval rule of `check --ci LEVEL` (e.g. 95); the "
                             "report states the rule it used")


def run(args: argparse.Namespace) -> int:
    from reports.build import build_report

    if args.ci is not None and not 0 < args.ci < 100:
        from bench.errors import UserError

        raise UserError(f"--ci: a confidence level between 0 and 100, got {args.ci:g}")
    if args.ci is not None and args.published is None:
        from bench.errors import UserError

        raise UserError("--ci: applies to the comparison with published numbers; give --published YAML too")
    report = build_report(args.results, args.out, args.published, ci=args.ci)
    counts = ", ".join(f"{v} {k}" for k, v in report.status_counts.items() if v)
    sys.stdout.write(f"report: {report.out_dir / 'index.html'} ({len(report.models)} models; {counts}; "
                     f"{len(report.plots)} plots)\n")
    for note in report.notes:
        sys.stdout.write(f"note: {note}\n")
    return 0
