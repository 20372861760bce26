"""`ifa-bench predict --config EXP.yaml CKPT IMAGE_OR_DIR... --out DIR`: per image, the train-id PNG
(`STEM_trainIds.png`), the dataset's own label encoding (`STEM_labelIds.png` for Cityscapes), and a colourised
overlay (`STEM_overlay.png`), with the experiment's evaluation protocol (eval.mode, scales, flip, window)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.errors import UserError

IMAGE_EXTS = (".png", ".jpg", ".jpeg")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="ifa-bench checkpoint, or a registered foreign one (hzhupku/IFA)")
    parser.add_argument("inputs", type=Path, nargs="+", metavar="IMAGE_OR_DIR",
                        help="images, or directories searched recursively for .png/.jpg")
    parser.add_argument("--config", type=Path, required=True, help="experiment YAML of the checkpoint")
    parser.add_argument("--out", type=Path, required=True, help="directory for the prediction files")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None, help="default: train.device")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def find_images(inputs: list[Path]) -> list[Path]:
    found = []
    for path in inputs:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
        elif path.is_file():
            found.append(path)
        else:
            raise UserError(f"{path}: no such image or directory")
    if not found:
        raise UserError(f"{', '.join(map(str, inputs))}: no .png/.jpg images found")
    return found


def unique_stems(images: list[Path]) -> dict[Path, str]:
    """Each image's output stem; two images with one stem (a/x.png and b/x.png, x.png and x.jpg) are refused."""
    from bench.data.prediction_files import image_stem

    seen: dict[str, Path] = {}
    for path in images:
        stem = image_stem(path)
        if stem in seen:
            raise UserError(f"{path}: same name as {seen[stem]}; predictions would overwrite each other")
        seen[stem] = path
    return {path: stem for stem, path in seen.items()}


def run(args: argparse.Namespace) -> int:
    import torch

    from bench.config import ExperimentConfig, load_config
    from bench.convert.loading import model_from_checkpoint
    from bench.data.image_io import read_image
    from bench.data.prediction_files import colourise, dataset_encoding, overlay, write_png
    from bench.data.registry import dataset_classes
    from bench.data.transforms import to_tensors
    from bench.host.device import resolve_device
    from bench.engine.evaluation.inference import ifa_query_mode, predict_labels

    from bench.files.output_guard import PREDICTIONS_MARKER, StagedFolder, claim_dir, overlap

    cfg = load_config(ExperimentConfig, args.config)
    overlap(args.out, [*args.inputs, args.checkpoint, args.config, Path(cfg.data.root)])
    claim_dir(args.out, PREDICTIONS_MARKER)
    images = find_images(args.inputs)
    stems = unique_stems(images)  # before anything is written
    device = resolve_device(args.device or cfg.train.device)
    torch.manual_seed(cfg.seed)
    model, _ = model_from_checkpoint(args.checkpoint, cfg, args.config, device)
    _, palette = dataset_classes(cfg.data.dataset, cfg.data.root)
    ev = cfg.eval
    crop = tuple(ev.crop_size or cfg.data.crop_size)
    iterator = images
    if not args.no_progress:
        from tqdm import tqdm

        iterator = tqdm(images, desc="predict", unit="image", dynamic_ncols=True, disable=not sys.stderr.isatty())
    staging = StagedFolder(args.out, PREDICTIONS_MARKER)  # files land in --out only when every image is done
    with staging, ifa_query_mode(model, ev.ifa_query, ev.ifa_query_stride), torch.inference_mode():
        for path in iterator:
            _require_fits(path, cfg, device)
            image = read_image(path)
            tensor, _ = to_tensors(image, image[..., 0], tuple(cfg.data.mean), tuple(cfg.data.std))
            pred = predict_labels(model, tensor.unsqueeze(0).to(device), image.shape[:2], mode=ev.mode,
                                  scales=ev.scales, flip=ev.flip, crop=crop, stride=ev.stride,
                                  window_batch=ev.batch_size)[0]
            train_ids = pred.cpu().numpy().astype("uint8")
            stem = stems[path]
            name, encoded = dataset_encoding(cfg.data.dataset, train_ids)
            write_png(train_ids, staging.tmp / f"{stem}_trainIds.png")
            if name != "trainIds":
                write_png(encoded, staging.tmp / f"{stem}_{name}.png")
            write_png(overlay(image, colourise(train_ids, palette)), staging.tmp / f"{stem}_overlay.png")
    print(f"{args.out}: predictions for {len(images)} images")
    return 0


def _require_fits(path: Path, cfg, device) -> None:
    """The decoded size judged from the header before decoding, as `eval` does (bench/host/budget.py)."""
    from PIL import Image

    from bench.host.budget import eval_bytes, require_fits, stem_channels

    try:
        with Image.open(path) as img:
            width, height = img.size
    except Exception:  # noqa: BLE001 - read_image names an unreadable image
        return
    ev = cfg.eval
    window = tuple(ev.crop_size or cfg.data.crop_size) if ev.mode == "slide" else None
    require_fits(eval_bytes(height, width, ev.scales, cfg.model.num_classes, window,
                            stem_channels(cfg.model.backbone)), f"{path} ({height}x{width})", device)
