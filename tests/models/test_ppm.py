"""PPM (PSPNet) head: the shared contract plus its pyramid and global context."""
import torch

from baselines import PPMHead
from tests.models.head_contract import INPUT_SHAPE, NUM_CLASSES, HeadContract, make_features


class TestPPMHead(HeadContract):
    output_stride = 32
    expected_params = 33581
    expected_macs = 1_013_216
    reference = (-3.4090, 6.8244)

    def make_head(self, input_shape, num_classes):
        return PPMHead(input_shape, num_classes, channels=24)


def test_pyramid_branches_and_bottleneck_width():
    head = PPMHead(INPUT_SHAPE, NUM_CLASSES, channels=24, pool_scales=(1, 2, 3, 6))
    assert [p[0].output_size for p in head.pools] == [1, 2, 3, 6]
    assert head.bottleneck[0].in_channels == INPUT_SHAPE["c5"].channels + 4 * 24


def test_pooled_context_reaches_every_pixel():
    """The 1x1 pool makes each output pixel depend on the whole map: change one corner, the far corner moves."""
    head = PPMHead(INPUT_SHAPE, NUM_CLASSES, channels=24).eval()
    feats = make_features(INPUT_SHAPE, (256, 256))
    changed = {k: v.clone() for k, v in feats.items()}
    changed["c5"][..., 0, 0] += 10
    with torch.no_grad():
        a, b = head(feats), head(changed)
    assert not torch.allclose(a[..., -1, -1], b[..., -1, -1])
