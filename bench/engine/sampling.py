"""The training batch stream as a pure function of (seed, iteration).

Sample `slot` of the global batch at iteration `it` is the image at position it * batch + slot of the
concatenated per-epoch permutations (epoch e's permutation drawn from an rng seeded by (seed, e)), and its
augmentation draws from default_rng([seed, it, slot]). Nothing depends on what ran before, so a resumed
run replays exactly the batches an uninterrupted one would see, whatever the number of loader workers.
Under DDP, rank r of w takes the slots r, r + w, ... of each global batch (the strided split of
torch's DistributedSampler), so the union over ranks is the single-process batch.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

# Permutations draw from default_rng([seed, epoch, _EPOCH_TAG]); augmentations from [seed, iteration, slot] with
# slot < batch size, so the two streams never share a seed.
_EPOCH_TAG = 0xFFFFFFFF


@lru_cache(maxsize=8)
def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    perm = np.random.default_rng([seed, epoch, _EPOCH_TAG]).permutation(n)
    perm.setflags(write=False)
    return perm


def sample_index(seed: int, iteration: int, slot: int, batch_size: int, n: int) -> int:
    """Dataset index of `slot` in the global batch of `iteration` (each epoch visits every image once)."""
    position = iteration * batch_size + slot
    return int(epoch_permutation(seed, position // n, n)[position % n])


def sample_rng(seed: int, iteration: int, slot: int) -> np.random.Generator:
    return np.random.default_rng([seed, iteration, slot])


def rank_slots(batch_size: int, rank: int = 0, world_size: int = 1) -> list[int]:
    if batch_size % world_size:
        raise ValueError(f"global batch {batch_size} is not divisible by world size {world_size}")
    return list(range(rank, batch_size, world_size))


def batch_indices(seed: int, iteration: int, batch_size: int, n: int, rank: int = 0, world_size: int = 1) -> list[int]:
    return [sample_index(seed, iteration, s, batch_size, n) for s in rank_slots(batch_size, rank, world_size)]


class TrainSamples(Dataset):
    """Map-style dataset keyed by (iteration, slot): loads the image the stream assigns to that key and applies
    `transform(image, label, rng)` with the key's rng. Returns (image, label, iteration)."""

    def __init__(self, dataset, transform, seed: int, batch_size: int):
        if len(dataset) == 0:
            raise ValueError("the training split is empty")
        self.dataset, self.transform = dataset, transform
        self.seed, self.batch_size = int(seed), int(batch_size)

    def __len__(self):  # not used for sampling; a nominal size
        return len(self.dataset)

    def __getitem__(self, key):
        iteration, slot = key
        i = sample_index(self.seed, iteration, slot, self.batch_size, len(self.dataset))
        image, label = self.dataset.load(i)
        x, y = self.transform(image, label, sample_rng(self.seed, iteration, slot))
        return x, y, iteration


class IterationBatches(Sampler):
    """Yields, for iterations start..stop-1, the list of (iteration, slot) keys of this rank's share."""

    def __init__(self, start: int, stop: int, batch_size: int, rank: int = 0, world_size: int = 1):
        self.start, self.stop = int(start), int(stop)
        self.slots = rank_slots(batch_size, rank, world_size)

    def __iter__(self):
        for it in range(self.start, self.stop):
            yield [(it, s) for s in self.slots]

    def __len__(self):
        return max(self.stop - self.start, 0)


def batch_iteration(items) -> int:
    """The one iteration of a batch's (image, label, iteration) items."""
    iterations = {it for _, _, it in items}
    if len(iterations) != 1:
        raise RuntimeError(f"a batch mixes iterations {sorted(iterations)}")
    return iterations.pop()


def collate(items):
    iteration = batch_iteration(items)
    return torch.stack([x for x, _, _ in items]), torch.stack([y for _, y, _ in items]), iteration
