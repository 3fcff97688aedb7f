"""Data sets by name: `build_dataset("market1501", "data")`."""
from __future__ import annotations

from typing import Callable

from configs.registry import Registry

from . import layouts, toy
from .records import DatasetError, ReIDDataset

# name -> builder(root, **options) -> ReIDDataset; `root` is the data root or the set's folder.
DATASETS: Registry[Callable[..., ReIDDataset]] = Registry("data set", "data.dataset", DatasetError)
register = DATASETS.register


def build_dataset(name: str, root: str, **options) -> ReIDDataset:
    """Loads data set `name` from the data root `root` (e.g. "data") or from its own folder.

    Options: `train_split="train_all"` (every training image) or `"train"` (without the first
    image of each identity, which DG-Net holds out for validation); `skip_unreadable=True`
    leaves out the images that do not decode instead of stopping on them."""
    return DATASETS.get(name)(root, **options)


for _spec in layouts.BUILTIN:
    register(_spec.name)(_spec)
register(toy.TOY.name)(toy.build_toy)
