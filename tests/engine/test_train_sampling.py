"""The batch stream is a pure function of (seed, iteration), covers each epoch once, and splits over DDP ranks."""
import numpy as np
import torch
from torch.utils.data import DataLoader

from bench.engine.sampling import IterationBatches, TrainSamples, batch_indices, collate, sample_index, sample_rng


class _Images:
    """load(i): an 8x8 image whose pixels encode i (a stand-in file reader; the sampler is what is tested)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def load(self, i):
        return np.full((8, 8, 3), i, np.uint8), np.full((8, 8), i % 3, np.uint8)


def _transform(image, label, rng):
    noise = rng.integers(0, 1000)  # the augmentation draw
    return torch.tensor([float(image[0, 0, 0]), float(noise)]), torch.from_numpy(label.astype(np.int64))


def test_indices_are_a_function_of_seed_and_iteration():
    a = [batch_indices(7, it, 4, 10) for it in range(20)]
    b = [batch_indices(7, it, 4, 10) for it in reversed(range(20))][::-1]
    assert a == b
    assert [batch_indices(8, it, 4, 10) for it in range(20)] != a  # another seed, another stream
    assert sample_rng(7, 3, 1).integers(0, 2**31) == sample_rng(7, 3, 1).integers(0, 2**31)
    assert sample_rng(7, 3, 1).integers(0, 2**31) != sample_rng(7, 3, 2).integers(0, 2**31)


def test_each_epoch_visits_every_image_once():
    n, bs = 10, 4  # epochs straddle batches: 40 samples = 4 epochs
    flat = [i for it in range(10) for i in batch_indices(1, it, bs, n)]
    for e in range(4):
        assert sorted(flat[e * n:(e + 1) * n]) == list(range(n))
    assert flat[:n] != flat[n:2 * n]  # a new permutation per epoch


def test_rank_shares_partition_the_global_batch():
    for it in range(5):
        whole = batch_indices(2, it, 6, 13)
        shares = [batch_indices(2, it, 6, 13, rank=r, world_size=3) for r in range(3)]
        assert sorted(sum(shares, [])) == sorted(whole)
        assert shares[1] == whole[1::3]


def _batches(start, stop, workers, rank=0, world=1):
    ds = TrainSamples(_Images(10), _transform, seed=5, batch_size=4)
    loader = DataLoader(ds, batch_sampler=IterationBatches(start, stop, 4, rank, world), num_workers=workers,
                        collate_fn=collate, generator=torch.Generator().manual_seed(0))
    return [(it, x.tolist()) for x, _, it in loader]


def test_loader_stream_is_independent_of_workers_and_restart_point():
    full = _batches(0, 6, workers=0)
    assert [it for it, _ in full] == list(range(6))
    assert _batches(0, 6, workers=2) == full
    assert _batches(3, 6, workers=0) == full[3:]  # a resume at iteration 3 sees the same batches
    first = full[0][1]
    assert [int(v[0]) for v in first] == [sample_index(5, 0, s, 4, 10) for s in range(4)]
    assert [int(v[1]) for v in first] == [int(sample_rng(5, 0, s).integers(0, 1000)) for s in range(4)]
    half = _batches(0, 6, workers=0, rank=1, world=2)
    assert [x for _, x in half] == [x[1::2] for _, x in full]
