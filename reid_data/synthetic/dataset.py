"""The registered `synthetic` data set: ``<data.root>/synthetic``, written on first use.

The folder is in the Market-1501 layout, so it is read by the same Market-style layout the
real data sets use (`reid_data.layouts.market_style`), with any number of cameras.
"""
from __future__ import annotations

import os

from ..layouts import Spec, market_style
from ..records import ReIDDataset

SYNTHETIC = Spec("synthetic", "Synthetic person world", ("synthetic",),
                 (market_style("Market-1501 layout", None),),
                 "delete {folder} and it is generated again on first use, or write it with "
                 "python -m reid_data.synthetic --out {folder}")


def default_world():
    """The world written on first use (`writer.WorldConfig`'s defaults)."""
    from .writer import WorldConfig
    return WorldConfig()


def build_synthetic(root: str, **options) -> ReIDDataset:
    """`<root>/synthetic` (the default world), generated first when missing or empty; `root`
    may also be a world's own folder (any world written by ``python -m reid_data.synthetic``)."""
    folder = os.path.join(root, "synthetic")
    if SYNTHETIC.holds(root) is None and not (os.path.isdir(folder) and os.listdir(folder)):
        from .writer import generate
        print(f"Writing the synthetic world into {folder} (first use; about a minute) ...",
              flush=True)
        generate(folder, default_world())
    return SYNTHETIC(root, **options)
