"""`ifa-bench config EXPERIMENT.yaml [--set KEY=VALUE ...]`: the resolved config and where each key comes from."""
from __future__ import annotations

import argparse
from pathlib import Path

from bench.commands.values import add_set_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", type=Path, help="experiment YAML (e.g. experiments/cityscapes_r50.yaml)")
    add_set_argument(parser)


def run(args: argparse.Namespace) -> int:
    from bench.config.resolved import resolved_lines

    print("\n".join(resolved_lines(args.experiment, args.overrides)))
    return 0
