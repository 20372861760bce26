"""train_experiment under torch.distributed (2 CPU ranks, gloo): SyncBN on CPU, the batch split, rank 0 writes."""
import json
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from bench.engine.distributed import CPUSyncBatchNorm, convert_sync_batchnorm
from bench.engine.run_dir import read_metrics
from tests.engine.train_helpers import tiny_config


def _init(rank, world, init_file):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)


def _check_syncbn(rank, out):
    torch.manual_seed(0)
    x = torch.randn(4, 3, 5, 5, requires_grad=True)  # the global batch; each rank takes its half
    bn = convert_sync_batchnorm(torch.nn.Sequential(torch.nn.BatchNorm2d(3)))[0]
    assert isinstance(bn, CPUSyncBatchNorm)
    part = x[rank * 2:(rank + 1) * 2].detach().requires_grad_(True)
    y = bn(part)
    (y * torch.arange(1.0, 4.0).view(1, 3, 1, 1)).pow(2).sum().backward()
    torch.save({"y": y.detach(), "grad": part.grad, "running_var": bn.running_var}, f"{out}/syncbn{rank}.pt")


def _worker(rank, world, init_file, data_root, out):
    """One spawn for both checks (process start-up dominates on 2 cores)."""
    _init(rank, world, init_file)
    try:
        from bench.engine import train_experiment

        _check_syncbn(rank, Path(out).parent)

        cfg = tiny_config(data_root, train={"iterations": 6, "checkpoint_every": 3})
        final = train_experiment(cfg, out, progress=False)
        with open(f"{out}.rank{rank}.json", "w") as f:
            json.dump({"miou": final["miou"], "world_size": final["world_size"]}, f)
    finally:
        dist.destroy_process_group()


def _assert_syncbn_matches_batchnorm_over_the_global_batch(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(4, 3, 5, 5, requires_grad=True)
    bn = torch.nn.BatchNorm2d(3)
    y = bn(x)
    (y * torch.arange(1.0, 4.0).view(1, 3, 1, 1)).pow(2).sum().backward()
    r = [torch.load(tmp_path / f"syncbn{i}.pt", weights_only=True) for i in range(2)]
    torch.testing.assert_close(torch.cat([r[0]["y"], r[1]["y"]]), y.detach(), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(torch.cat([r[0]["grad"], r[1]["grad"]]), x.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(r[0]["running_var"], bn.running_var, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_two_rank_training_with_cpu_syncbn(tmp_path):
    from bench.data import build_dataset

    data_root = tmp_path / "data"
    cfg = tiny_config(data_root)
    build_dataset(cfg.data, "train")  # generate once, before the ranks start
    out = tmp_path / "run"
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(data_root), str(out)), nprocs=2, join=True)
    _assert_syncbn_matches_batchnorm_over_the_global_batch(tmp_path)
    ranks = [json.loads((tmp_path / f"run.rank{i}.json").read_text()) for i in range(2)]
    assert ranks[0] == ranks[1] and ranks[0]["world_size"] == 2  # evaluation is all-reduced
    final = json.loads((out / "final.json").read_text())
    assert final["world_size"] == 2 and final["miou"] == pytest.approx(ranks[0]["miou"])
    records = read_metrics(out / "metrics.jsonl")
    assert [r["iter"] for r in records if r["kind"] == "train"] == list(range(1, 7))  # rank 0 only, once each
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["iter_0000003.pt", "iter_0000006.pt",
                                                                       "last.pt"]
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert len(state["rng"]) == 2 and not any(k.startswith("module.") for k in state["model"])
