"""A compiled IFA head runs as one graph from its second call at a shape on, in both formulations, training and eval.

The first call at a shape builds the head's plans (torch.unique, .item(): data-dependent, so dynamo breaks there);
the later calls reuse them, and those are the calls a compiled training or evaluation repeats
(perf/graph_breaks.py measures the whole segmentor)."""
import contextlib

import pytest
import torch

from ifa import IFAHead
from tests.models.head_contract import INPUT_SHAPE, make_features


@pytest.mark.slow  # dynamo traces the head 2-3 times per case: ~1 min per case under load, seconds idle
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("formulation", ["reference", "fused"])
def test_a_compiled_head_runs_one_graph_per_call_after_the_first(formulation, train):
    runs = []

    def counting_backend(gm, example_inputs):  # dynamo's graphs, run eagerly, counted
        def run(*args):
            runs.append(gm)
            return gm.forward(*args)
        return run

    torch.manual_seed(0)
    head = IFAHead(INPUT_SHAPE, 5, channels=8, mlp=(16, 8), formulation=formulation).train(train)
    feats = make_features(INPUT_SHAPE, (32, 48), batch=2)
    torch._dynamo.reset()
    compiled = torch.compile(head, backend=counting_backend)
    with contextlib.nullcontext() if train else torch.inference_mode():
        compiled(feats)  # the first call at this shape: plans built, graph breaks
        for _ in range(2):
            runs.clear()
            out = compiled(feats)
            assert len(runs) == 1
    assert torch.allclose(out, head(feats), atol=1e-5)
