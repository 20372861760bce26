"""`ifa-bench measure`: GMACs (fvcore), parameters, latency and peak memory of one model, or of every head
(`--all`: IFA reference, IFA fused, Semantic-FPN, PPM, OCR) on one backbone. Conventions: docs/measurement.md."""
from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

from bench.commands.values import format_number, parse_size
from bench.device import resolve_device
from bench.errors import UserError

BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101")
HEADS = ("ifa", "fpn", "ppm", "ocr")
# (label, head name, IFA formulation) rows of --all
ALL_ROWS = (
    ("IFA (reference)", "ifa", "reference"),
    ("IFA (fused)", "ifa", "fused"),
    ("Semantic-FPN", "fpn", None),
    ("PPM (PSPNet)", "ppm", None),
    ("OCR", "ocr", None),
)
ID_COLUMNS = ["model", "backbone", "stem", "output_stride", "head", "formulation", "num_classes"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backbone", choices=BACKBONES, default="resnet50")
    parser.add_argument("--stem", choices=("standard", "deep", "v1c"), default="standard",
                        help="ResNet stem (the IFA release uses deep)")
    parser.add_argument("--output-stride", type=int, choices=(8, 16, 32), default=32)
    parser.add_argument("--head", choices=HEADS, default="ifa")
    parser.add_argument("--formulation", choices=("fused", "reference"), default=None,
                        help="IFA head only (default: the config default, fused)")
    parser.add_argument("--all", action="store_true",
                        help="measure IFA reference, IFA fused, FPN, PPM and OCR on the chosen backbone")
    parser.add_argument("--input", default="1024x2048", metavar="HxW", help="input size, batch 1 (default 1024x2048)")
    parser.add_argument("--classes", type=int, default=19, metavar="N", help="number of classes (default 19)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="load these weights first (state_dict, or a train checkpoint with 'model')")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    parser.add_argument("--threads", type=int, default=None, metavar="N", help="torch CPU threads")
    parser.add_argument("--warmup", type=int, default=3, metavar="N", help="untimed runs before timing (default 3)")
    parser.add_argument("--runs", type=int, default=10, metavar="N", help="timed runs (default 10)")
    parser.add_argument("--no-latency", action="store_true", help="skip timing")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    parser.add_argument("--breakdown", action="store_true", help="GMACs per module (backbone, head and its parts)")
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table")


def _check_args(args) -> None:
    if args.classes < 1:
        raise UserError(f"--classes: must be a positive integer, got {args.classes}")
    if args.runs < 1:
        raise UserError(f"--runs: must be at least 1, got {args.runs}")
    if args.warmup < 0:
        raise UserError(f"--warmup: must be 0 or more, got {args.warmup}")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads: must be at least 1, got {args.threads}")
    if args.formulation is not None and not args.all and args.head != "ifa":
        raise UserError(f"--formulation: only applies to --head ifa, not {args.head!r}")
    if args.all and args.checkpoint is not None:
        raise UserError("--checkpoint: cannot be combined with --all (one checkpoint fits one model)")
    if args.checkpoint is not None and not args.checkpoint.is_file():
        raise UserError(f"{args.checkpoint}: no such file")


def model_config(args, head: str, formulation: str | None):
    from bench.config import validate
    from bench.config.model import ModelConfig

    head_cfg: dict = {"name": head}
    if head == "ifa" and formulation is not None:
        head_cfg["formulation"] = formulation
    data = {
        "num_classes": args.classes,
        "backbone": {"name": args.backbone, "stem": args.stem, "output_stride": args.output_stride},
        "head": head_cfg,
    }
    return validate(ModelConfig, data, "command line (measure)")


def _require_fits(args, size, device) -> None:
    """Refuse an input size whose forward cannot fit (bench/budget.py) before building anything."""
    from bench.budget import forward_bytes, require_fits, stem_channels

    needed = forward_bytes(1, *size, stem=stem_channels(args))
    require_fits(needed, f"--input {size[0]}x{size[1]}", device if device.type == "cuda" else None)


def _rows(args) -> list[tuple[str, str, str | None]]:
    if args.all:
        return list(ALL_ROWS)
    label = dict((h, lbl) for lbl, h, _ in ALL_ROWS if h != "ifa")
    if args.head == "ifa":
        return [(f"IFA ({args.formulation or 'fused'})", "ifa", args.formulation)]
    return [(label[args.head], args.head, None)]


def _load_checkpoint(model, path: Path) -> None:
    from bench.commands.eval import load_checkpoint_state, load_weights

    state, _ = load_checkpoint_state(path)
    load_weights(model, state, path, Path("the command line (--backbone/--head/--classes)"))


def measure_one(args, label: str, head: str, formulation: str | None, size, device) -> dict:
    from bench.measure import count_macs, measure_model
    from bench.models import build_segmentor

    import torch

    cfg = model_config(args, head, formulation)
    torch.manual_seed(0)
    model = build_segmentor(cfg)
    if args.checkpoint is not None:
        _load_checkpoint(model, args.checkpoint)
    model.eval().to(device)
    images = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0)).to(device)
    macs = count_macs(model, images, by_module_depth=2)
    record = measure_model(model, size, device=device, warmup=args.warmup, runs=args.runs,
                           latency=not args.no_latency, memory=not args.no_memory, macs=macs)
    ident = {
        "model": label, "backbone": args.backbone, "stem": args.stem, "output_stride": args.output_stride,
        "head": head, "formulation": (cfg.head.formulation if head == "ifa" else ""),
        "num_classes": args.classes,
    }
    out = {**ident, **record}
    out["breakdown_gmacs"] = {name: n / 1e9 for name, n in macs.by_module.items()
                              if name in ("backbone", "head") or name.startswith("head.")}
    out["uncalled_modules"] = macs.uncalled_modules
    return out


