"""The memory estimates of bench/host/budget.py at exact values (issue 32, row "memory budget"): a dropped term of the
eval estimate made the refusal stop triggering (ADE20K 512x2048: 0.7 -> 0.1 GiB). Every number below is worked out
by hand from the module's documented model: per input pixel, 3 input values + (3 in inference, 6 in training) x
stem/4 stem activations (+ 2 for the int64 labels in training), 4 bytes each; evaluation adds the per-class score map
at the image's size and, in slide mode, the logits stitched at each scaled size."""

from bench.host.budget import eval_bytes, forward_bytes, stem_channels
from bench.config.model import BackboneConfig

C = 150  # ADE20K classes
H, W = 512, 2048
STEM = 64  # ResNet-50, standard stem, width 1
SCORE_MAP = C * H * W * 4  # 629,145,600 bytes


def test_forward_bytes_exact():
    """Catches a dropped or changed term of forward_bytes (input, stem activations, labels, the training factor)."""
    assert stem_channels(BackboneConfig()) == STEM
    assert forward_bytes(1, 512, 512, stem=STEM) == 512 * 512 * (3 + 3 * 16) * 4 == 53_477_376
    assert forward_bytes(2, 512, 1024, training=True, stem=STEM) == 2 * 512 * 1024 * (3 + 6 * 16 + 2) * 4
    assert forward_bytes(2, 512, 1024, training=True, stem=STEM) == 423_624_704
    assert forward_bytes(1, 10, 10) == 100 * (3 + 3 * 8 / 4) * 4 == 3600  # the narrowest stem by default


def test_eval_bytes_whole_image_exact():
    """Catches: the score map term dropped (the estimate would be the largest view alone), the views' max taken
    over the last scale only, or the scaled size computed from one side. Largest view at scale 1.75: 896 x 3584."""
    want = SCORE_MAP + 896 * 3584 * 51 * 4
    assert want == 1_284_243_456
    assert eval_bytes(H, W, [1.0, 1.75, 0.5], C, stem=STEM) == want


def test_eval_bytes_slide_exact_and_above_half_a_gib():
    """Catches: the stitched logits (C x scaled size) or the window's forward dropped in slide mode. At scale 1 the
    window 512x512 costs 53,477,376 bytes and the stitched logits another 629,145,600; with the score map the total
    is 1.22 GiB, which a dropped term would cut to well under 0.7 GiB."""
    window = (512, 512)
    view_1 = 53_477_376 + C * 512 * 2048 * 4
    view_half = 53_477_376 + C * 256 * 1024 * 4
    assert view_1 > view_half
    got = eval_bytes(H, W, [0.5, 1.0], C, window=window, stem=STEM)
    assert got == SCORE_MAP + view_1 == 1_311_768_576
    assert got / 2**30 > 1.2
