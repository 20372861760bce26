"""`ifa-bench check RESULTS --against reports/published.yaml`: reproduced mIoU vs published numbers.

Exit 0: every compared row is within tolerance with enough seeds; 1: some row is not, or nothing was compared
(unless --allow-empty); 2: bad input.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from bench.commands.values import path_or_uri


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", type=path_or_uri, metavar="SWEEP_DIR|RESULTS|URI",
                        help="sweep directory, results.csv, results.parquet, or a sweep's --storage URI (s3://...)")
    parser.add_argument("--storage-endpoint", default=None, metavar="URL",
                        help="an S3-compatible server for an s3:// input (default: AWS_ENDPOINT_URL, else AWS)")
    parser.add_argument("--against", type=Path, default=None, metavar="YAML",
                        help="published numbers (default: the packaged reports/published.yaml)")
    parser.add_argument("--tolerance", type=float, default=1.0, help="allowed |reproduced - published| in mIoU points")
    parser.add_argument("--metric", default="miou_ss", choices=("miou_ss", "miou_ms_flip"),
                        help="miou_ss: single scale, no flip; miou_ms_flip: several scales with flip")
    parser.add_argument("--min-seeds", type=int, default=1, help="fewer completed seeds than this fails the row")
    parser.add_argument("--include-reproductions", action="store_true",
                        help="also fail on third-party reproduction rows (default: shown for context only)")
    parser.add_argument("--allow-empty", action="store_true",
                        help="exit 0 when nothing is compared (by default that is a failure, exit 1)")
    parser.add_argument("--ci", type=float, default=None, metavar="LEVEL",
                        help="e.g. 95: fail a row only when the published value is outside the LEVEL%% bootstrap "
                             "interval over val images, widened by --tolerance (needs the trials' per_image.npz)")
    parser.add_argument("--paired", nargs=2, default=None, metavar=("A", "B"),
                        help="paired bootstrap of mIoU(A) - mIoU(B) on the same images (trial_id or config_hash); "
                             "prints the interval (level --ci, default 95) and whether it excludes 0")
    parser.add_argument("--out", type=Path, default=None, metavar="CSV", help="also write the matched/unmatched rows as CSV here")


def run(args: argparse.Namespace) -> int:
    from bench.errors import UserError
    from bench.sweep.folder.storage import materialize, shown_uri
    from reports.mapping import METRICS

    if args.metric not in METRICS:
        raise UserError(f"--metric: unknown metric {args.metric!r} (known: {', '.join(METRICS)})")
    if args.min_seeds < 0:
        raise UserError(f"--min-seeds: must be >= 0, got {args.min_seeds}")
    if not math.isfinite(args.tolerance) or args.tolerance < 0:
        raise UserError(f"--tolerance: must be a finite number >= 0, got {args.tolerance}")
    if args.ci is not None and not (math.isfinite(args.ci) and 0 < args.ci < 100):
        raise UserError(f"--ci: a confidence level between 0 and 100 (e.g. 95), got {args.ci:g}")
    if args.out is not None:  # bench/files/output_guard.py: never the input, nor a file `check` did not write
        from bench.files.output_guard import claim_file, first_line, overlap

        overlap(args.out, [args.results, args.against], file_output=True)
        # its header names `matched` and `verdict` (`reason` comes last where a row is unmatched)
        claim_file(args.out, "--out", lambda p: {"matched", "verdict"} <= {c.strip() for c in first_line(p).split(",")},
                   "a table written by `ifa-bench check`")
    keep: list = []  # a downloaded URI's temp folder, removed on return
    try:
        local = materialize(args.results, "check", args.storage_endpoint, keep)
        try:
            return _run(args, local)
        except UserError as exc:  # name the URI, not the temp folder it was downloaded to
            if str(local) == str(args.results):
                raise
            raise UserError(str(exc).replace(str(local), shown_uri(args.results))) from None
    finally:
        for tmp in keep:
            tmp.cleanup()


def _run(args: argparse.Namespace, results_path: Path) -> int:
    from bench.files.atomic import write_text
    from bench.results.text_table import plural
    from bench.results.csv_export import csv_text
    from reports.regression.check import format_report, run_check
    from reports.regression.check_input import check_miou_values, drop_repeated_trials
    from reports.load import CHECK_REQUIRED, read_results
    from reports.regression.published import load_published

    results = read_results(results_path, required=CHECK_REQUIRED)
    check_miou_values(results)
    results, repeated = drop_repeated_trials(results)
    if repeated:
        sys.stderr.write(f"note: {plural(repeated, 'repeated trial row')} in {results.source} counted once\n")
    if args.paired:
        from reports.regression.intervals import paired

        d = paired(results, *args.paired, level=args.ci or 95.0)
        significant = not d.contains(0.0)
        sys.stdout.write(f"mIoU({args.paired[0]}) - mIoU({args.paired[1]}) = {d.estimate:+.2f}, {d.level:g}% paired "
                         f"bootstrap interval [{d.low:+.2f}, {d.high:+.2f}] ({d.replicates} replicates, seed {d.seed}): "
                         f"{'significant' if significant else 'not significant'} (the interval "
                         f"{'excludes' if significant else 'includes'} 0)\n")
        return 0
    published = load_published(args.against)
    result = run_check(results, published, metric=args.metric, tolerance=args.tolerance,
                       min_seeds=args.min_seeds, include_reproductions=args.include_reproductions, ci=args.ci)
    sys.stdout.write(format_report(result))
    if args.out:
        import pandas as pd

        both = pd.concat([result.matched.assign(matched=True), result.unmatched.assign(matched=False)],
                         ignore_index=True)
        write_text(args.out, csv_text(both, index=False))
    if not result.matched["counts"].any() and not args.allow_empty:
        why = (f"none of the {plural(len(result.unmatched), 'reproduced model')} matches a counted published row "
               f"(reasons above)" if len(result.unmatched) else "the results hold no reproduced model")
        sys.stdout.write(f"FAIL: nothing was compared: {why}; --allow-empty accepts this\n")
        return 1
    return result.exit_code
