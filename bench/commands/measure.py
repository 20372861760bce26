"""`ifa-bench measure`: GMACs (fvcore), parameters, latency and peak memory of one model, or of every head
(`--all`: IFA reference, IFA fused, Semantic-FPN, PPM, OCR) on one backbone. The model comes from the command line
or, with `--config EXP.yaml [--set key=value ...]`, is exactly the one that experiment builds. Each row is printed
and appended to `--out` as soon as it is measured. Conventions: docs/measurement.md."""
from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

from bench.commands.values import add_set_argument, format_number, parse_size
from bench.config.experiment import MeasureConfig
from bench.config.model import BackboneConfig, IFAHeadConfig, choices, head_names
from bench.results.row_file import RowFile
from bench.host.device import resolve_device
from bench.errors import UserError
from bench.config.formulation import AUTO
from bench.measure.ifa_on_gpu import fused_on_gpu_note
from bench.measure.noise_rule import noise_reason
from bench.measure.plan import ALL_HEADS, PlannedModel, label, settings_of
from bench.results.text_table import text_table

# Without --config, the model options' defaults; with it, the experiment sets them (and --set changes them).
MODEL_DEFAULTS = {"backbone": "resnet50", "stem": "standard", "output_stride": 32, "head": "ifa", "classes": 19}
MODEL_OPTIONS = {"backbone": "model.backbone.name", "stem": "model.backbone.stem",
                 "output_stride": "model.backbone.output_stride", "head": "model.head.name",
                 "classes": "model.num_classes", "formulation": "model.head.formulation"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None, metavar="EXP.yaml",
                        help="measure the model this experiment builds (widths, heads, options), at its "
                             "measure.input_size, warmup and runs unless --input/--warmup/--runs are given")
    add_set_argument(parser)
    parser.add_argument("--out", type=Path, default=None, metavar="FILE.csv|FILE.jsonl",
                        help="append each row to this file as soon as it is measured (kept if interrupted)")
    parser.add_argument("--backbone", choices=choices(BackboneConfig, "name"), default=None, help="(default: resnet50)")
    parser.add_argument("--stem", choices=choices(BackboneConfig, "stem"), default=None,
                        help="ResNet stem, the IFA release uses deep (default: standard)")
    parser.add_argument("--output-stride", type=int, choices=choices(BackboneConfig, "output_stride"), default=None,
                        help="(default: 32)")
    parser.add_argument("--head", choices=head_names(), default=None, help="(default: ifa)")
    parser.add_argument("--formulation", choices=choices(IFAHeadConfig, "formulation"), default=None,
                        help="IFA head only (default: the config default, fused)")
    parser.add_argument("--all", action="store_true",
                        help="measure IFA reference, IFA fused, FPN, PPM and OCR on the chosen backbone")
    parser.add_argument("--input", default=None, metavar="HxW", help="input size, batch 1 (default: 1024x2048)")
    parser.add_argument("--classes", type=int, default=None, metavar="N", help="number of classes (default: 19)")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="load these weights first (state_dict, or a train checkpoint with 'model')")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch CPU threads (default: with --config, the threads a trial of its sweep trains "
                             "with, train.threads or sweep.resources.cpus; else torch's default)")
    parser.add_argument("--warmup", type=int, default=None, metavar="N",
                        help="untimed runs before timing (default: 3)")
    parser.add_argument("--runs", type=int, default=None, metavar="N", help="timed runs (default 10)")
    parser.add_argument("--processes", type=int, default=None, metavar="N",
                        help="time in at least N fresh processes, one after another, and pool their runs (default: "
                             "the config's measure.processes, else 3); 0 times in this process (docs/measurement.md)")
    parser.add_argument("--span", type=float, default=None, metavar="S",
                        help="the least seconds the fresh processes' timed runs span, the host's speed drifting "
                             "over tens of seconds (default: the config's measure.span_s, else 240)")
    parser.add_argument("--max-processes", type=int, default=None, metavar="N",
                        help="the most processes the pool may grow to while it is imprecise (default: the "
                             "config's measure.max_processes, else 4 x --processes)")
    parser.add_argument("--no-latency", action="store_true", help="skip timing")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    parser.add_argument("--breakdown", action="store_true", help="GMACs per module (backbone, head and its parts)")
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table")


