"""`ifa-bench eval CHECKPOINT --config CONFIG.yaml`: evaluate a checkpoint, print the metrics, optionally write JSON."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from bench.commands.values import add_set_argument, format_number, parse_size
from bench.errors import UserError
from bench.files.atomic import write_json
from bench.host.device import resolve_device
from bench.results.text_table import text_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="checkpoint file (.pt) written by `ifa-bench train`")
    parser.add_argument("--config", type=Path, required=True, help="experiment YAML the checkpoint was trained with")
    parser.add_argument("--split", default=None, help="dataset split (default: data.val_split)")
    parser.add_argument("--save-preds", type=Path, default=None, metavar="DIR",
                        help="write one prediction PNG per image into DIR (see --format)")
    parser.add_argument("--format", dest="pred_format", choices=("cityscapes", "trainids"), default="trainids",
                        help="--save-preds encoding: cityscapes = labelIds named as the Cityscapes submission "
                             "expects (DIR/CITY/CITY_SEQ_FRAME_leftImg8bit.png); trainids = train ids (default)")
    parser.add_argument("--mode", choices=("whole", "slide"), default=None, help="default: eval.mode")
    parser.add_argument("--crop", default=None, metavar="HxW",
                        help="slide window (default: eval.crop_size, else data.crop_size)")
    parser.add_argument("--stride", default=None, metavar="HxW", help="slide stride (default: 2/3 of the window)")
    parser.add_argument("--scales", default=None, metavar="S,S,...",
                        help="test scales, e.g. 0.5,0.75,1.0,1.25 (default: eval.scales, else 1.0)")
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                        help="add horizontally flipped views (default: eval.flip)")
    parser.add_argument("--ifa-query", choices=("label", "upsample"), default=None,
                        help="IFA: query at label resolution, or upsample the stride-4 logits "
                             "(default: eval.ifa_query)")
    parser.add_argument("--ifa-query-stride", type=int, choices=(1, 2, 4), default=None,
                        help="IFA: query on the 1/STRIDE grid of the label and upsample the rest; 1 = label "
                             "resolution (default: eval.ifa_query_stride, else --ifa-query's grid)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None, help="default: train.device")
    add_set_argument(parser)
    parser.add_argument("--out", type=Path, default=None, help="write the metrics as JSON to this file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _scales(text: str) -> list[float]:
    try:
        values = [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        values = []
    if not values or any(not math.isfinite(v) or v <= 0 for v in values):
        raise UserError(f"--scales: expected comma-separated positive numbers, got {text!r}")
    return values


def eval_config(cfg, args):
    """The config's eval section with the command-line overrides, validated."""
    from bench.config import validate
    from bench.config.experiment import EvalConfig, slide_stride_problem

    data = cfg.eval.model_dump()
    if args.mode is not None:
        data["mode"] = args.mode
    if args.crop is not None:
        data["crop_size"] = parse_size(args.crop, "--crop")
    if args.stride is not None:
        data["stride"] = parse_size(args.stride, "--stride")
    if args.scales is not None:
        data["scales"] = _scales(args.scales)
    if args.flip is not None:
        data["flip"] = args.flip
    if args.ifa_query is not None:
        data["ifa_query"] = args.ifa_query
    if getattr(args, "ifa_query_stride", None) is not None:
        if cfg.model.head.name != "ifa":
            raise UserError(f"--ifa-query-stride: only the IFA head can be queried at a chosen resolution "
                            f"({args.config} uses head {cfg.model.head.name!r})")
        data["ifa_query_stride"] = args.ifa_query_stride
        if args.ifa_query is None:  # the stride alone decides: 1 is label resolution, 2 and 4 upsample
            data["ifa_query"] = "label" if args.ifa_query_stride == 1 else "upsample"
    eval_cfg = validate(EvalConfig, data, "command line (eval)")
    problem = slide_stride_problem(eval_cfg, cfg.data.crop_size)
    if problem:
        where = "--stride" if args.stride is not None else f"{args.config}: eval.stride"
        raise UserError(f"{where}: {problem}")
    return eval_cfg


def _require_eval_fits(dataset, eval_cfg, cfg, args, device) -> None:
    """Refuse scales or a window that cannot fit (bench/host/budget.py), judged on the split's first image."""
    from PIL import Image

    from bench.host.budget import eval_bytes, require_fits, stem_channels

    try:
        with Image.open(dataset.image_path(0)) as img:
            width, height = img.size
    except Exception:  # noqa: BLE001 - an unreadable image is reported by the evaluation itself
        return
    window = None
    if eval_cfg.mode == "slide":
        window = tuple(eval_cfg.crop_size or cfg.data.crop_size)
    needed = eval_bytes(height, width, eval_cfg.scales, cfg.model.num_classes, window,
                        stem_channels(cfg.model.backbone))
    flags = []
    if args.scales or window is None or tuple(eval_cfg.scales) != (1.0,):
        flags.append(f"--scales {args.scales}" if args.scales else f"eval.scales {list(eval_cfg.scales)}")
    if window is not None:
        flags.append(f"--crop {args.crop}" if args.crop else f"window {window[0]}x{window[1]}")
    require_fits(needed, f"{' with '.join(flags)} on a {height}x{width} image", device)


