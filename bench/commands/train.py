"""`ifa-bench train CONFIG.yaml [--out DIR] [--resume] [--set key.path=value ...]`: one experiment, in-process."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.commands.values import add_set_argument, format_number
from bench.config.experiment_file import load_experiment
from bench.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path, help="experiment YAML (e.g. experiments/synthetic.yaml)")
    parser.add_argument("--out", type=Path, default=None, help="run directory (default: runs/<name>-<config hash>)")
    parser.add_argument("--resume", action="store_true", help="continue from the run directory's last checkpoint")
    parser.add_argument("--init", type=Path, default=None, metavar="CKPT",
                        help="initial weights: an ifa-bench checkpoint or a registered foreign one (hzhupku/IFA), "
                             "loaded strictly into the whole model")
    add_set_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


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


def _init_state(path: Path, cfg, config_path: Path) -> dict:
    """--init: the checkpoint as the project's state_dict, checked key by key against the model (one-line errors)."""
    from bench.convert.loading import build_and_load

    model, state, _ = build_and_load(path, cfg, config_path)
    missing = [k for k in model.state_dict() if k not in state]
    if missing:  # load_weights tolerates a missing auxiliary head (evaluation); training needs every weight
        raise UserError(f"{path}: key {missing[0]!r} is missing; --init needs weights for the whole model"
                        + (f" (+{len(missing) - 1} more)" if len(missing) > 1 else ""))
    return state


def run(args: argparse.Namespace) -> int:
    cfg = load_experiment(args.config, args.overrides)
    out = args.out or Path("runs") / f"{cfg.name}-{cfg.config_hash()}"
    from bench.engine.run_dir import HASH
    from bench.files.output_guard import claim_dir, overlap

    overlap(out, [args.config, args.init, Path(cfg.data.root)])
    claim_dir(out, HASH, records=(HASH,))  # a run of ours (config_hash.txt) is resumed or refused by the trainer

    from bench.engine import train_experiment

    init_state = None
    if args.init is not None:
        init_state = _init_state(args.init, cfg, args.config)

    progress = not args.no_progress and sys.stderr.isatty()
    on_report = None if progress else _line_printer(cfg.train.iterations, cfg.train.log_every)
    print(f"run directory: {out}  (config hash {cfg.config_hash()})", flush=True)
    final = train_experiment(cfg, out, resume=args.resume, on_report=on_report, progress=progress,
                             init_state=init_state)
    print(f"{cfg.name}: mIoU {format_number(final['miou'])}  mAcc {format_number(final['macc'])}  "
          f"aAcc {format_number(final['aacc'])}  "
          f"boundary IoU {format_number(final['boundary_iou'])}  ({final['iterations']} iterations, "
          f"{final['train_time_s']:.0f}s training)")
    print(f"wrote {out / 'final.json'}")
    return 0
