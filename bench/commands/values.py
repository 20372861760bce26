"""Values on the command line shared by several subcommands: the --set option, HxW sizes, paths or URIs, and
numbers as printed."""
from __future__ import annotations

import argparse
import math

from bench.errors import UserError

SET_HELP = ("override a config key (repeatable); VALUE is YAML, e.g. --set train.iterations=100 "
            "--set eval.mode=slide; a new model.head.name starts from that head's defaults")


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    """--set KEY.PATH=VALUE for train, eval, sweep and measure; bench/config/experiment_file.py applies them."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help=SET_HELP)


def parse_size(text: str, flag: str = "--input") -> tuple[int, int]:
    """"HxW" with positive integers, e.g. "1024x2048"; anything else is a UserError naming `flag`."""
    parts = text.strip().lower().split("x")
    values: list[int] = []
    if len(parts) == 2 and all(p.strip().isascii() and p.strip().isdigit() for p in parts):
        values = [int(p) for p in parts]
    if len(values) != 2 or min(values) < 1:
        raise UserError(f"{flag}: expected HxW with positive integers (e.g. 1024x2048), got {text!r}")
    return values[0], values[1]


def format_number(value, digits: int = 2) -> str:
    """Fixed-point text, or "-" for a missing (None) or undefined (NaN) value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def path_or_uri(text: str):
    """argparse type: a URI (s3://..., gs://...) stays text (Path would fold its `//`); anything else is a Path."""
    import re
    from pathlib import Path

    if "://" not in text and re.match(r"(?i)(s3|gs|gcs|https?):", text):  # s3:/bucket is a typo, not a folder
        raise argparse.ArgumentTypeError(f"{text}: malformed URI (expected s3://BUCKET/PREFIX or gs://BUCKET/PREFIX)")
    return text if "://" in text else Path(text)
