"""Parity of ifa-bench's models with mmsegmentation 1.2.2 (run by `make check-mmseg` in .venv-mmseg).

For FPN R-50, PSPNet R-50-D8 (+ aux FCN), OCRNet R-101-D8 and OCRNet HRNetV2-W18: mmseg's model with random
weights (BN statistics randomised too) is saved as an mmseg checkpoint, imported through `bench.convert`
(format "mmseg"), loaded strictly into the project's model, and compared: parameters per part, MACs
(torch FlopCounterMode, FLOPs / 2) and eval logits (max |a - b| / max |b|). IFA on HRNetV2-W18 is compared with its
own reference: the backbone against mmseg's HRNet (features), the head's fused formulation against its reference
formulation on the same weights.

Prints a markdown table; exit 1 if any check fails. `--dump-keys DIR` writes each mmseg model's key -> shape layout
(the CI fixtures of tests/convert). `--macs-sizes HxW ...` adds a MACs-only table at those sizes, counted on meta
tensors (no arithmetic: seconds at 1024x2048); `--macs-only` prints just that table.
"""
from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.config.model import ModelConfig
from bench.convert.registry import detect_format, to_project
from bench.models.build import build_segmentor

NUM_CLASSES = 19
BN = dict(type="BN", requires_grad=True)
HR18 = dict(stage1=dict(num_modules=1, num_branches=1, block="BOTTLENECK", num_blocks=(4,), num_channels=(64,)),
            stage2=dict(num_modules=1, num_branches=2, block="BASIC", num_blocks=(4, 4), num_channels=(18, 36)),
            stage3=dict(num_modules=4, num_branches=3, block="BASIC", num_blocks=(4, 4, 4),
                        num_channels=(18, 36, 72)),
            stage4=dict(num_modules=3, num_branches=4, block="BASIC", num_blocks=(4, 4, 4, 4),
                        num_channels=(18, 36, 72, 144)))
LEVELS = ["c2", "c3", "c4", "c5"]


def resnet(depth, d8):
    return dict(type="ResNetV1c", depth=depth, num_stages=4, out_indices=(0, 1, 2, 3),
                dilations=(1, 1, 2, 4) if d8 else (1, 1, 1, 1), strides=(1, 2, 1, 1) if d8 else (1, 2, 2, 2),
                norm_cfg=BN, norm_eval=False, style="pytorch", contract_dilation=True)


def fcn(in_channels, in_index, channels, kernel=3, dropout=0.1, concat=False):
    extra = dict(input_transform="resize_concat") if concat else {}
    return dict(type="FCNHead", in_channels=in_channels, in_index=in_index, channels=channels, kernel_size=kernel,
                num_convs=1, concat_input=False, dropout_ratio=dropout, num_classes=NUM_CLASSES, norm_cfg=BN,
                align_corners=False, **extra)


