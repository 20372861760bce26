"""The one table of display names: methods and backbones as papers write them. Plots, tables and highlights show
these; the config values (`label`) stay the key in CSVs."""
from __future__ import annotations

# (head, formulation) -> method name; formulation "" for heads that have none.
METHODS: dict[tuple[str, str], str] = {
    ("ifa", "fused"): "IFA (fused)",
    ("ifa", "reference"): "IFA (reference)",
    ("ifa", ""): "IFA",
    ("fpn", ""): "Semantic-FPN",
    ("ppm", ""): "PPM",
    ("ocr", ""): "OCR",
}

BACKBONES: dict[str, str] = {
    "resnet18": "ResNet-18",
    "resnet34": "ResNet-34",
    "resnet50": "ResNet-50",
    "resnet101": "ResNet-101",
    "hrnetv2_w18_small": "HRNetV2-W18-Small",
    "hrnetv2_w18": "HRNetV2-W18",
    "hrnetv2_w32": "HRNetV2-W32",
    "hrnetv2_w48": "HRNetV2-W48",
}


def method_name(head: str, formulation: str = "") -> str:
    """'IFA (fused)', 'Semantic-FPN', ...; an unknown head keeps its config name."""
    head, formulation = str(head or ""), str(formulation or "")
    if (head, formulation) in METHODS:
        return METHODS[(head, formulation)]
    base = METHODS.get((head, ""), head)
    return f"{base} ({formulation})" if formulation else base


def backbone_name(backbone: str, stem: str = "") -> str:
    """'ResNet-50', with ' deep-stem' for the deep stem (it changes the costs and the published match)."""
    name = BACKBONES.get(str(backbone), str(backbone))
    return name + (" deep-stem" if str(stem) == "deep" else "")
