"""Which images go into each batch.

Every epoch's batches are a function of (seed, epoch) alone, and `BatchStream` can start at any
batch number: a run resumed at iteration n sees exactly the batches of a run that never stopped.
"""
from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Callable, Iterator, Sequence

import numpy as np

EpochFn = Callable[[np.random.Generator], list]


def shuffled_batches(n: int, batch_size: int, rng: np.random.Generator) -> list[list[int]]:
    """One epoch of plain shuffling; the last incomplete batch is dropped."""
    order = rng.permutation(n)
    return [order[i:i + batch_size].tolist() for i in range(0, n - batch_size + 1, batch_size)]


def pk_batches(labels: Sequence[int], camids: Sequence[int], batch_size: int, instances: int,
               rng: np.random.Generator, camera_aware: bool = False) -> list[list[int]]:
    """One epoch of identity-balanced batches: P identities × K instances (K = `instances`).

    Every identity is cut into groups of K of its images (identities with fewer images are
    filled up by drawing again); batches take one group from each of P random identities until
    fewer than P identities have groups left. Labels < 0 (unclustered images) are left out.
    With `camera_aware`, an identity's images are dealt round-robin over its cameras first, so
    each group spans as many cameras as the identity has.
    """
    if batch_size % instances:
        raise ValueError(f"batch size {batch_size} is not a multiple of instances {instances}")
    p = batch_size // instances
    by_label: dict[int, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        if label >= 0:
            by_label[int(label)].append(index)
    if len(by_label) < p:
        raise ValueError(f"a batch needs {p} identities but the data have only {len(by_label)}")
    groups: dict[int, list[list[int]]] = {}
    for label in sorted(by_label):
        order = _camera_round_robin(by_label[label], camids, rng) if camera_aware \
            else rng.permutation(by_label[label]).tolist()
        if len(order) < instances:
            order += rng.choice(order, instances - len(order)).tolist()
        groups[label] = [order[i:i + instances] for i in range(0, len(order) - instances + 1, instances)]
    batches = []
    while len(groups) >= p:
        chosen = rng.choice(sorted(groups), p, replace=False)
        batch = []
        for label in chosen:
            batch += groups[label].pop(0)
            if not groups[label]:
                del groups[label]
        batches.append(batch)
    return batches


def _camera_round_robin(indices: list[int], camids: Sequence[int], rng: np.random.Generator) -> list[int]:
    by_cam: dict[int, list[int]] = defaultdict(list)
    for i in rng.permutation(indices).tolist():
        by_cam[int(camids[i])].append(i)
    queues = [by_cam[c] for c in rng.permutation(sorted(by_cam)).tolist()]
    order = []
    for depth in range(max(len(q) for q in queues)):
        order += [q[depth] for q in queues if depth < len(q)]
    return order


class BatchStream:
    """Endless batches of indices for `DataLoader(batch_sampler=...)`, starting at batch `start`.

    With `world_size` > 1 (data-parallel processes) the stream is dealt round-robin: at iteration i,
    process `rank` gets batch i·world_size + rank of the one shared stream.
    """

    def __init__(self, epoch_fn: EpochFn, seed: int, start: int = 0, rank: int = 0, world_size: int = 1):
        self.epoch_fn, self.seed, self.start = epoch_fn, seed, start
        self.rank, self.world_size = rank, world_size

    def epoch(self, number: int) -> list[list[int]]:
        return self.epoch_fn(np.random.default_rng([self.seed, number]))

    def __iter__(self) -> Iterator[list[int]]:
        return itertools.islice(self._all(self.start * self.world_size + self.rank), 0, None, self.world_size)

    def _all(self, skip: int) -> Iterator[list[int]]:
        number = 0
        while True:
            batches = self.epoch(number)
            if not batches:
                raise ValueError("an epoch yields no batch: the training set is smaller than a batch")
            if skip < len(batches):
                yield from batches[skip:]
                skip = 0
            else:
                skip -= len(batches)
            number += 1
