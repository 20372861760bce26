"""evaluate(): dataset loop, metrics, protocol keys, mode restoration, and the DDP shard + all-reduce."""
import json
import math
import os

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

from bench.config.experiment import EvalConfig
from bench.engine.evaluation.evaluate import evaluate

NUM_CLASSES = 3


class ColourModel(nn.Module):
    """Per-pixel classifier: class = argmax of the RGB channels (logits = the channels, scaled)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, NUM_CLASSES, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.eye(3).reshape(3, 3, 1, 1) * 5)
            self.conv.bias.zero_()
        self.query_at_output = False

    def forward(self, images, size=None):
        out = self.conv(images)
        if size is not None and tuple(out.shape[-2:]) != tuple(size):
            out = F.interpolate(out, size=size, mode="bilinear", align_corners=False)
        return out


class ToyDataset(torch.utils.data.Dataset):
    """Images whose brightest channel is the label, with a few flipped pixels and ignore pixels."""
    classes = ("red", "green", "blue")

    def __init__(self, n=5, seed=0):
        rng = np.random.default_rng(seed)
        self.items = []
        for k in range(n):
            h, w = int(rng.integers(12, 30)), int(rng.integers(12, 30))
            label = np.kron(rng.integers(0, NUM_CLASSES, (h // 4 + 1, w // 4 + 1)), np.ones((4, 4), int))[:h, :w]
            shown = label.copy()
            noise = rng.random((h, w)) < 0.15
            shown[noise] = rng.integers(0, NUM_CLASSES, int(noise.sum()))
            image = np.eye(3)[shown].transpose(2, 0, 1).astype(np.float32)
            label[rng.random((h, w)) < 0.1] = 255
            self.items.append((torch.from_numpy(image), torch.from_numpy(label).to(torch.uint8), shown))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i][:2]


def manual_miou(dataset):
    inter = np.zeros(NUM_CLASSES)
    union = np.zeros(NUM_CLASSES)
    for _, label, pred in dataset.items:
        label = label.numpy()
        valid = label != 255
        for c in range(NUM_CLASSES):
            inter[c] += np.sum((pred == c) & (label == c) & valid)
            union[c] += np.sum(((pred == c) | (label == c)) & valid)
    return float(np.mean(inter / union * 100))


def test_evaluate_matches_a_manual_count_and_reports_the_protocol():
    model = ColourModel().train()
    ds = ToyDataset()
    res = evaluate(model, ds, EvalConfig(), NUM_CLASSES, "cpu")
    assert res["miou"] == pytest.approx(manual_miou(ds))
    assert 0 < res["miou"] < 100 and 0 < res["boundary_iou"] < 100
    assert set(res["per_class_iou"]) == {"red", "green", "blue"}
    assert res["num_images"] == 5 and res["eval_mode"] == "whole" and res["eval_scales"] == "1.0"
    assert res["eval_flip"] is False and res["ifa_query"] == "upsample"
    assert "whole" in res["protocol"]
    assert model.training  # mode restored


def test_slide_and_flip_protocols_give_the_same_numbers_for_a_per_pixel_model():
    model = ColourModel()
    ds = ToyDataset()
    whole = evaluate(model, ds, EvalConfig(), NUM_CLASSES)
    slide = evaluate(model, ds, EvalConfig(mode="slide", crop_size=(8, 8), flip=True, batch_size=4,
                                           ifa_query="label"), NUM_CLASSES)
    for key in ("miou", "macc", "aacc", "boundary_iou"):
        assert slide[key] == pytest.approx(whole[key])
    assert slide["eval_crop"] == "8x8" and slide["eval_stride"] == "5x5" and slide["eval_flip"] is True
    assert model.query_at_output is False


def test_slide_without_a_window_size_is_refused():
    with pytest.raises(ValueError, match="eval.crop_size"):
        evaluate(ColourModel(), ToyDataset(1), EvalConfig(mode="slide"), NUM_CLASSES)


def test_transform_is_applied_to_raw_items():
    ds = ToyDataset(2)

    class Raw:
        classes = ds.classes

        def __len__(self):
            return 2

        def load(self, i):
            image, label = ds[i]
            return (image.permute(1, 2, 0).numpy() * 255).astype(np.uint8), label.numpy()

    def transform(image, label, rng=None):
        return torch.from_numpy(image).permute(2, 0, 1).float() / 255, torch.from_numpy(label).long()

    direct = evaluate(ColourModel(), ds, EvalConfig(), NUM_CLASSES)
    via = evaluate(ColourModel(), Raw(), EvalConfig(), NUM_CLASSES, transform=transform)
    assert via["miou"] == pytest.approx(direct["miou"]) and via["num_images"] == 2
    with pytest.raises(TypeError, match="transform"):
        evaluate(ColourModel(), [(torch.zeros(4, 4, 3, dtype=torch.uint8), torch.zeros(4, 4))], EvalConfig(),
                 NUM_CLASSES, class_names=["a", "b", "c"])


def _ddp_worker(rank, world, init_file, out_dir):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        model = nn.parallel.DistributedDataParallel(ColourModel())
        res = evaluate(model, ToyDataset(), EvalConfig(), NUM_CLASSES)
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
            json.dump({k: res[k] for k in ("miou", "boundary_iou", "num_images")}, f)
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(120)
def test_ddp_shards_and_all_reduces(tmp_path):
    single = evaluate(ColourModel(), ToyDataset(), EvalConfig(), NUM_CLASSES)
    mp.start_processes(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2,
                       start_method="spawn", join=True)
    for rank in range(2):
        res = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert res["num_images"] == 5
        assert math.isclose(res["miou"], single["miou"]) and math.isclose(res["boundary_iou"], single["boundary_iou"])
