"""GenReID's synthetic person world: SMPL-format people, dressed per identity, walking past
fixed cameras, written as a Market-1501 data set with a ground-truth sidecar.

    python -m reid_data.synthetic --out DIR [--ids N] [--seed S] [--height H --width W]
                                  [--cameras C]

    from reid_data.synthetic import WorldConfig, write_world, render_ground_truth
    write_world("worlds/small", WorldConfig(ids=50, cameras=4, seed=1))
    view = render_ground_truth("worlds/small", "0007_c2s1_000512_00.jpg", yaw=3.14, mode="grey")
    swap = load_ground_truth("worlds/small").render_swap([appearance_name], [structure_name])

Modules: `identities` (who people are), `clothing` (garments as per-vertex colours), `body`
(the posable body with bags, walking and standing poses), `scenes` (cameras, backgrounds,
light, degradations), `imaging` (image formation), `writer` (the world plan and the Market
layout), `ground_truth` (the sidecar and re-rendering at any yaw), `dataset` (the registered
`synthetic` data set, generated on first use).

Importing this package registers `synthetic`; the rest loads on first use.
"""
from __future__ import annotations

from ..registry import DATASETS, register
from .dataset import SYNTHETIC, build_synthetic

if SYNTHETIC.name not in DATASETS:
    register(SYNTHETIC.name)(build_synthetic)

_LAZY = {
    "WorldConfig": "writer", "write_world": "writer", "generate": "writer",
    "render_ground_truth": "ground_truth", "load_ground_truth": "ground_truth",
    "WorldGroundTruth": "ground_truth", "GroundTruthRender": "ground_truth",
    "SwapTruth": "ground_truth", "Appearance": "identities", "sample_identity": "identities",
    "dressed": "identities", "GARMENT_FIELDS": "identities",
}

__all__ = ["SYNTHETIC", "build_synthetic", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
