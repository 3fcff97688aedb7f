"""PyTorch data sets over `Sample` lists and the loaders the trainers use."""
from __future__ import annotations

import os
from functools import partial
from typing import Sequence

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset

from .records import Sample
from .samplers import BatchStream, pk_batches, shuffled_batches
from .transforms import load_resized


class ImageDataset(Dataset):
    """Items: uint8 image (3, H, W), identity, camera and index in the list."""

    def __init__(self, samples: Sequence[Sample], height: int, width: int):
        self.samples, self.height, self.width = list(samples), height, width

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        s = self.samples[index]
        return {"image": load_resized(s.path, self.height, self.width),
                "pid": s.pid, "camid": s.camid, "index": index}


class UnlabeledDataset(ImageDataset):
    """Same images with the identities hidden (pid −1): what unsupervised methods may see."""

    def __getitem__(self, index: int) -> dict:
        item = super().__getitem__(index)
        item["pid"] = -1
        return item


def train_loader(dataset: ImageDataset, data_cfg, seed: int, start_batch: int = 0,
                 labels: Sequence[int] | None = None, pin_memory: bool = False) -> DataLoader:
    """Endless loader of training batches starting at `start_batch` (the iteration resumed at).

    `labels` are the identities used for PK sampling (pseudo-labels for unsupervised methods);
    by default the samples' own. Under torch.distributed each process gets its own share of the
    batches (as DistributedSampler would).
    """
    labels = [s.pid for s in dataset.samples] if labels is None else list(labels)
    camids = [s.camid for s in dataset.samples]
    if data_cfg.instances > 0:
        epoch_fn = partial(pk_batches, labels, camids, data_cfg.batch_size, data_cfg.instances,
                           camera_aware=data_cfg.camera_aware)
    else:
        epoch_fn = partial(shuffled_batches, len(dataset), data_cfg.batch_size)
    sharded = dist.is_available() and dist.is_initialized()
    stream = BatchStream(lambda rng: epoch_fn(rng=rng), seed, start_batch,
                         rank=dist.get_rank() if sharded else 0, world_size=dist.get_world_size() if sharded else 1)
    return DataLoader(dataset, batch_sampler=stream, num_workers=loader_workers(data_cfg.workers),
                      pin_memory=pin_memory, generator=_own_generator())


def test_loader(samples: Sequence[Sample], data_cfg) -> DataLoader:
    dataset = ImageDataset(samples, data_cfg.height, data_cfg.width)
    return DataLoader(dataset, batch_size=data_cfg.test_batch_size, shuffle=False,
                      num_workers=loader_workers(data_cfg.workers), generator=_own_generator())


def loader_workers(requested: int) -> int:
    """`requested` worker processes (a config's data.workers is an upper bound), at most one per core
    this process may run on: more only queue for the same cores, and torch warns on every loader."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(requested, cores)


def _own_generator() -> torch.Generator:
    # Starting worker processes draws a seed; from a private generator, not the global one, so
    # when a loader starts does not change the dropout of a resumed run.
    return torch.Generator().manual_seed(0)
