"""model.compile keeps eager's dropout: the same seed gives the same masks, so compiled and eager runs train alike."""
import pytest
import torch
from torch import nn

from bench.config.model import ModelConfig
from bench.host.compiled import maybe_compile


class _Net(nn.Module):  # a module of this file: dynamo skips a top-level forward of torch's own (nn.Sequential)
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Conv2d(3, 8, 1), nn.Dropout2d(0.1), nn.Conv2d(8, 8, 1), nn.Dropout(0.3))

    def forward(self, x):
        return self.layers(x)


@pytest.mark.slow  # one inductor compile of a tiny module: ~30 s on 2 cores
def test_compiled_model_draws_eagers_dropout_masks(tmp_path):
    torch.manual_seed(0)
    model = _Net().train()
    x = torch.randn(2, 3, 16, 16)
    torch.manual_seed(5)
    eager = model(x)
    cfg = ModelConfig.model_validate({"num_classes": 2, "compile": True, "compile_cache": str(tmp_path)})
    maybe_compile(model, cfg)
    torch.manual_seed(5)
    compiled = model(x)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # it did compile
    assert torch.equal(eager == 0, compiled == 0)
    assert torch.allclose(eager, compiled, atol=1e-5)
