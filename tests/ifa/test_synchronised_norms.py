"""The fused head's lean training path must not bypass a synchronised BatchNorm (DDP + SyncBN)."""
import torch
from torch import nn

from ifa import IFAHead
from tests.models.head_contract import INPUT_SHAPE, make_features


class CountingBatchNorm(nn.BatchNorm1d):
    """Stands in for SyncBatchNorm: a BatchNorm subclass whose own forward must run."""

    calls = 0

    def forward(self, x):
        CountingBatchNorm.calls += 1
        return super().forward(x)


def _swap_norms(module: nn.Module) -> None:
    for name, child in module.named_children():
        if type(child) in (nn.BatchNorm1d, nn.BatchNorm2d):
            swapped = CountingBatchNorm(child.num_features)
            swapped.load_state_dict(child.state_dict())
            setattr(module, name, swapped)
        else:
            _swap_norms(child)


def test_fused_training_calls_synchronised_norm_modules_and_matches_plain_bn():
    torch.manual_seed(0)
    plain = IFAHead(INPUT_SHAPE, 5, channels=16, mlp=(32, 16), formulation="fused").train()
    torch.manual_seed(0)
    synced = IFAHead(INPUT_SHAPE, 5, channels=16, mlp=(32, 16), formulation="fused").train()
    _swap_norms(synced)
    n_norms = sum(isinstance(m, CountingBatchNorm) for m in synced.modules())
    assert n_norms == len(INPUT_SHAPE) + 2  # the four reductions and the two hidden MLP layers
    feats = make_features(INPUT_SHAPE, (64, 96), batch=2)
    CountingBatchNorm.calls = 0
    out = synced(feats)
    assert CountingBatchNorm.calls == n_norms
    torch.testing.assert_close(out, plain(feats), rtol=1e-4, atol=1e-4)
