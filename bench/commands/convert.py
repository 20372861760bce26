"""`ifa-bench convert`: a checkpoint of another code base (hzhupku/IFA; mmsegmentation where registered) rewritten
as an `ifa-bench` checkpoint for the model of an experiment config. Strict: every source key is mapped or named in
the error, and the result must load into the model with no missing, unexpected or mis-shaped key."""
from __future__ import annotations

import argparse
from pathlib import Path

from bench.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path, help="checkpoint to convert (e.g. hzhupku/IFA's .pth)")
    parser.add_argument("dest", type=Path, help="ifa-bench checkpoint to write (.pt)")
    parser.add_argument("--config", type=Path, required=True, help="experiment YAML whose model the weights are for")
    parser.add_argument("--format", dest="fmt", default="auto",
                        help="source format: auto (detect), release (hzhupku/IFA), or another registered one")


def run(args: argparse.Namespace) -> int:
    import torch

    from bench.config import ExperimentConfig, load_config
    from bench.convert.loading import build_and_load, read_state
    from bench.convert.registry import PROJECT, detect_format
    from bench.files.atomic import replacing

    from bench.files.output_guard import claim_file, overlap

    cfg = load_config(ExperimentConfig, args.config)
    if args.dest.is_dir():
        raise UserError(f"{args.dest}: is a directory; give the checkpoint file to write")
    overlap(args.dest, [args.source, args.config], "dest", file_output=True)
    claim_file(args.dest, "dest", _converted, "a checkpoint written by `ifa-bench convert`")
    raw, _ = read_state(args.source)
    try:
        fmt = detect_format(raw) if args.fmt == "auto" else args.fmt
    except UserError as exc:  # "matches several formats": name the file
        raise UserError(f"{args.source}: {exc}") from None
    if fmt == PROJECT:
        raise UserError(f"{args.source}: already an ifa-bench checkpoint (or an unrecognised format); "
                        "name the format with --format")
    # one-line error on any missing / extra / mis-shaped key
    model, state, meta = build_and_load(args.source, cfg, args.config, fmt)
    with replacing(args.dest) as tmp:
        torch.save({"model": model.state_dict(), "converted_from": str(args.source), "source_format": fmt,
                    **{f"source_{k}": v for k, v in meta.items()}}, tmp)
    print(f"{args.dest}: {len(state)} tensors converted from {fmt} ({args.source})")
    return 0


def _converted(path: Path) -> bool:
    """An earlier output of convert (its "converted_from" key), which a rerun may replace."""
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - not a checkpoint we can read: not ours
        return False
    return isinstance(data, dict) and "converted_from" in data
