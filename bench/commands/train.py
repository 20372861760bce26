"""`ifa-bench train CONFIG.yaml [--out DIR] [--resume] [--set key.path=value ...]`: one experiment, in-process."""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

from bench.commands.values import format_number
from bench.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path, help="experiment YAML (e.g. experiments/synthetic.yaml)")
    parser.add_argument("--out", type=Path, default=None, help="run directory (default: runs/<name>-<config hash>)")
    parser.add_argument("--resume", action="store_true", help="continue from the run directory's last checkpoint")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override a config key, e.g. --set train.iterations=100 --set model.head.name=fpn "
                             "(VALUE is YAML; switching model.head.name resets the head's options to its defaults)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def parse_override(text: str) -> tuple[str, Any]:
    from bench.config import parse_yaml

    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise UserError(f"--set: expected KEY.PATH=VALUE, got {text!r}")
    value = parse_yaml(raw, f"--set {key}={raw}") if raw.strip() else ""
    return key, value


def apply_override(data: dict, key: str, value: Any) -> None:
    """Set `key` (dotted) in the raw config mapping. The head is a tagged union: a new `model.head.name`, or a
    `model.head` mapping naming another head, starts from that head's defaults instead of merging."""
    parts = key.split(".")
    cur = data
    for i, part in enumerate(parts[:-1]):
        nxt = cur.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise UserError(f"--set {key}: {'.'.join(parts[:i + 1])} is not a mapping")
        cur = nxt
    last = parts[-1]
    if key == "model.head.name" and cur.get("name", "ifa") != value:
        cur.clear()
    if key == "model.head" and isinstance(value, dict) and isinstance(cur.get("head"), dict):
        old = cur["head"]
        if value.get("name", old.get("name", "ifa")) == old.get("name", "ifa"):
            value = {**old, **value}
    cur[last] = copy.deepcopy(value)


def load_experiment(path: Path, overrides: list[str]):
    """The validated ExperimentConfig of `path` with the --set overrides applied (UserError naming the key)."""
    from bench.config import ExperimentConfig, read_yaml, validate

    data = read_yaml(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    data.pop("sweep", None)  # a sweep's experiment file: train its base experiment
    for text in overrides:
        apply_override(data, *parse_override(text))
    source = f"{path} (with --set)" if overrides else str(path)
    return validate(ExperimentConfig, data, source)


def _line_printer(total: int, log_every: int):
    """Without a terminal: one line per ~5% of the run instead of a progress bar."""
    every = max(log_every, total // 20)

    def on_report(record: dict) -> None:
        if record.get("kind") == "train" and (record["iter"] % every == 0 or record["iter"] == total):
            print(f"iter {record['iter']}/{total}  loss {record['loss']:.4f}  lr {record['lr']:.3e}  "
                  f"{record['time_s']:.0f}s", flush=True)
        elif record.get("kind") == "eval":
            print(f"eval @ {record['iter']}: mIoU {format_number(record.get('miou'))}  "
                  f"boundary IoU {format_number(record.get('boundary_iou'))}", flush=True)
    return on_report


def run(args: argparse.Namespace) -> int:
    cfg = load_experiment(args.config, args.overrides)
    out = args.out or Path("runs") / f"{cfg.name}-{cfg.config_hash()}"

    from bench.engine import train_experiment

    progress = not args.no_progress and sys.stderr.isatty()
    on_report = None if progress else _line_printer(cfg.train.iterations, cfg.train.log_every)
    print(f"run directory: {out}  (config hash {cfg.config_hash()})", flush=True)
    final = train_experiment(cfg, out, resume=args.resume, on_report=on_report, progress=progress)
    print(f"{cfg.name}: mIoU {format_number(final['miou'])}  mAcc {format_number(final['macc'])}  "
          f"aAcc {format_number(final['aacc'])}  "
          f"boundary IoU {format_number(final['boundary_iou'])}  ({final['iterations']} iterations, "
          f"{final['train_time_s']:.0f}s training)")
    print(f"wrote {out / 'final.json'}")
    return 0
