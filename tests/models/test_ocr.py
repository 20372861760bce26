"""OCR head: the shared contract, the soft-region output, and the object-context math written out directly."""
import torch
import torch.nn.functional as F

from baselines import OCRHead
from tests.models.head_contract import INPUT_SHAPE, NUM_CLASSES, HeadContract, make_features


ALL_LEVELS = ("c2", "c3", "c4", "c5")  # the HRNet-style concat at stride 4 (the default reads c5 alone)


def _small(input_shape=INPUT_SHAPE, **kw):
    kw.setdefault("in_features", ALL_LEVELS)
    return OCRHead(input_shape, NUM_CLASSES, channels=24, key_channels=16, region_channels=16, **kw)


class TestOCRHead(HeadContract):
    expected_params = 32546
    expected_macs = 56_684_000
    reference = (157.0482, 307.9232)

    def make_head(self, input_shape, num_classes):
        return OCRHead(input_shape, num_classes, in_features=ALL_LEVELS, channels=24, key_channels=16,
                       region_channels=16)


def test_training_returns_soft_region_logits_with_their_weight():
    head = _small(region_loss_weight=0.25).train()
    out = head(make_features(INPUT_SHAPE, (64, 64), batch=2))
    assert set(out) == {"main", "regions"}
    assert out["main"].shape == (2, NUM_CLASSES, 16, 16)
    assert out["regions"].shape == (2, NUM_CLASSES, 4, 4)  # the region FCN reads c4 (stride 16)
    assert head.extra_loss_weights == {"regions": 0.25}


def test_single_feature_like_mmseg_resnet_ocr():
    head = _small(in_features=("c5",)).eval()
    assert head.output_stride == 32 and head.bottleneck[0].in_channels == INPUT_SHAPE["c5"].channels
    with torch.no_grad():
        assert head(make_features(INPUT_SHAPE, (97, 131))).shape == (1, NUM_CLASSES, 4, 5)


def test_object_context_matches_a_direct_computation():
    """Spatial gather = softmax over pixels; attention = softmax over regions of q.k / sqrt(key_channels)."""
    head = _small().eval()
    feats = make_features(INPUT_SHAPE, (64, 96), seed=2)
    grid = (16, 24)
    with torch.no_grad():
        got = head(feats)
        x = torch.cat([F.interpolate(f, size=grid, mode="bilinear", align_corners=False) for f in feats.values()], 1)
        pixels = head.bottleneck(x)
        probs = F.interpolate(head.region_head(feats), size=grid, mode="bilinear", align_corners=False)
        probs = probs.flatten(2).softmax(dim=-1)  # N, K, P
        objects = torch.einsum("nkp,ncp->nck", probs, pixels.flatten(2))[..., None]  # N, C, K, 1
        att = head.attention
        q, k, v = att.query(pixels), att.key(objects)[..., 0], att.value(objects)[..., 0]
        weights = (torch.einsum("nchw,nck->nhwk", q, k) / 16 ** 0.5).softmax(dim=-1)
        context = torch.einsum("nhwk,nck->nchw", weights, v)
        want = head.cls(att.fuse(torch.cat([att.out(context), pixels], dim=1)))
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