def resolve_args(args):
    """Fill in the defaults: the experiment's (model, measure section, a trial's threads) with --config, the command
    line's and the measure section's defaults without. Returns the ExperimentConfig or None."""
    cfg = None
    measure = MeasureConfig()
    if args.config is not None:
        from bench.config.experiment_file import load_experiment

        for option, key in MODEL_OPTIONS.items():
            if getattr(args, option) is not None:
                flag = "--" + option.replace("_", "-")
                raise UserError(f"{flag}: cannot be combined with --config (the experiment sets the model); "
                                f"use --set {key}=...")
        cfg = load_experiment(args.config, args.overrides)
        measure = cfg.measure
        if args.threads is None:
            args.threads = _trial_threads(args.config, args.overrides, cfg)
            if args.threads > _usable_cpus():  # a sweep could not run its trials here either; measure what fits
                import sys

                sys.stderr.write(f"note: a trial of {args.config} trains with {args.threads} threads, more than the "
                                 f"{_usable_cpus()} CPU(s) this process may use; timing with {_usable_cpus()}\n")
                args.threads = _usable_cpus()
    else:
        if args.overrides:
            raise UserError("--set: needs --config (it overrides keys of the experiment file)")
        for option, value in MODEL_DEFAULTS.items():
            if getattr(args, option) is None:
                setattr(args, option, value)
    args.input = args.input or "x".join(map(str, measure.input_size))
    args.warmup = measure.warmup if args.warmup is None else args.warmup
    args.runs = measure.runs if args.runs is None else args.runs
    args.processes = measure.processes if args.processes is None else args.processes
    args.max_processes = measure.max_processes if args.max_processes is None else args.max_processes
    args.span = measure.span_s if args.span is None else args.span
    args.no_latency = args.no_latency or not measure.latency
    return cfg


def _trial_threads(path: Path, overrides: list[str], cfg) -> int:
    """The threads a trial of the experiment's sweep trains with, which its measurement phase times at."""
    from bench.config.experiment_file import read_config_data
    from bench.config import validate
    from bench.sweep.spec.trials import Resources

    data, _ = read_config_data(Path(path), overrides)
    resources = (data.get("sweep") or {}).get("resources") or {}
    return validate(Resources, resources, f"{path}: sweep.resources").threads(cfg.train.threads)


def _check_args(args) -> None:
    if args.classes is not None and args.classes < 1:
        raise UserError(f"--classes: must be a positive integer, got {args.classes}")
    if args.runs < 1:
        raise UserError(f"--runs: must be at least 1, got {args.runs}")
    if args.processes < 0:
        raise UserError(f"--processes: must be 0 or more, got {args.processes}")
    if args.max_processes is not None and args.max_processes < 1:
        raise UserError(f"--max-processes: must be at least 1, got {args.max_processes}")
    if args.processes and args.max_processes is not None and args.max_processes < args.processes:
        raise UserError(f"--max-processes: {args.max_processes} is below --processes {args.processes} (the pool starts "
                        f"with --processes and grows up to --max-processes)")
    if not 0 <= args.span <= 3600:  # also NaN
        raise UserError(f"--span: must be between 0 and 3600 seconds, got {args.span:g}")
    if args.warmup < 0:
        raise UserError(f"--warmup: must be 0 or more, got {args.warmup}")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads: must be at least 1, got {args.threads}")
    if args.threads is not None and args.threads > _usable_cpus():
        raise UserError(f"--threads: {args.threads} is more than the {_usable_cpus()} CPU(s) this process may use "
                        f"(the latency would be that of threads competing for cores)")
    if args.formulation is not None and not args.all and args.head not in (None, "ifa"):
        raise UserError(f"--formulation: only applies to --head ifa, not {args.head!r}")
    if args.all and args.checkpoint is not None:
        raise UserError("--checkpoint: cannot be combined with --all (one checkpoint fits one model)")
    if args.checkpoint is not None and not args.checkpoint.is_file():
        raise UserError(f"{args.checkpoint}: no such file")