def _gmacs(value) -> str:
    return "-" if value is None else f"{value:.2f}" if value < 10 else f"{value:.1f}"


def format_table(rows: list[dict], breakdown: bool) -> str:
    header = ["model", "GMACs", "backbone", "head", "params M", "head M", "latency ms (median / p90)", "peak MiB"]
    body = []
    for r in rows:
        lat = "-" if r["latency_ms_median"] is None else f"{r['latency_ms_median']:.0f} / {r['latency_ms_p90']:.0f}"
        body.append([r["model"], _gmacs(r["gmacs"]), _gmacs(r["gmacs_backbone"]), _gmacs(r["gmacs_head"]),
                     format_number(r["params_m"], 2), format_number(r["params_head_m"], 2), lat,
                     format_number(r["peak_mem_mb"], 0)])
    widths = [max(len(str(row[i])) for row in [header] + body) for i in range(len(header))]
    fmt = lambda row: "  ".join(  # noqa: E731
        str(v).ljust(w) if i == 0 else str(v).rjust(w) for i, (v, w) in enumerate(zip(row, widths)))
    first = rows[0]
    lines = [
        f"input 1x3x{first['measure_input']}, {first['backbone']} ({first['stem']} stem, output stride "
        f"{first['output_stride']}), {first['num_classes']} classes, {first['dtype']}, batch 1, eval mode, "
        f"auxiliary head excluded",
        fmt(header), fmt(["-" * w for w in widths]), *[fmt(row) for row in body], "",
        "GMACs: fvcore, 1 multiply-add = 1; peak MiB: growth over the memory held before the forward "
        "(docs/measurement.md)",
        f"device: {first['device']} ({first['device_name']}), threads {first['threads']}, torch "
        f"{first['torch_version']}, python {first['python_version']}, host {first['hostname']}",
    ]
    for r in rows:
        lines.append(f"uncounted ops ({r['model']}): {r['unsupported_ops'] or 'none'}")
    if breakdown:
        lines.append("")
        for r in rows:
            parts = ", ".join(f"{name} {g:.2f}" for name, g in r["breakdown_gmacs"].items())
            lines.append(f"GMACs by module ({r['model']}): {parts}")
            inside = sum(g for name, g in r["breakdown_gmacs"].items() if name.startswith("head."))
            if r["gmacs_head"] > 0 and inside < 0.5 * r["gmacs_head"]:
                lines.append(f"  note: {r['gmacs_head'] - inside:.2f} of the head's GMACs run in the head's own "
                             "forward (functional layers, e.g. the fused IFA path), not in a submodule")
    return "\n".join(lines)


def format_csv(rows: list[dict]) -> str:
    from bench.measure import RECORD_KEYS

    columns = ID_COLUMNS + RECORD_KEYS
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    return buf.getvalue().rstrip("\n")


def format_json(rows: list[dict], breakdown: bool) -> str:
    out = []
    for r in rows:
        r = dict(r)
        if not breakdown:
            r.pop("breakdown_gmacs")
        out.append(r)
    return json.dumps(out, indent=2, allow_nan=False)


def run(args: argparse.Namespace) -> int:
    import sys

    import torch

    size = parse_size(args.input)
    _check_args(args)
    device = resolve_device(args.device)
    _require_fits(args, size, device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    rows = []
    for label, head, formulation in _rows(args):
        if args.format == "table" and len(_rows(args)) > 1:
            sys.stderr.write(f"measuring {label} ...\n")
        rows.append(measure_one(args, label, head, formulation, size, device))
    if args.format == "json":
        text = format_json(rows, args.breakdown)
    elif args.format == "csv":
        text = format_csv(rows)
    else:
        text = format_table(rows, args.breakdown)
    sys.stdout.write(text + "\n")
    return 0
