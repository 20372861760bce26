"""`ifa-bench report DIR [DIR ...] [--out DIR]`: tables, plots, report.md and index.html over sweeps and runs."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.commands.values import path_or_uri


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", type=path_or_uri, nargs="+", metavar="DIR",
                        help="sweep folders, results.csv/.parquet files, `train` run folders (holding final.json), "
                             "or a sweep's --storage URI (s3://...); several are combined into one report")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="output folder (default: <sweep>/report; required with several inputs)")
    parser.add_argument("--storage-endpoint", default=None, metavar="URL",
                        help="an S3-compatible server for s3:// inputs (default: AWS_ENDPOINT_URL, else AWS)")
    parser.add_argument("--published", type=Path, default=None, metavar="YAML",
                        help="published numbers to compare and draw (e.g. reports/published.yaml)")
    parser.add_argument("--ci", type=float, default=None, metavar="LEVEL",
                        help="compare with --published by the interval rule of `check --ci LEVEL` (e.g. 95); the "
                             "report states the rule it used")


def run(args: argparse.Namespace) -> int:
    from reports.build import build_report

    from bench.errors import UserError
    from bench.sweep.folder.storage import is_uri, materialize

    if args.ci is not None and not 0 < args.ci < 100:
        raise UserError(f"--ci: a confidence level between 0 and 100, got {args.ci:g}")
    if args.ci is not None and args.published is None:
        raise UserError("--ci: applies to the comparison with published numbers; give --published YAML too")
    if args.out is None and any(is_uri(r) for r in args.results):
        raise UserError("--out: required when an input is a storage URI (the report is written locally)")
    out = _guard_out(args)
    keep: list = []  # downloaded URIs' temp folders, removed when the report is written
    try:
        inputs = [materialize(r, "report", args.storage_endpoint, keep) for r in args.results]
        try:
            report = build_report(inputs, out, args.published, ci=args.ci)
        except UserError as exc:  # name the URI, not the temp folder it was downloaded to
            raise UserError(_named_as_given(str(exc), inputs, args.results)) from None
    finally:
        for tmp in keep:
            tmp.cleanup()
    counts = ", ".join(f"{v} {k}" for k, v in report.status_counts.items() if v)
    sys.stdout.write(f"report: {report.out_dir / 'index.html'} ({len(report.models)} models; {counts}; "
                     f"{len(report.plots)} plots)\n")
    for note in report.notes:
        sys.stdout.write(f"note: {note}\n")
    return 0


def _guard_out(args: argparse.Namespace):
    """The report folder (bench/files/output_guard.py): not an input, not above one, not inside one but for a sweep's
    own report/; empty, new, or an earlier report (its marker)."""
    from bench.files.output_guard import REPORT_MARKER, claim_dir, overlap
    from bench.sweep.folder.storage import is_uri

    local = [Path(r) for r in args.results if not is_uri(r)]
    defaults = [r / "report" if r.is_dir() else r.parent / "report" for r in local]
    out = args.out if args.out is not None else (defaults[0] if len(defaults) == 1 else None)
    if out is None:
        return None  # several inputs without --out: build_report says so
    overlap(out, [*local, args.published], allowed=[d for r, d in zip(local, defaults) if r.is_dir()])
    claim_dir(out, REPORT_MARKER)
    return out


def _named_as_given(message: str, local: list, given: list) -> str:
    from bench.sweep.folder.storage import shown_uri

    for path, name in zip(local, given):
        if str(path) != str(name):
            message = message.replace(str(path), shown_uri(name))
    return message
