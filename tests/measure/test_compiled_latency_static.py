"""A compiled model's latency is timed on the graph a fresh process compiles (static shapes), whatever was compiled
before it in the process: dynamo would otherwise compile a second model of the same classes at other shapes
shape-dynamic (automatic dynamic shapes), and its latency would depend on what ran before (bench/measure/model.py,
perf/compile_history.py). The models are compiled with a recording backend (no inductor: seconds, not minutes)."""
import torch

from bench.config.model import ModelConfig
from bench.measure.model import ModelToMeasure, measure_models
from bench.models.build import build_segmentor


def _is_dynamic(gm: torch.fx.GraphModule) -> bool:
    """Whether dynamo traced the graph with a symbolic size (a SymInt input, or a tensor input of symbolic shape)."""
    for node in gm.graph.nodes:
        value = node.meta.get("example_value") if node.op == "placeholder" else None
        if isinstance(value, torch.SymInt) or (
                isinstance(value, torch.Tensor) and any(isinstance(d, torch.SymInt) for d in value.shape)):
            return True
    return False


def test_a_compiled_model_is_timed_with_the_static_graph_a_fresh_process_compiles():
    dynamic = []

    def recording_backend(gm, example_inputs):
        dynamic.append(_is_dynamic(gm))
        return gm.forward

    models = []
    for _ in range(2):  # two models of the same classes, measured one after the other at different sizes
        cfg = ModelConfig.model_validate({"backbone": {"name": "resnet18"}, "head": {"name": "fpn"}, "num_classes": 5})
        model = build_segmentor(cfg)
        model.compile(backend=recording_backend)
        models.append(model)
    measure_models([ModelToMeasure(models[0], (32, 48), warmup=1, runs=2, memory=False, rounds=1),
                    ModelToMeasure(models[1], (64, 96), warmup=1, runs=2, memory=False, rounds=1)])
    assert len(dynamic) >= 2, dynamic  # each model compiled at least once
    assert not any(dynamic), f"graphs traced shape-dynamic: {dynamic}"