def mmseg_configs():
    """name -> (mmseg model dict, project ModelConfig dict)."""
    ocr_hr = dict(type="OCRHead", in_channels=[18, 36, 72, 144], in_index=(0, 1, 2, 3),
                  input_transform="resize_concat", channels=512, ocr_channels=256, dropout_ratio=-1,
                  num_classes=NUM_CLASSES, norm_cfg=BN, align_corners=False)
    return {
        "FPN R-50": (
            dict(type="EncoderDecoder", backbone=resnet(50, False),
                 neck=dict(type="FPN", in_channels=[256, 512, 1024, 2048], out_channels=256, num_outs=4),
                 decode_head=dict(type="FPNHead", in_channels=[256] * 4, in_index=[0, 1, 2, 3],
                                  feature_strides=[4, 8, 16, 32], channels=128, dropout_ratio=0.1,
                                  num_classes=NUM_CLASSES, norm_cfg=BN, align_corners=False)),
            dict(backbone=dict(name="resnet50", stem="v1c", output_stride=32),
                 head=dict(name="fpn", channels=256, scale_channels=128), aux_head=dict(enabled=False))),
        "PSPNet R-50-D8": (
            dict(type="EncoderDecoder", backbone=resnet(50, True),
                 decode_head=dict(type="PSPHead", in_channels=2048, in_index=3, channels=512,
                                  pool_scales=(1, 2, 3, 6), dropout_ratio=0.1, num_classes=NUM_CLASSES,
                                  norm_cfg=BN, align_corners=False),
                 auxiliary_head=fcn(1024, 2, 256)),
            dict(backbone=dict(name="resnet50", stem="v1c", output_stride=8), head=dict(name="ppm"),
                 aux_head=dict(enabled=True))),
        "OCRNet R-101-D8": (
            dict(type="CascadeEncoderDecoder", num_stages=2, backbone=resnet(101, True),
                 decode_head=[fcn(1024, 2, 256),
                              dict(type="OCRHead", in_channels=2048, in_index=3, channels=512, ocr_channels=256,
                                   dropout_ratio=0.1, num_classes=NUM_CLASSES, norm_cfg=BN,
                                   align_corners=False)]),
            dict(backbone=dict(name="resnet101", stem="v1c", output_stride=8), head=dict(name="ocr"),
                 aux_head=dict(enabled=False))),
        "OCRNet HRNetV2-W18": (
            dict(type="CascadeEncoderDecoder", num_stages=2, backbone=dict(type="HRNet", extra=HR18, norm_cfg=BN),
                 decode_head=[fcn([18, 36, 72, 144], (0, 1, 2, 3), 270, kernel=1, dropout=-1, concat=True), ocr_hr]),
            dict(backbone=dict(name="hrnetv2_w18"),
                 head=dict(name="ocr", in_features=LEVELS, in_feature_region=LEVELS, region_kernel=1,
                           region_channels=270, region_dropout=0, dropout=0), aux_head=dict(enabled=False))),
    }


def randomise(model: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif name.endswith("running_mean") or name.endswith("bias"):
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1)
            elif t.dim() == 1:  # BN weight
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            else:  # He-scaled so activations neither vanish nor explode through 100 layers
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=gen) * (2.0 / fan_in) ** 0.5)


def macs(fn) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        fn()
    return counter.get_total_flops() // 2


def count(module) -> int:
    return sum(p.numel() for p in module.parameters()) if module is not None else 0


def mmseg_logits(model, x):
    metas = [dict(img_shape=tuple(x.shape[-2:]), ori_shape=tuple(x.shape[-2:]), pad_shape=tuple(x.shape[-2:]))]
    return model.encode_decode(x, metas)


def rel(a, b) -> float:
    return float((a - b).abs().max() / b.abs().max())


def compare_mmseg(name, mm_cfg, project_cfg, x, dump_dir):
    from mmseg.registry import MODELS

    mm = MODELS.build(mm_cfg)
    mm.init_weights()
    randomise(mm, seed=0)
    mm.eval()
    state = mm.state_dict()
    if dump_dir is not None:
        layout = {k: list(v.shape) for k, v in state.items()}
        path = Path(dump_dir) / (name.lower().replace(" ", "_").replace("-", "") + ".json.gz")
        with gzip.open(path, "wt") as f:
            json.dump(layout, f, indent=0, sort_keys=True)
    with tempfile.TemporaryDirectory() as tmp:  # an mmseg checkpoint file, read back as the CLI would
        ckpt = Path(tmp) / "mmseg.pth"
        torch.save({"meta": {"mmseg_version": "1.2.2"}, "state_dict": state}, ckpt)
        raw = torch.load(ckpt, map_location="cpu", weights_only=True)
    cfg = ModelConfig(num_classes=NUM_CLASSES, **project_cfg)
    fmt = detect_format(raw)
    ours = build_segmentor(cfg)
    ours.load_state_dict(to_project(raw, cfg, fmt), strict=True)
    ours.eval()
    mm_parts = {"backbone": count(mm.backbone),
                "head": count(getattr(mm, "neck", None)) + count(mm.decode_head),
                "aux": count(getattr(mm, "auxiliary_head", None))}
    our_parts = {"backbone": count(ours.backbone), "head": count(ours.head), "aux": count(ours.aux_head)}
    if mm_parts["aux"] == 0:  # mmseg's eval forward never runs the aux head; neither does the project's
        our_parts["aux"] = count(ours.aux_head)
    with torch.no_grad():
        a, b = ours(x), mmseg_logits(mm, x)
    mm_macs = macs(lambda: mmseg_logits(mm, x))
    our_macs = macs(lambda: ours(x))
    return dict(model=name, format=fmt, params_mmseg=mm_parts, params_ours=our_parts,
                macs_mmseg=mm_macs, macs_ours=our_macs, rel_diff=rel(a, b),
                argmax_equal=float((a.argmax(1) == b.argmax(1)).float().mean()))


