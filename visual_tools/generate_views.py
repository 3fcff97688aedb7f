#!/usr/bin/env python
"""Novel views of every input image by a GCL checkpoint, as image folders.

    python -m visual_tools.generate_views --checkpoint CKPT --output DIR [--input DIR]
        [--split query|gallery|test|train] [--renders DIR] [--angles 45 90 ...]

Each input image's person is generated in its mesh render at each angle of --angles (degrees,
of 0 45 ... 315; default all, 0 being the reconstruction) and written, at the model's image
size, under the input's file name:

    OUTPUT/view_A/NAME

Input: a folder (--input) or a split of the checkpoint's data set (--split; test = query and
gallery). Renders: --renders DIR or the config's gcl.renders, in mesh.precompute's layout.

The output folder (--output, alias --out) must be new or empty: the tool never deletes
anything nor adds to a folder that holds files. It writes into a temporary folder beside it
and renames that at the end, so an interrupted run leaves nothing half-written.
"""
from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from mesh.renders import ANGLES
from reid_data import DatasetError
from reid_eval.generation.views import novel_views
from configs.errors import command
from visual_tools import common
from visual_tools.image_io import format_options, to_pil


def view_folder(angle: int) -> str:
    return f"view_{angle}"


def write_views(loaded: common.Loaded, images: list[common.InputImage], renders, angles: list[int],
                output: Path) -> int:
    """Writes each image's view at each angle into the new folder `output`; returns how many."""
    names = [os.path.basename(im.path) for im in images]
    twice = [n for n, c in Counter(names).items() if c > 1]
    if twice:
        raise DatasetError(f"two input images are named {twice[0]}, and the views keep the input's file "
                           f"names; give a folder whose image names are distinct")
    count, size = 0, loaded.cfg.data.test_batch_size
    with common.new_folder(output) as tmp:
        for angle in angles:
            (tmp / view_folder(angle)).mkdir()
        batches = common.rendered_batches(images, renders, loaded)
        for k, (x, r) in enumerate(tqdm(batches, total=math.ceil(len(images) / size), desc="generating",
                                        leave=False, mininterval=2.0)):
            views = novel_views(loaded.model, x, r)  # (B, A, 3, H, W)
            for name, person in zip(names[k * size:(k + 1) * size], views):
                for angle, view in zip(angles, person):
                    to_pil(view).save(tmp / view_folder(angle) / name, **format_options(name))
                    count += 1
    return count


@command
def main(argv=None) -> Path:
    p = common.parser(__doc__, trainer="gcl")
    p.add_argument("--output", "--out", dest="output", required=True, metavar="DIR", help="a new or empty folder")
    p.add_argument("--split", choices=("query", "gallery", "test", "train"), default="query",
                   help="data set images without --input (test: query + gallery)")
    p.add_argument("--renders", metavar="DIR", help="mesh-render folder (default: the config's gcl.renders)")
    p.add_argument("--angles", type=int, nargs="+", choices=ANGLES, default=list(ANGLES), metavar="A",
                   help=f"angles in degrees, of {' '.join(map(str, ANGLES))} (default: all)")
    args = p.parse_args(argv)
    output = Path(args.output)
    common.refuse_used_folder(p, output)  # before any work, so a mistake costs nothing
    angles = list(dict.fromkeys(args.angles))
    loaded = common.load_run(args.checkpoint, "gcl", args.device, args.opts)
    images = common.input_images(loaded, args.input, split=args.split)
    renders = common.find_renders(images, common.render_root(loaded, args.renders),
                                  None if args.input else loaded.dataset, angles)
    count = write_views(loaded, images, renders, angles, output)
    print(f"wrote {count} views of {len(images)} images to {output}/view_{{{','.join(map(str, angles))}}}")
    return output


if __name__ == "__main__":
    main.cli()
