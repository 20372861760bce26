"""The model-zoo page: counts on meta tensors equal counts on real ones; one row per published row."""
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.config.model import ModelConfig
from bench.models.build import build_segmentor
from reports.zoo import count, render

LEVELS = ["c2", "c3", "c4", "c5"]


def test_meta_counts_equal_real_counts():
    cfg = ModelConfig(num_classes=19, backbone={"name": "hrnetv2_w18_small"},
                      head={"name": "ocr", "in_features": LEVELS, "in_feature_region": LEVELS, "region_kernel": 1,
                            "region_channels": None, "dropout": 0, "region_dropout": 0})
    params, gmacs = count(cfg, (64, 128))
    model = build_segmentor(cfg).eval()
    real = FlopCounterMode(display=False)
    with real, torch.no_grad():
        model(torch.zeros(1, 3, 64, 128))
    assert params == sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in model.aux_head.parameters())
    assert gmacs == real.get_total_flops() / 2e9 > 0


def test_render_has_one_row_per_published_row_and_says_why_not():
    rows = [{"dataset": "cityscapes_val", "method": "OCRNet", "backbone": "HRNetV2p-W18", "iterations": 40000,
             "miou_ss": 77.72, "kind": "published", "match": {"crop": "512x1024"}, "recipe": "cityscapes_ocr_hrnet (t)",
             "no_recipe": "", "size": (1024, 2048), "params": 12_080_036, "gmacs": 100.0},
            {"dataset": "ade20k_val", "method": "PSPNet", "backbone": "R-50-D8", "iterations": 80000,
             "miou_ss": 41.13, "kind": "published", "match": {"crop": "512x512"}, "recipe": "",
             "no_recipe": "no recipe in experiments/ trains ppm", "size": (512, 512), "params": 1e6, "gmacs": 1.0}]
    text = render(rows)
    table = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(table) == 2
    assert "| cityscapes_ocr_hrnet (t) | 1024x2048 | 12.08 | 100.0 |" in table[0]
    assert table[1].endswith("| no recipe in experiments/ trains ppm |")
    assert "1 of 2 published rows have a recipe." in text
