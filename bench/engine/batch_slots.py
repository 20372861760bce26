"""Training batches handed from loader workers to the training process through shared-memory slots made once.

torch's default transport makes every batch tensor a new shared-memory file: the worker creates and fills it, the
training process receives its descriptor over a socket (a handshake per tensor), maps it, faults its pages in and
unmaps it after the step (about 1.8 ms of the training process's CPU per 256x256 batch of 2 on this project's CPU
host, and as much again in the worker). Here the training process makes `count` slots before the workers start
(they inherit the mappings, or receive them once when spawned), a worker stacks the batch of iteration `it`
straight into slot `it % count` and sends only (slot, iteration), and the training process reads the slot in place.

Why a slot is not overwritten while it is read: a DataLoader has at most prefetch_factor * num_workers batches
requested beyond the last one it returned, and asks for the next only when it returns one. Slot `it % count` is next
written for iteration it + count, requested when the loader returns iteration it + count - in_flight; with
count = in_flight + 2 that is it + 2, i.e. after the consumer has finished iteration it and asked for the one after.
A batch's tensors are therefore valid until the consumer's second `next()` after taking it (the trainer uses a batch
only within its own iteration). Iterations must be consecutive (IterationBatches), and the consumer takes them in
order (the DataLoader's default).
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch.utils.data import get_worker_info

from bench.engine.sampling import batch_iteration, collate


class Slot(NamedTuple):
    """What a worker sends instead of the tensors: where the batch of `iteration` lies."""
    index: int
    iteration: int


class BatchSlots:
    """collate_fn for a DataLoader with workers, and `take` for its output in the training process.

    images_shape / labels_shape: one rank's batch, e.g. (2, 3, 256, 256) float32 and (2, 256, 256) int64 (the train
    transform pads every sample to the crop size). A batch of another shape or dtype travels the default way."""

    def __init__(self, images_shape: Sequence[int], labels_shape: Sequence[int], in_flight: int,
                 images_dtype: torch.dtype = torch.float32, labels_dtype: torch.dtype = torch.int64):
        self.count = int(in_flight) + 2
        self.images = torch.empty((self.count, *images_shape), dtype=images_dtype).share_memory_()
        self.labels = torch.empty((self.count, *labels_shape), dtype=labels_dtype).share_memory_()

    def __call__(self, items):
        if get_worker_info() is None:  # in the training process itself: nothing to hand over
            return collate(items)
        iteration = batch_iteration(items)
        k = iteration % self.count
        images, labels = self.images[k], self.labels[k]
        if not (_fits(images, [x for x, _, _ in items]) and _fits(labels, [y for _, y, _ in items])):
            return collate(items)
        torch.stack([x for x, _, _ in items], out=images)
        torch.stack([y for _, y, _ in items], out=labels)
        return Slot(k, iteration)

    def take(self, batch):
        """The DataLoader's output as (images, labels, iteration); a slot's tensors are views of it (module doc)."""
        if isinstance(batch, Slot):
            return self.images[batch.index], self.labels[batch.index], batch.iteration
        return batch


def _fits(slot: torch.Tensor, tensors: list) -> bool:
    return len(tensors) == slot.shape[0] and all(t.dtype == slot.dtype and t.shape == slot.shape[1:] for t in tensors)