def prediction_saver(dataset, dataset_name: str, out_dir: Path, fmt: str, config: Path):
    """on_prediction callback for evaluate(): writes each prediction as `fmt` ('cityscapes' or 'trainids')."""
    from bench.data.prediction_files import cityscapes_result_path, dataset_encoding, image_stem, write_png

    if fmt == "cityscapes" and dataset_name != "cityscapes":
        raise UserError(f"--format cityscapes: {config} evaluates {dataset_name!r}, not cityscapes")

    def save(index: int, pred) -> None:  # into the staged folder (run()): --out gets them when every image is done
        train_ids = pred.to("cpu").numpy().astype("uint8")
        image = dataset.image_path(index)
        if fmt == "cityscapes":
            write_png(dataset_encoding("cityscapes", train_ids)[1], cityscapes_result_path(out_dir, image))
        else:
            write_png(train_ids, out_dir / f"{image_stem(image)}_trainIds.png")

    return save


def guard_outputs(args, cfg) -> None:
    """--out and --save-preds (bench/files/output_guard.py): never an input or the dataset, never a file or folder
    that `eval` did not write."""
    from bench.engine.evaluation.bootstrap import PER_IMAGE_FILE
    from bench.files.output_guard import PREDICTIONS_MARKER, claim_dir, claim_file, overlap

    inputs = [args.checkpoint, args.config, Path(cfg.data.root)]
    if args.out is not None:
        overlap(args.out, inputs, file_output=True)
        claim_file(args.out, "--out", _eval_record, "a metrics file written by `ifa-bench eval`")
        sibling = args.out.with_name(args.out.stem + "." + PER_IMAGE_FILE)
        claim_file(sibling, "--out", lambda _: _eval_record(args.out), "the per-image file of an earlier `eval`")
    if args.save_preds is not None:
        overlap(args.save_preds, [*inputs, args.out], "--save-preds")
        claim_dir(args.save_preds, PREDICTIONS_MARKER, "--save-preds")


def _eval_record(path: Path) -> bool:
    import json

    record = json.loads(path.read_text())
    return isinstance(record, dict) and {"protocol", "config_hash", "miou"} <= set(record)


def format_table(result: dict) -> str:
    lines = [
        f"protocol: {result['protocol']}",
        f"images: {result['num_images']}",
        f"mIoU {format_number(result['miou'])}  mAcc {format_number(result['macc'])}  aAcc {format_number(result['aacc'])}  "
        f"boundary IoU {format_number(result['boundary_iou'])}",
    ]
    if result.get("miou_ci_low") is not None:
        lines.append(f"mIoU {result['ci_level']:g}% bootstrap interval over images: "
                     f"[{format_number(result['miou_ci_low'])}, {format_number(result['miou_ci_high'])}] "
                     f"({result['ci_replicates']} replicates)")
    lines += [
        "",
    ]
    rows = [[name, format_number(result["per_class_iou"][name]), format_number(result["per_class_acc"][name]),
             format_number(result["per_class_boundary_iou"][name])] for name in result["per_class_iou"]]
    lines.append(text_table(["class", "IoU", "Acc", "B-IoU"], rows, numeric=[False, True, True, True]))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import sys

    from bench.config.experiment_file import load_experiment

    cfg = load_experiment(args.config, args.overrides)  # like train: a sweep's experiment file evaluates its base experiment
    eval_cfg = eval_config(cfg, args)  # both before the heavy imports below: a bad file is refused at once

    import torch

    if args.out is not None and args.out.is_dir():
        raise UserError(f"{args.out}: is a directory; --out takes a file name")
    guard_outputs(args, cfg)
    from bench.convert.loading import model_from_checkpoint

    device = resolve_device(args.device or cfg.train.device)
    if device.type == "cpu" and cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.seed)
    # ifa-bench, or a registered foreign format
    model, meta = model_from_checkpoint(args.checkpoint, cfg, args.config, device)

    from bench.engine.evaluation.checkpoint_eval import evaluate_with_interval, open_split

    split = args.split or cfg.data.val_split
    dataset = open_split(cfg, split, args.config)
    from contextlib import nullcontext

    from bench.files.output_guard import PREDICTIONS_MARKER, StagedFolder

    save, staged = None, nullcontext()
    if args.save_preds is not None:
        staged = StagedFolder(args.save_preds, PREDICTIONS_MARKER)
    _require_eval_fits(dataset, eval_cfg, cfg, args, device)
    with staged:
        if args.save_preds is not None:
            save = prediction_saver(dataset, cfg.data.dataset, staged.tmp, args.pred_format, args.config)
        result, inter, union = evaluate_with_interval(model, cfg, eval_cfg, device, dataset, on_prediction=save,
                                                      progress=not args.no_progress and sys.stderr.isatty())
    from bench.engine.evaluation import bootstrap
    if args.out is not None:  # written before printing, so a closed stdout cannot lose it
        record = {
            "checkpoint": str(args.checkpoint), "config": str(args.config), "config_hash": cfg.config_hash(),
            "checkpoint_config_hash": meta.get("config_hash"),
            "dataset": cfg.data.dataset, "split": split, "device": str(device), "torch_version": torch.__version__,
            **{k: meta[k] for k in ("iter", "iteration", "epoch") if k in meta},
            **result,
        }
        write_json(args.out, record)
        bootstrap.save_per_image(args.out.with_name(args.out.stem + "." + bootstrap.PER_IMAGE_FILE), inter, union)
    print(format_table(result))
    if args.out is not None:
        print(f"wrote {args.out}")
    return 0
