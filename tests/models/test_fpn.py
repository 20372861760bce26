"""Semantic-FPN head: the shared contract plus its structure (scale-head depths, input order)."""
import torch

from baselines import FPNHead
from tests.models.head_contract import INPUT_SHAPE, NUM_CLASSES, HeadContract, make_features


class TestFPNHead(HeadContract):
    expected_params = 44661
    expected_macs = 28_120_064
    reference = (-292.7061, 625.2999)

    def make_head(self, input_shape, num_classes):
        return FPNHead(input_shape, num_classes, channels=24, scale_channels=16)


def test_scale_heads_upsample_each_level_to_stride_4():
    head = FPNHead(INPUT_SHAPE, NUM_CLASSES, channels=24, scale_channels=16)
    convs = [sum(isinstance(m, torch.nn.Conv2d) for m in sh.modules()) for sh in head.scale_heads]
    ups = [sum(isinstance(m, torch.nn.Upsample) for m in sh.modules()) for sh in head.scale_heads]
    assert convs == [1, 1, 2, 3] and ups == [0, 1, 2, 3]  # strides 4, 8, 16, 32 (mmseg FPNHead)


def test_in_features_order_does_not_matter():
    torch.manual_seed(0)
    ordered = FPNHead(INPUT_SHAPE, NUM_CLASSES, channels=24, scale_channels=16).eval()
    torch.manual_seed(0)
    shuffled = FPNHead(INPUT_SHAPE, NUM_CLASSES, ("c4", "c2", "c5", "c3"), channels=24, scale_channels=16).eval()
    assert shuffled.in_features == ("c2", "c3", "c4", "c5")
    feats = make_features(INPUT_SHAPE, (64, 64))
    with torch.no_grad():
        assert torch.equal(ordered(feats), shuffled(feats))


def test_three_levels_give_stride_8():
    head = FPNHead(INPUT_SHAPE, NUM_CLASSES, ("c3", "c4", "c5"), channels=24, scale_channels=16).eval()
    assert head.output_stride == 8
    with torch.no_grad():
        assert head(make_features(INPUT_SHAPE, (97, 131))).shape == (1, NUM_CLASSES, 13, 17)
