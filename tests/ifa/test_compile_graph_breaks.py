"""torch.compile traces the IFA head as one graph at a shape it has compiled before, in both formulations, training
and eval.

The first compiled call at a shape builds its plans (torch.unique, .item(): data-dependent, so dynamo breaks there);
the next one recompiles with the plans cached, and that graph is what a compiled training or evaluation then runs
(perf/graph_breaks.py measures the whole segmentor)."""
import contextlib

import pytest
import torch

from ifa import IFAHead
from tests.models.head_contract import INPUT_SHAPE, make_features


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("formulation", ["reference", "fused"])
def test_a_warm_head_compiles_without_graph_breaks(formulation, train):
    torch.manual_seed(0)
    head = IFAHead(INPUT_SHAPE, 5, channels=8, mlp=(16, 8), formulation=formulation).train(train)
    feats = make_features(INPUT_SHAPE, (32, 48), batch=2)
    with contextlib.nullcontext() if train else torch.inference_mode():
        torch._dynamo.explain(head)(feats)  # the first compiled call at this shape: plans built
        torch._dynamo.reset()
        out = torch._dynamo.explain(head)(feats)
    assert out.graph_break_count == 0, [str(b.reason).splitlines()[0] for b in out.break_reasons]
    assert out.graph_count == 1
