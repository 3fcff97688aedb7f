#!/usr/bin/env python
"""Generate every image of a folder with the structure of another image: the images FID is
computed on.

    python visual_tools/test_folder.py --checkpoint CKPT [--input DIR] [--output DIR] [--seed 0]

Each input image keeps its appearance and takes the structure of another input image, paired
by a seeded random cycle through all of them (the same seed, the same pairs). The results are

    OUTPUT/by_appearance/<identity of the appearance image>/<appearance>+<structure>.png
    OUTPUT/by_structure/<identity of the structure image>/<appearance>+<structure>.png

(the second a hard link of the first where the file system allows). Default input: the query
split of the checkpoint's data set; default output: <checkpoint>-generated beside it.

The output folder must be new or empty: the tool never deletes anything, nor adds to a folder
that holds files (FID over a mix of two runs would be wrong). It writes into a temporary folder
beside OUTPUT and renames it at the end, so an interrupted run leaves nothing half-written.
"""
from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Iterator

import torch
from tqdm import tqdm

from reid_data import denormalize
from configs.errors import command
from visual_tools import common, synthesis
from visual_tools.image_io import to_pil

Pairs = list[tuple[common.InputImage, common.InputImage]]  # (appearance, structure)


def cross_identity_batches(loaded: common.Loaded, images: list[common.InputImage], seed: int
                           ) -> Iterator[tuple[torch.Tensor, Pairs]]:
    """Batches of generated images in [0, 1], each image with the (appearance, structure) pair
    it was drawn from."""
    structures = [images[i] for i in synthesis.donors(len(images), seed)]
    size = loaded.cfg.data.test_batch_size
    batches = zip(common.batches(images, loaded), common.batches(structures, loaded))
    for k, (appearance, structure) in enumerate(tqdm(batches, total=math.ceil(len(images) / size),
                                                     desc="generating", leave=False, mininterval=2.0)):
        with torch.no_grad():
            out = denormalize(loaded.model.swap(structure, appearance))
        yield out, list(zip(images[k * size:(k + 1) * size], structures[k * size:(k + 1) * size]))


def write_folder(loaded: common.Loaded, images: list[common.InputImage], output: Path, seed: int) -> int:
    """Writes the generated images into the new folder `output`; returns how many."""
    count = 0
    with common.new_folder(output) as tmp:
        for out, pairs in cross_identity_batches(loaded, images, seed):
            for image, (appearance, structure) in zip(out, pairs):
                name = f"{Path(appearance.path).stem}+{Path(structure.path).stem}.png"
                first = tmp / "by_appearance" / appearance.identity / name
                second = tmp / "by_structure" / structure.identity / name
                first.parent.mkdir(parents=True, exist_ok=True)
                second.parent.mkdir(parents=True, exist_ok=True)
                to_pil(image).save(first)
                _link_or_copy(first, second)
                count += 1
    return count


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # file systems without hard links
        shutil.copyfile(src, dst)


@command
def main(argv=None) -> Path:
    p = common.parser(__doc__)
    p.add_argument("--output", metavar="DIR", help="a new or empty folder (default: <checkpoint>-generated)")
    args = p.parse_args(argv)
    output = Path(args.output or f"{Path(args.checkpoint).with_suffix('')}-generated")
    common.refuse_used_folder(p, output)  # before any work, so a mistake costs nothing
    loaded = common.load_run(args.checkpoint, "dgnet", args.device, args.opts)
    count = write_folder(loaded, common.input_images(loaded, args.input), output, args.seed)
    print(f"wrote {count} generated images to {output}/by_appearance and {output}/by_structure")
    return output


if __name__ == "__main__":
    main.cli()
