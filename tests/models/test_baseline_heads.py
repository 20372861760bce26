"""Every baseline head meets the shared head contract."""
from baselines import FCNHead, FPNHead, OCRHead, PPMHead
from tests.models.head_contract import INPUT_SHAPE, NUM_CLASSES, HeadContract, make_features


class TestFPNHead(HeadContract):
    expected_params = 44661
    expected_macs = 28_120_064
    reference = (-316.9821, 775.2707)

    def make_head(self, input_shape, num_classes):
        return FPNHead(input_shape, num_classes, channels=24, scale_channels=16)


class TestPPMHead(HeadContract):
    output_stride = 32
    expected_params = 33581
    expected_macs = 1_013_216
    reference = (4.0631, 14.1312)

    def make_head(self, input_shape, num_classes):
        return PPMHead(input_shape, num_classes, channels=24)


class TestOCRHead(HeadContract):
    expected_params = 32546
    expected_macs = 56_684_000
    reference = (189.1995, 689.2769)

    def make_head(self, input_shape, num_classes):
        return OCRHead(input_shape, num_classes, channels=24, key_channels=16, region_channels=16)

    def test_training_returns_soft_region_logits_with_their_weight(self, head):
        head.train()
        out = head(make_features(INPUT_SHAPE, (64, 64), batch=2))
        assert set(out) == {"main", "regions"}
        assert out["regions"].shape == (2, NUM_CLASSES, 4, 4)  # the region FCN reads c4 (stride 16)
        assert head.extra_loss_weights == {"regions": 0.4}


class TestFCNHead(HeadContract):
    output_stride = 16
    # 3x3 conv 32->16 (4608) + BN (32) + classifier 16->5 (85); MACs at c4 = 8x16: 589,824 + 10,240, + fvcore's
    # 2 per element for eval BatchNorm (4,096).
    expected_params = 4725
    expected_macs = 604_160
    reference = (10.1183, 51.3213)

    def make_head(self, input_shape, num_classes):
        return FCNHead(input_shape, num_classes, in_feature="c4", channels=16)
