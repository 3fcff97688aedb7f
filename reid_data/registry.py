"""Data sets by name: `build_dataset("market1501", "data")`, or as a config's `data` section
describes one: `dataset_from_config(cfg.data)`."""
from __future__ import annotations

from typing import Callable

from configs.registry import Registry

from . import folder, layouts, toy
from .records import DatasetError, ReIDDataset

# name -> builder(root, **options) -> ReIDDataset; `root` is the data root or the set's folder.
DATASETS: Registry[Callable[..., ReIDDataset]] = Registry("data set", "data.dataset", DatasetError)
register = DATASETS.register
# The `data` keys a data set reads besides root, train_split and skip_unreadable.
CONFIG_OPTIONS = {folder.NAME: ("pattern", "folders"), "synthetic": ("world",)}


def build_dataset(name: str, root: str, **options) -> ReIDDataset:
    """Loads data set `name` from the data root `root` (e.g. "data") or from its own folder.

    Options: `train_split="train_all"` (every training image) or `"train"` (without the first
    image of each identity, which DG-Net holds out for validation); `skip_unreadable=True`
    leaves out the images that do not decode instead of stopping on them."""
    return DATASETS.get(name)(root, **options)


def dataset_from_config(data, **options) -> ReIDDataset:
    """The data set of a config's `data` section, with every key it reads; `options` override
    them (`skip_unreadable=True`)."""
    settings = {"train_split": data.train_split, "skip_unreadable": data.skip_unreadable,
                **{key: data[key] for key in CONFIG_OPTIONS.get(data.dataset, ())}, **options}
    return build_dataset(data.dataset, data.root, **settings)


for _spec in layouts.BUILTIN:
    register(_spec.name)(_spec)
register(toy.TOY.name)(toy.build_toy)
register(folder.NAME)(folder.build_folder)