def _usable_cpus() -> int:
    """CPUs this process may run on (its affinity, e.g. under taskset or a container's cpuset), not the host's."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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
    """Refuse an input size whose forward cannot fit (bench/host/budget.py) before building anything."""
    from bench.host.budget import forward_bytes, require_fits, stem_channels

    needed = forward_bytes(1, *size, stem=stem_channels(args))
    require_fits(needed, f"--input {size[0]}x{size[1]}", device if device.type == "cuda" else None)


def settings(args):
    """The measurement settings the command line and the measure section (resolve_args) give."""
    return settings_of(input_size=parse_size(args.input), warmup=args.warmup, runs=args.runs,
                       latency=not args.no_latency, memory=not args.no_memory, processes=args.processes,
                       max_processes=args.max_processes, span_s=args.span)


def command_line_plan(args) -> list[PlannedModel]:
    """The models of the command line without --config: one, or (--all) every head on its backbone, each on IFA's
    own grid (no eval section to say otherwise)."""
    rows = ALL_HEADS if args.all else [(None, args.head, args.formulation)]
    models = [model_config(args, head, formulation) for _, head, formulation in rows]
    return [PlannedModel(label(m), m, None, settings(args)) for m in models]


def _load_checkpoint(model, path: Path, model_cfg, source: Path) -> None:
    from bench.convert.loading import load_converted, load_weights

    state, _ = load_converted(path, model_cfg)  # ifa-bench, or a registered foreign format (hzhupku/IFA)
    load_weights(model, state, path, source)


def measure_one(args, planned: PlannedModel, device, experiment=None) -> dict:
    """One row: identity keys, conditions (input size, batch, dtype, threads, device name) and every key that
    bench.measure.measure_model returns."""
    from bench.engine.evaluation.inference import planned_segmentor, query_stride_of
    from bench.measure.macs import count_macs
    from bench.measure.model import measure_model
    from bench.host.compiled import uncompiled
    from bench.results.schema import compile_setting

    import torch

    cfg = planned.model
    with planned_segmentor(planned) as model:  # IFA measured as it is evaluated
        if args.checkpoint is not None:
            source = args.config if experiment is not None else Path("the command line (--backbone/--head/--classes)")
            _load_checkpoint(model, args.checkpoint, cfg, source)
        model.eval().to(device)
        images = torch.randn(1, 3, *planned.settings.input_size, generator=torch.Generator().manual_seed(0)).to(device)
        with uncompiled(model):
            macs = count_macs(model, images, by_module_depth=2)
        record = measure_model(model, device=device, macs=macs, **planned.measure_kwargs())
        query_stride = query_stride_of(model)
    head = cfg.head.name
    ident = {
        "model": ran_label(planned.label, record["formulation"]), "backbone": cfg.backbone.name, "stem": cfg.backbone.stem,
        "output_stride": cfg.backbone.output_stride, "head": head,
        "formulation": record["formulation"], "ifa_kernels": record["ifa_kernels"],  # what IFA ran as ("" otherwise)
        "num_classes": cfg.num_classes,
        "backbone_width": cfg.backbone.width, "ifa_query_stride": "" if query_stride is None else query_stride,
        "compile": compile_setting(cfg.compile),
    }
    if experiment is not None:
        ident.update({"config": str(args.config), "overrides": " ".join(args.overrides),
                      "config_hash": experiment.model_copy(update={"model": cfg}).config_hash()})
    ident["checkpoint"] = "" if args.checkpoint is None else str(args.checkpoint)
    out = {**ident, "batch": 1, **record}
    out["breakdown_gmacs"] = {name: n / 1e9 for name, n in macs.by_module.items()
                              if name in ("backbone", "head") or name.startswith("head.")}
    out["uncalled_modules"] = macs.uncalled_modules
    return out


def ran_label(label: str, formulation: str) -> str:
    """A row's model label with what `auto` ran as: "IFA (auto)" measured on a CPU reads "IFA (auto: fused)"."""
    return label.replace(f"({AUTO})", f"({AUTO}: {formulation})") if formulation else label


def _gmacs(value) -> str:
    return "-" if value is None else f"{value:.2f}" if value < 10 else f"{value:.1f}"