def compare_ifa_hrnet(x):
    from mmseg.registry import MODELS

    mm = MODELS.build(dict(type="HRNet", extra=HR18, norm_cfg=BN))
    mm.init_weights()
    randomise(mm, seed=1)
    mm.eval()
    cfg = ModelConfig(num_classes=NUM_CLASSES, backbone=dict(name="hrnetv2_w18"), head=dict(name="ifa"),
                      aux_head=dict(enabled=False))
    ours = build_segmentor(cfg)
    ours.backbone.load_state_dict(mm.state_dict(), strict=True)
    randomise(ours.head, seed=2)
    ours.eval()
    with torch.no_grad():
        feats_mm = mm(x)
        feats = ours.backbone(x)
        feat_diff = max(rel(feats[f"c{i + 2}"], f) for i, f in enumerate(feats_mm))
        ours.head.formulation = "reference"
        ref = ours(x)
        ours.head.formulation = "fused"
        fused = ours(x)
    bb_mm, bb_ours = macs(lambda: mm(x)), macs(lambda: ours.backbone(x))
    ours.head.formulation = "reference"
    ref_macs = macs(lambda: ours(x))
    ours.head.formulation = "fused"
    return dict(model="IFA HRNetV2-W18", format="-",
                params_mmseg={"backbone": count(mm), "head": None, "aux": 0},
                params_ours={"backbone": count(ours.backbone), "head": count(ours.head), "aux": 0},
                macs_mmseg=bb_mm, macs_ours=bb_ours, rel_diff=max(feat_diff, rel(fused, ref)),
                argmax_equal=float((fused.argmax(1) == ref.argmax(1)).float().mean()),
                note=f"backbone features vs mmseg HRNet: {feat_diff:.1e}; fused vs reference head: "
                     f"{rel(fused, ref):.1e}; whole model (reference head) {ref_macs / 1e9:.2f} GMACs")


def meta_macs(name, mm_cfg, project_cfg, size) -> dict:
    """MACs of mmseg's model and the project's at `size`, both built and run on meta tensors. IFA on HRNet: the
    backbones only (the IFA head samples data-dependently and does not run on meta tensors)."""
    from mmseg.registry import MODELS

    with torch.device("meta"):
        mm = MODELS.build(mm_cfg)
        ours = build_segmentor(ModelConfig(num_classes=NUM_CLASSES, **project_cfg))
        x = torch.zeros(1, 3, *size)
    mm.eval()  # mmseg's backbones' train() returns None, so no chaining
    ours.eval()
    if name == "IFA HRNetV2-W18":
        return dict(model=name, size=size, macs_mmseg=macs(lambda: mm(x)), macs_ours=macs(lambda: ours.backbone(x)))
    return dict(model=name, size=size, macs_mmseg=macs(lambda: mmseg_logits(mm, x)), macs_ours=macs(lambda: ours(x)))


