"""The auxiliary FCN head: the shared contract (its numbers are small enough to check by hand)."""
from baselines import FCNHead
from tests.models.head_contract import HeadContract


class TestFCNHead(HeadContract):
    output_stride = 16
    # 3x3 conv 32->16 (4608) + BN (32) + classifier 16->5 (85); MACs at c4 = 8x16: 589,824 + 10,240, + fvcore's
    # 2 per element for eval BatchNorm (4,096).
    expected_params = 4725
    expected_macs = 604_160
    reference = (4.2298, 11.7143)

    def make_head(self, input_shape, num_classes):
        return FCNHead(input_shape, num_classes, in_feature="c4", channels=16)