def format_table(rows: list[dict], breakdown: bool) -> str:
    header = ["model", "GMACs", "backbone", "head", "params M", "head M", "latency ms (median / p90)", "peak MiB"]
    body = []
    for r in rows:
        lat = "-" if r["latency_ms_median"] is None else f"{r['latency_ms_median']:.0f} / {r['latency_ms_p90']:.0f}"
        if r.get("latency_noisy"):
            lat += " noisy"
        body.append([r["model"], _gmacs(r["gmacs"]), _gmacs(r["gmacs_backbone"]), _gmacs(r["gmacs_head"]),
                     format_number(r["params_m"], 2), format_number(r["params_head_m"], 2), lat,
                     format_number(r["peak_mem_mb"], 0)])
    first = rows[0]
    lines = [
        f"input 1x3x{first['measure_input']}, {first['backbone']} ({first['stem']} stem, output stride "
        f"{first['output_stride']}), {first['num_classes']} classes, {first['dtype']}, batch 1, eval mode, "
        f"auxiliary head excluded",
        text_table(header, body, numeric=[False] + [True] * (len(header) - 1), rule=True), "",
        "GMACs: fvcore, 1 multiply-add = 1; peak MiB: growth over the memory held before the forward "
        "(docs/measurement.md)",
        f"device: {first['device']} ({first['device_name']}), threads {first['threads']}, torch "
        f"{first['torch_version']}, python {first['python_version']}, host {first['hostname']}",
    ]
    strides = sorted({r["ifa_query_stride"] for r in rows if r.get("ifa_query_stride") not in ("", None)})
    if strides:
        lines.append(f"IFA queried at stride {', '.join(map(str, strides))} of the input (1 = the input's "
                     "resolution), the rest upsampled bilinearly")
    if first.get("config"):
        sets = f" with --set {first['overrides']}" if first.get("overrides") else ""
        lines.append(f"config: {first['config']}{sets}, backbone width {first['backbone_width']:g}"
                     + (f", checkpoint {first['checkpoint']}" if first.get("checkpoint") else ""))
    for r in rows:
        lines.append(f"uncounted ops ({r['model']}): {r['unsupported_ops'] or 'none'}")
    for r in rows:
        if r.get("latency_processes"):
            lines.append(f"latency ({r['model']}): {_precision(r)}")
        if r.get("latency_noisy"):
            lines.append(f"  noisy: {noise_reason(r)}; do not rank models by it (docs/measurement.md)")
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


def flat_row(row: dict) -> dict:
    """A row without the nested entries (breakdown, uncalled modules): what CSV and --out files hold."""
    return {k: v for k, v in row.items() if k not in ("breakdown_gmacs", "uncalled_modules")}


def format_csv(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(k for r in rows for k in flat_row(r)))
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


def _precision(row: dict) -> str:
    """How the pooled latency was taken and how precise it is."""
    se = row.get("latency_se_pct")
    return (f"{row['latency_runs']} runs in {row['latency_processes']} fresh processes over "
            f"{row['latency_span_s']:.0f} s, standard error {'-' if se is None else f'{se:.1f}%'}")


def row_line(row: dict) -> str:
    """One row as soon as it is measured (stderr)."""
    lat = row.get("latency_ms_median")
    line = (f"{row['model']}: {_gmacs(row['gmacs'])} GMACs, {format_number(row['params_m'], 2)} M params, latency "
            f"{'-' if lat is None else f'{lat:.1f}'} ms, peak {format_number(row['peak_mem_mb'], 0)} MiB "
            f"({row['measure_input']}, batch 1, {row['dtype']}, {row['threads']} threads, {row['device_name']})")
    if row.get("latency_processes"):
        line += f"; {_precision(row)}"
    if row.get("latency_noisy"):
        line += f"  WARNING: latency is noisy ({noise_reason(row)})"
    return line


def run(args: argparse.Namespace) -> int:
    import sys

    import torch

    from bench.measure.plan import plan

    experiment = resolve_args(args)
    size = parse_size(args.input)
    _check_args(args)
    device = resolve_device(args.device)
    if args.out is not None:  # appends only to a file of measure rows (RowFile); never to an input
        from bench.files.output_guard import overlap

        overlap(args.out, [args.config, args.checkpoint], file_output=True)
    out_file = RowFile(args.out) if args.out is not None else None
    _require_fits(args, size, device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if experiment is not None:
        planned = plan(experiment, settings(args), all_heads=args.all)
    else:
        planned = command_line_plan(args)
    rows = []
    for one in planned:
        cfg = one.model
        if len(planned) > 1:
            sys.stderr.write(f"measuring {one.label} ...\n")
        row = measure_one(args, one, device, experiment)
        rows.append(row)
        if out_file is not None:
            out_file.append(flat_row(row))
        sys.stderr.write(row_line(row) + (f"  -> {args.out}" if out_file is not None else "") + "\n")
        note = fused_on_gpu_note({**cfg.head.model_dump(), "formulation": row["formulation"]}, row["measure_device"])
        if note and row.get("latency_ms_median") is not None:
            sys.stderr.write(f"  note: {note}\n")
        sys.stderr.flush()
    if args.format == "json":
        text = format_json(rows, args.breakdown)
    elif args.format == "csv":
        text = format_csv(rows)
    else:
        text = format_table(rows, args.breakdown)
    sys.stdout.write(text + "\n")
    return 0
