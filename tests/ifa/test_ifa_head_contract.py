"""IFAHead against the shared head contract (tests/models/head_contract.py), in both formulations."""
from ifa import IFAHead
from tests.models.head_contract import HeadContract

# hidden Linear biases feed a BatchNorm, which cancels them: their gradient is 0 up to rounding
_BIASES_BEFORE_BN = ("mlp.linears.0.bias", "mlp.linears.1.bias", "mlp.linears.2.bias")


class _IFAContract(HeadContract):
    formulation: str
    expected_params = 6453
    reference = (-80.8048, 767.8260)  # same parameters, same logits in both formulations
    # at the default (stride-4) query grid every query sits on a c2 cell centre: rel = 0, so the c2 PE
    # frequencies get no gradient (true of the released model too)
    zero_grad_ok = _BIASES_BEFORE_BN + ("pe.0.freq",)

    def make_head(self, input_shape, num_classes):
        return IFAHead(input_shape, num_classes, channels=8, mlp=(32, 16, 16), formulation=self.formulation)


class TestIFAHeadReference(_IFAContract):
    formulation = "reference"
    # reductions 403,456 + MLP 10,649,600 (2,048 queries x 5,200) + sin/cos arguments 196,608
    # + BatchNorm 305,664 (fvcore: 2 per element in eval)
    expected_macs = 11_555_328


class TestIFAHeadFused(_IFAContract):
    formulation = "fused"
    # reductions 403,456 + projections 696,320 (2,720 cells x 32 x 8) + later layers 1,736,704
    # + PE tiles 72,760 (85 phase entries x (26 x 32 + 24)); BatchNorm folded
    expected_macs = 2_909_240
