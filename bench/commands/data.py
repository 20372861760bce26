"""`ifa-bench data synth OUT ...` writes the synthetic dataset; `ifa-bench data verify ROOT --dataset NAME`
checks a dataset on disk and lists every problem (exit 0 clean, 1 problems found, 2 bad arguments)."""
from __future__ import annotations

import argparse
import sys
import time

from bench.data.registry import DATASETS, dataset_classes
from bench.errors import UserError

EXIT_PROBLEMS = 1


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size '{text}' is not HxW (e.g. 128x256)") from None
    if h < 16 or w < 16:
        raise argparse.ArgumentTypeError(f"size '{text}': height and width must be at least 16")
    return h, w


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a positive integer")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a non-negative integer")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    synth = actions.add_parser("synth", help="write the synthetic dataset (Cityscapes layout)",
                               description="Write the deterministic synthetic dataset in the Cityscapes layout.")
    synth.add_argument("out", help="directory to create")
    synth.add_argument("--seed", type=_non_negative, default=0, help="generator seed, 0 or more (default 0)")
    synth.add_argument("--train", type=_positive, default=64, help="images in the train split (default 64)")
    synth.add_argument("--val", type=_positive, default=16, help="images in the val split (default 16)")
    synth.add_argument("--size", type=_size, default=(128, 256), help="image size HxW (default 128x256)")
    verify = actions.add_parser("verify", help="check a dataset's layout and files, listing every problem",
                                description="Check layout, pairing, readability, sizes and label values.")
    verify.add_argument("root", help="dataset root directory")
    verify.add_argument("--dataset", required=True, choices=list(DATASETS), help="dataset name")
    verify.add_argument("--split", action="append", dest="splits", metavar="SPLIT",
                        help="split to check (repeatable; default: train and val, or the splits a synthetic "
                             "dataset records)")
    verify.add_argument("--jobs", type=_positive, default=None, help="reader threads (default: up to 8)")
    verify.add_argument("--full", action="store_true",
                        help="Cityscapes: compare labelTrainIds with labelIds on every image (default: a sample)")
    verify.add_argument("--strict-counts", action="store_true",
                        help="treat a split size different from the official release as a problem")


def _synth(args) -> int:
    from bench.data.synthetic.generate import generate_synthetic, read_meta

    from bench.host.budget import require_fits, synth_bytes

    h, w = args.size
    require_fits(synth_bytes(h, w), f"--size {h}x{w}")
    existed = read_meta(args.out) is not None
    start = time.perf_counter()
    generate_synthetic(args.out, seed=args.seed, size=args.size, counts={"train": args.train, "val": args.val})
    h, w = args.size
    if existed:
        print(f"{args.out}: already holds this synthetic dataset (seed {args.seed}, {h}x{w}); nothing written")
    else:
        print(f"wrote {args.train} train + {args.val} val images of {h}x{w} (seed {args.seed}) to {args.out} "
              f"in {time.perf_counter() - start:.1f} s")
    return 0


def _verify(args) -> int:
    from bench.data.verify import summarise, verify_dataset

    reports = verify_dataset(args.dataset, args.root, args.splits, jobs=args.jobs,
                             strict_counts=args.strict_counts, progress=sys.stderr.isatty(), full=args.full)
    classes = dataset_classes(args.dataset, args.root)[0]
    total = 0
    for report in reports:
        for problem in report.problems:
            print(f"PROBLEM {problem}")
        total += len(report.problems)
    for report in reports:
        print(summarise(report, classes))
    verdict = "OK" if total == 0 else f"{total} problems"
    print(f"{args.dataset} at {args.root}: {verdict}")
    sys.stdout.flush()
    return 0 if total == 0 else EXIT_PROBLEMS


def run(args) -> int:
    if args.action == "synth":
        return _synth(args)
    if args.action == "verify":
        return _verify(args)
    raise UserError(f"data: unknown action '{args.action}'")
