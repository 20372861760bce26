"""The explicit mapping between our configurations and the published rows' names (docs/reports.md).

Published rows name things the way their source does ("cityscapes_val", "PSPNet", "R-50-D8"); our results name
them by config value ("cityscapes", "ppm", resnet50 + v1c stem + output stride 8). Only the pairs listed here
are ever compared: anything else is reported as unmatched, with the reason.
"""
from __future__ import annotations

import re
from typing import NamedTuple, Optional

# Our `dataset` column -> published dataset name (the evaluation split the source reports).
DATASETS: dict[str, str] = {
    "cityscapes": "cityscapes_val",
    "ade20k": "ade20k_val",
    "pascal_context_59": "pascal_context_59",
    "pascal_context_60": "pascal_context_60",
    "synthetic": "synthetic_val",  # the demo's expected values: reports/published_demo.yaml
}

# Our `head` column -> published method name.
HEADS: dict[str, str] = {
    "ifa": "FPN + IFA",
    "fpn": "Semantic FPN",
    "ppm": "PSPNet",
    "ocr": "OCRNet",
}


class BackboneKey(NamedTuple):
    backbone: str  # our `backbone` column
    stem: str  # our `stem` column: standard | deep | v1c
    output_stride: int  # our `output_stride` column


# (published method, published backbone label) -> our backbone configuration.
# mmsegmentation's ResNets are "V1c" (3x3 32-32-64 stem); "-D8" means dilated to output stride 8, "-D32" and the
# Semantic-FPN rows' plain "R-50" mean output stride 32. The IFA release uses a deep-stem ResNet-50 at output
# stride 32; the paper's row does not state its backbone, so it is matched to the released configuration.
# HRNetV2p backbones (mmseg's OCRNet rows) map to our hrnetv2_* names; stem and output stride do not apply to
# HRNet (None: any value of those columns matches).
BACKBONES: dict[tuple[str, str], BackboneKey] = {
    ("FPN + IFA", "ResNet-50 (unstated; released config)"): BackboneKey("resnet50", "deep", 32),
    ("FPN + IFA", "ResNet-50 deep-stem (released config)"): BackboneKey("resnet50", "deep", 32),
    ("Semantic FPN", "R-50"): BackboneKey("resnet50", "v1c", 32),
    ("Semantic FPN", "R-101"): BackboneKey("resnet101", "v1c", 32),
    ("PSPNet", "R-50-D8"): BackboneKey("resnet50", "v1c", 8),
    ("PSPNet", "R-101-D8"): BackboneKey("resnet101", "v1c", 8),
    ("PSPNet", "R-50-D32"): BackboneKey("resnet50", "v1c", 32),
    ("OCRNet", "R-101-D8"): BackboneKey("resnet101", "v1c", 8),
    ("OCRNet", "HRNetV2p-W18-Small"): BackboneKey("hrnetv2_w18_small", None, None),
    ("OCRNet", "HRNetV2p-W18"): BackboneKey("hrnetv2_w18", None, None),
    ("OCRNet", "HRNetV2p-W48"): BackboneKey("hrnetv2_w48", None, None),
}

# Metrics the check can compare: published key -> how our rows must have been evaluated.
# miou_ss: our `miou` from rows evaluated at scale 1.0 only, without flip.
# miou_ms_flip: our `miou` from rows evaluated at several scales with horizontal flip.
METRICS = ("miou_ss", "miou_ms_flip")


def parse_scales(value) -> tuple[float, ...]:
    """'0.5,0.75,1.0' (also '[0.5, 1.0]', a number, or a list) -> (0.5, 0.75, 1.0); '' -> ()."""
    if value is None:
        return ()
    if isinstance(value, (int, float)):
        return () if value != value else (float(value),)  # NaN -> ()
    if isinstance(value, (list, tuple)):
        return tuple(float(v) for v in value)
    text = str(value).strip().strip("[]()")
    return tuple(float(v) for v in re.split(r"[,\s]+", text) if v)


def protocol_of(scales, flip: bool) -> Optional[str]:
    """The published metric an evaluation protocol corresponds to, or None."""
    scales = parse_scales(scales)
    if scales == (1.0,) and not flip:
        return "miou_ss"
    if len(scales) > 1 and flip:
        return "miou_ms_flip"
    return None


_CROP = re.compile(r"(\d+)\s*x\s*(\d+)")
_BATCH = re.compile(r"batch\s+(\d+)(?:\s*x\s*(\d+))?")


def parse_crop(text: Optional[str]) -> Optional[str]:
    """'512x1024 crop, batch 8 (4x2)' -> '512x1024' (the first HxW in the text)."""
    m = _CROP.search(text or "")
    return f"{m.group(1)}x{m.group(2)}" if m else None


def parse_batch(text: Optional[str]) -> Optional[int]:
    """Total batch size stated in a crop description: 'batch 16 (4x4)' -> 16, 'batch 2x4 GPUs' -> 8."""
    m = _BATCH.search(text or "")
    if not m:
        return None
    return int(m.group(1)) * (int(m.group(2)) if m.group(2) else 1)
