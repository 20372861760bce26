"""Loader workers hand batches over through shared-memory slots (bench/engine/batch_slots.py): the training process
sees exactly the batches of the default transport, slots are reused without a batch being overwritten while it is
in use, and the engine's own training batches fill them (no fallback)."""
import time

import numpy as np
import torch
from torch.utils.data import DataLoader

from bench.engine import train_experiment
from bench.engine.batch_slots import BatchSlots, Slot
from bench.engine.run_dir import read_metrics
from bench.engine.sampling import IterationBatches, TrainSamples, collate
from tests.engine.train_helpers import tiny_config


class _Images:
    """An image whose pixels encode its index, so a batch shows which samples it holds."""

    def __len__(self):
        return 10

    def load(self, i):
        return np.full((4, 4, 3), i, np.uint8), np.full((4, 4), i % 3, np.uint8)


def _transform(image, label, rng):
    noise = float(rng.integers(0, 1000))
    return torch.full((3, 4, 4), float(image[0, 0, 0]) + noise / 1000), torch.from_numpy(label.astype(np.int64))


def _stream(workers, slots=None, stop=12):
    loader = DataLoader(TrainSamples(_Images(), _transform, seed=5, batch_size=2),
                        batch_sampler=IterationBatches(0, stop, 2), num_workers=workers,
                        collate_fn=slots if slots is not None else collate, prefetch_factor=2 if workers else None)
    take = slots.take if slots is not None else (lambda b: b)
    out = []
    for raw in loader:
        x, y, it = take(raw)
        out.append((it, x.clone(), y.clone(), isinstance(raw, Slot)))
    return out


def _same(a, b):
    return [it for it, *_ in a] == [it for it, *_ in b] and all(
        torch.equal(x1, x2) and torch.equal(y1, y2) for (_, x1, y1, _), (_, x2, y2, _) in zip(a, b))


def test_slots_carry_the_default_transports_batches():
    reference = _stream(0)
    slots = BatchSlots((2, 3, 4, 4), (2, 4, 4), in_flight=2)
    through_slots = _stream(1, slots)
    assert all(used for *_, used in through_slots)  # every batch came through a slot (12 batches, 4 slots)
    assert _same(through_slots, reference)
    assert _same(_stream(2, BatchSlots((2, 3, 4, 4), (2, 4, 4), in_flight=4)), reference)


def test_a_batch_stays_intact_until_the_consumer_asks_for_the_one_after_next():
    slots = BatchSlots((2, 3, 4, 4), (2, 4, 4), in_flight=2)
    reference = {it: x for it, x, _, _ in _stream(0)}
    loader = DataLoader(TrainSamples(_Images(), _transform, seed=5, batch_size=2),
                        batch_sampler=IterationBatches(0, 12, 2), num_workers=1, collate_fn=slots, prefetch_factor=2)
    held = None
    for raw in loader:
        x, _, it = slots.take(raw)
        if held is not None:  # the previous batch, read after the loader has handed out this one
            time.sleep(0.05)  # and the worker has had time to fill every slot it may
            assert torch.equal(held[1], reference[held[0]]), held[0]
        held = (it, x)


def test_a_batch_of_another_shape_travels_the_default_way():
    slots = BatchSlots((2, 3, 8, 8), (2, 8, 8), in_flight=2)  # the samples are 4x4
    out = _stream(1, slots)
    assert not any(used for *_, used in out)
    assert _same(out, _stream(0))


def test_the_engine_trains_bitwise_alike_with_and_without_loader_workers(tmp_path, monkeypatch):
    """With a worker every batch comes through a slot: the default transport, the fallback for a batch that does not
    fit (the train transform's shapes or dtypes changed), fails the run here (the worker is forked with this patch)."""
    def no_fallback(items):
        raise AssertionError("a training batch did not fit the slots")

    losses, weights = {}, {}
    for workers in (0, 1):
        if workers:
            monkeypatch.setattr("bench.engine.batch_slots.collate", no_fallback)
        cfg = tiny_config(tmp_path / "data", data={"num_workers": workers},
                          train={"iterations": 12, "checkpoint_every": 12, "loss": "ce"})
        train_experiment(cfg, tmp_path / f"run{workers}", progress=False)
        losses[workers] = [(r["iter"], r["loss"]) for r in read_metrics(tmp_path / f"run{workers}" / "metrics.jsonl")
                           if r["kind"] == "train"]
        weights[workers] = torch.load(tmp_path / f"run{workers}" / "checkpoints" / "iter_0000012.pt",
                                      weights_only=True)["model"]
    assert len(losses[1]) == 12 and losses[1] == losses[0]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
