"""Data sets by name: `build_dataset("market1501", "data")`."""
from __future__ import annotations

import difflib
from typing import Callable

from . import layouts, toy
from .records import DatasetError, ReIDDataset

# name -> builder(root, **options) -> ReIDDataset; `root` is the data root or the set's folder.
DATASETS: dict[str, Callable[..., ReIDDataset]] = {}


def register(name: str):
    """Decorator adding a builder under `name`."""
    def add(builder):
        if name in DATASETS:
            raise ValueError(f"data set {name!r} is registered twice")
        DATASETS[name] = builder
        return builder
    return add


def build_dataset(name: str, root: str, **options) -> ReIDDataset:
    """Loads data set `name` from the data root `root` (e.g. "data") or from its own folder.

    Options: `train_split="train_all"` (every training image) or `"train"` (without the first
    image of each identity, which DG-Net holds out for validation); `skip_unreadable=True`
    leaves out the images that do not decode instead of stopping on them."""
    builder = DATASETS.get(name)
    if builder is None:
        close = difflib.get_close_matches(name.lower(), DATASETS, n=3, cutoff=0.4)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise DatasetError(f"unknown data set {name!r}{hint}; registered are "
                           f"{', '.join(sorted(DATASETS))}.")
    return builder(root, **options)


for _spec in layouts.BUILTIN:
    register(_spec.name)(_spec)
register(toy.TOY.name)(toy.build_toy)
