#!/usr/bin/env python
"""GCL's rotation figure: people turned round by a GCL checkpoint.

    python -m visual_tools.views_figure --checkpoint CKPT [--input DIR] [--renders DIR] [--count 6]
                                    [--truth] [--output FILE.png] [--seed 0]

One row per person (--count people of different identities, chosen by --seed from the input:
a folder, or by default the query split of the checkpoint's data set): the input image, then
the person generated in each of its mesh renders, at 0° (the reconstruction), 45°, ..., 315°.
With --truth (synthetic world only) each person's row is followed by the world's true views
at the same angles (the input column left blank). Renders: --renders DIR or the config's
gcl.renders, in mesh.precompute's layout. The figure goes to --output (alias --out; default
<checkpoint>-rotation.png), written atomically; its suffix picks the format.
"""
from __future__ import annotations

from pathlib import Path

import torch

from mesh.renders import ANGLES
from reid_data import denormalize
from reid_eval.generation.views import novel_views, true_views
from configs.errors import command
from visual_tools import common
from visual_tools.image_io import format_options, grid, save, to_pil


def rotation_figure(inputs: torch.Tensor, views: torch.Tensor, truth: torch.Tensor | None = None) -> torch.Tensor:
    """inputs (P, 3, H, W), generated views (P, A, 3, H, W) and optionally true views of the
    same shape, all in [0, 1] → the figure (3, H', W'): per person a row [input, views...] and,
    with `truth`, a row [blank, true views...] below it."""
    rows = torch.cat([inputs.unsqueeze(1), views], 1)  # (P, 1 + A, 3, H, W)
    filled = torch.ones(rows.shape[:2], dtype=torch.bool)
    if truth is not None:
        truth_rows = torch.cat([torch.ones_like(inputs).unsqueeze(1), truth.to(rows)], 1)
        rows = torch.stack([rows, truth_rows], 1).flatten(0, 1)  # person, its truth, next person ...
        blank = torch.ones_like(filled)
        blank[:, 0] = False
        filled = torch.stack([filled, blank], 1).flatten(0, 1)
    return grid(rows, filled)


@command
def main(argv=None) -> Path:
    p = common.parser(__doc__, trainer="gcl")
    p.add_argument("--renders", metavar="DIR", help="mesh-render folder (default: the config's gcl.renders)")
    p.add_argument("--count", type=int, default=6, help="people (rows) of the figure")
    p.add_argument("--truth", action="store_true", help="add the synthetic world's true views under each person")
    p.add_argument("--output", "--out", dest="output", metavar="FILE",
                   help="figure file (default: <checkpoint>-rotation.png)")
    args = p.parse_args(argv)
    if args.count < 1:
        p.error("--count must be at least 1")
    output = Path(args.output or f"{Path(args.checkpoint).with_suffix('')}-rotation.png")
    loaded = common.load_run(args.checkpoint, "gcl", args.device, args.opts)
    people = common.distinct_identities(common.input_images(loaded, args.input), args.count, args.seed)
    world = common.synthetic_world(loaded, people, "--truth needs") if args.truth else None
    renders = common.find_renders(people, common.render_root(loaded, args.renders),
                                  None if args.input else loaded.dataset)
    inputs, views = [], []
    for images, rendered in common.rendered_batches(people, renders, loaded):
        inputs.append(denormalize(images))
        views.append(novel_views(loaded.model, images, rendered))
    inputs, views = torch.cat(inputs), torch.cat(views)
    truth = None
    if world is not None:
        truth = true_views(world, [im.path for im in people], ANGLES, *inputs.shape[-2:]).images
    save(to_pil(rotation_figure(inputs, views, truth)), output, **format_options(output))
    print(f"written {output}")
    return output


if __name__ == "__main__":
    main.cli()
