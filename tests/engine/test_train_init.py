"""`ifa-bench train --init CKPT`: the run starts from the given weights (ifa-bench or a converted foreign checkpoint)."""
import json

import torch

from bench.cli import main
from bench.config.model import ModelConfig
from bench.models import build_segmentor
from tests.engine.train_helpers import tiny_dict


def test_train_starts_from_init_weights(tmp_path, capsys):
    cfg = tiny_dict(tmp_path / "data", train={"iterations": 1, "checkpoint_every": 1, "lr": 1e-12, "min_lr": 0.0, "warmup_iters": 0})
    config = tmp_path / "exp.yaml"
    config.write_text(json.dumps(cfg))
    torch.manual_seed(123)  # not the run's seed: the initial weights differ from a fresh build
    init = build_segmentor(ModelConfig.model_validate(cfg["model"])).state_dict()
    torch.save({"model": init}, tmp_path / "init.pt")
    out = tmp_path / "run"
    assert main(["train", str(config), "--out", str(out), "--init", str(tmp_path / "init.pt"), "--no-progress"]) == 0
    state = torch.load(out / "checkpoints" / "iter_0000001.pt", weights_only=True)["model"]
    key = "backbone.layer1.0.conv1.weight"
    assert torch.allclose(state[key], init[key], atol=1e-6)
    torch.manual_seed(3)
    fresh = build_segmentor(ModelConfig.model_validate(cfg["model"])).state_dict()
    assert not torch.allclose(fresh[key], init[key], atol=1e-3)
    # a checkpoint without the auxiliary head cannot initialise training
    torch.save({"model": {k: v for k, v in init.items() if not k.startswith("aux_head.")}}, tmp_path / "noaux.pt")
    capsys.readouterr()
    assert main(["train", str(config), "--out", str(tmp_path / "run2"), "--init", str(tmp_path / "noaux.pt")]) == 2
    assert "aux_head." in capsys.readouterr().err and not (tmp_path / "run2").exists()
