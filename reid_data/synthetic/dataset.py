"""The registered `synthetic` data set: ``<data.root>/synthetic``, written on first use.

The folder is in the Market-1501 layout, so it is read by the same Market-style layout the
real data sets use (`reid_data.layouts.market_style`), with any number of cameras. A config may
ask for another world than the suite's (`data.world`: WorldConfig fields such as seed and ids,
e.g. more people for HMR); a folder already holding a world written otherwise is refused, never
silently used.
"""
from __future__ import annotations

import dataclasses
import json
import os

from ..layouts import Spec, market_style
from ..records import DatasetError, ReIDDataset

SYNTHETIC = Spec("synthetic", "Synthetic person world", ("synthetic",),
                 (market_style("Market-1501 layout", None),),
                 "delete {folder} and it is generated again on first use, or write it with "
                 "python -m reid_data.synthetic --out {folder}")


def default_world():
    """The world written on first use (`writer.WorldConfig`'s defaults)."""
    from .writer import WorldConfig
    return WorldConfig()


def asked_world(world: dict | None):
    """The WorldConfig a config's `data.world` asks for (None: the default world)."""
    if not world:
        return default_world()
    fields = {f.name for f in dataclasses.fields(default_world())}
    unknown = sorted(set(world) - fields)
    if unknown:
        raise DatasetError(f"data.world has {', '.join(unknown)}, which a synthetic world does not; "
                           f"its settings are {', '.join(sorted(fields))}")
    settings = dataclasses.replace(default_world(), **world)
    try:
        settings.check()
    except ValueError as exc:
        raise DatasetError(f"data.world: {exc}") from None
    return settings


def _check_written(folder: str, world: dict) -> None:
    """Refuses a world on disk whose settings differ from those `world` names."""
    with open(os.path.join(folder, "ground_truth.json")) as f:
        written = json.load(f)["config"]
    differ = {k: v for k, v in world.items() if written.get(k) != v}
    if differ:
        have = ", ".join(f"{k} {written.get(k)}" for k in differ)
        want = ", ".join(f"{k} {v}" for k, v in differ.items())
        raise DatasetError(f"{folder} holds a synthetic world written with {have}, not data.world's "
                           f"{want}; point data.root at another folder, or delete this one to have "
                           f"it written")


def build_synthetic(root: str, world: dict | None = None, **options) -> ReIDDataset:
    """`<root>/synthetic` (the world `world` asks for, default the suite's), generated first when
    missing or empty; `root` may also be a world's own folder (any world written by
    ``python -m reid_data.synthetic``)."""
    settings = asked_world(world)
    folder = root if SYNTHETIC.holds(root) is not None else os.path.join(root, "synthetic")
    if not (os.path.isdir(folder) and os.listdir(folder)):
        from .writer import generate
        print(f"Writing the synthetic world into {folder} (first use; about a minute) ...",
              flush=True)
        generate(folder, settings)
    elif world:
        _check_written(folder, dict(world))
    return SYNTHETIC(root, **options)