def print_meta_table(rows) -> bool:
    print(f"MACs on meta tensors, eval mode, batch 1, torch {torch.__version__}: FlopCounterMode FLOPs / 2 "
          "(IFA HRNetV2-W18: backbone only).\n")
    print("| model | input | GMACs ours | GMACs mmseg | MACs diff | pass |")
    print("|---|---|---|---|---|---|")
    failed = False
    for r in rows:
        diff = abs(r["macs_ours"] - r["macs_mmseg"]) / r["macs_mmseg"]
        failed |= diff > 0.005
        print(f"| {r['model']} | {r['size'][0]}x{r['size'][1]} | {r['macs_ours'] / 1e9:.2f} | "
              f"{r['macs_mmseg'] / 1e9:.2f} | {diff:.3%} | {'yes' if diff <= 0.005 else 'NO'} |")
    return failed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="512x1024", help="HxW of the eval input")
    parser.add_argument("--only", nargs="*", help="model names to run (default: all)")
    parser.add_argument("--dump-keys", type=Path, help="write mmseg key layouts here")
    parser.add_argument("--macs-sizes", nargs="*", default=[], help="HxW sizes for a MACs-only table on meta tensors")
    parser.add_argument("--macs-only", action="store_true", help="print only the --macs-sizes table")
    args = parser.parse_args(argv)
    from mmseg.utils import register_all_modules

    register_all_modules()
    from mmengine.logging import MMLogger

    MMLogger.get_current_instance().setLevel("WARNING")  # init_weights logs every parameter at INFO
    sizes = [tuple(int(v) for v in text.lower().split("x")) for text in args.macs_sizes]
    configs = dict(mmseg_configs())
    configs["IFA HRNetV2-W18"] = (dict(type="HRNet", extra=HR18, norm_cfg=BN),
                                  dict(backbone=dict(name="hrnetv2_w18"), head=dict(name="fpn"),
                                       aux_head=dict(enabled=False)))
    meta_rows = [meta_macs(name, mm_cfg, project_cfg, size) for size in sizes
                 for name, (mm_cfg, project_cfg) in configs.items() if not args.only or name in args.only]
    if args.macs_only:
        return 1 if print_meta_table(meta_rows) else 0
    torch.manual_seed(0)
    h, w = (int(v) for v in args.size.lower().split("x"))
    x = torch.randn(1, 3, h, w)
    if args.dump_keys:
        args.dump_keys.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, (mm_cfg, project_cfg) in mmseg_configs().items():
        if args.only and name not in args.only:
            continue
        rows.append(compare_mmseg(name, mm_cfg, project_cfg, x, args.dump_keys))
        print(f"done {name}", file=sys.stderr, flush=True)
    if not args.only or "IFA HRNetV2-W18" in args.only:
        rows.append(compare_ifa_hrnet(x))
    print(f"Input 1x3x{h}x{w}, eval mode, CPU, torch {torch.__version__}. MACs: FlopCounterMode FLOPs / 2. "
          "Logits: max |ours - reference| / max |reference|.\n")
    print("| model | params backbone (ours / mmseg) | params head | params aux | GMACs ours | GMACs mmseg | "
          "MACs diff | logits rel. diff | argmax equal | pass |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    failed = False
    for r in rows:
        po, pm = r["params_ours"], r["params_mmseg"]
        params_ok = all(pm[k] is None or po[k] == pm[k] for k in po)
        macs_diff = abs(r["macs_ours"] - r["macs_mmseg"]) / r["macs_mmseg"]
        ok = params_ok and macs_diff <= 0.005 and r["rel_diff"] <= 1e-5
        failed |= not ok
        cell = lambda k: f"{po[k]:,} / {pm[k]:,}" if pm[k] is not None else f"{po[k]:,} / -"  # noqa: E731
        print(f"| {r['model']} | {cell('backbone')} | {cell('head')} | {cell('aux')} | {r['macs_ours'] / 1e9:.2f} | "
              f"{r['macs_mmseg'] / 1e9:.2f} | {macs_diff:.3%} | {r['rel_diff']:.1e} | {r['argmax_equal']:.4f} | "
              f"{'yes' if ok else 'NO'} |")
    for r in rows:
        if r.get("note"):
            print(f"\n{r['model']}: {r['note']}. Its MACs columns are the backbone's.")
    if meta_rows:
        print()
        failed |= print_meta_table(meta_rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
