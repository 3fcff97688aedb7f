"""A contact sheet of a written world: identities (rows) × their images, camera by camera.

    python -m reid_data.synthetic.preview WORLD OUT.png [--ids 16] [--columns 12] [--start 0]
        [--rotations]

Each row is one benchmark identity (by pid); its images are taken in turn from each camera it
was seen by, so the columns cycle through its cameras. ``--rotations`` appends, per row, the
true grey structure views of the row's first image at 8 yaws, 45° apart
(`ground_truth.render_ground_truth`).
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from PIL import Image

from configs.errors import command

from .ground_truth import load_ground_truth
from .writer import SPLIT_FOLDERS


def contact_sheet(world, ids: int = 16, columns: int = 12, start: int = 0,
                  rotations: bool = False, gap: int = 2) -> Image.Image:
    gt = load_ground_truth(world)
    H, W = gt.height, gt.width
    by_identity: dict[int, list] = {}
    for r in gt.images:
        if r["pid"] > 0:
            by_identity.setdefault(r["identity"], []).append(r)
    chosen = sorted(by_identity, key=lambda i: gt.identities[i]["pid"])[start:start + ids]
    extra = 8 if rotations else 0
    sheet = np.full((len(chosen) * (H + gap), (columns + extra) * (W + gap) + (gap * 3 if extra
                                                                               else 0), 3),
                    255, np.uint8)
    for row, ident in enumerate(chosen):
        recs = sorted(by_identity[ident], key=lambda r: (r["camid"], r["frame"]))
        cams = sorted({r["camid"] for r in recs})
        per_cam = {c: [r for r in recs if r["camid"] == c] for c in cams}
        picks, k = [], 0
        while len(picks) < min(columns, len(recs)):
            for c in cams:
                if k < len(per_cam[c]) and len(picks) < columns:
                    picks.append(per_cam[c][k])
            k += 1
        y = row * (H + gap)
        for col, r in enumerate(picks):
            img = Image.open(Path(world) / SPLIT_FOLDERS[r["split"]] / r["name"]).convert("RGB")
            x = col * (W + gap)
            sheet[y:y + H, x:x + W] = np.asarray(img)
        if rotations:
            first = recs[0]
            yaws = [first["yaw"] + k * math.pi / 4 for k in range(8)]
            images, _ = gt.render([first["name"]] * 8, yaws, mode="grey")
            grey = (images.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
            for k in range(8):
                x = (columns + k) * (W + gap) + gap * 3
                sheet[y:y + H, x:x + W] = grey[k]
    return Image.fromarray(sheet)


@command
def main(argv=None) -> Path:
    p = argparse.ArgumentParser(prog="python -m reid_data.synthetic.preview",
                                description=__doc__.split("\n")[0])
    p.add_argument("world")
    p.add_argument("out")
    p.add_argument("--ids", type=int, default=16)
    p.add_argument("--columns", type=int, default=12)
    p.add_argument("--start", type=int, default=0, help="skip this many identities (by pid)")
    p.add_argument("--rotations", action="store_true",
                   help="add the grey structure view of each row's first image at 8 yaws")
    args = p.parse_args(argv)
    contact_sheet(args.world, args.ids, args.columns, args.start, args.rotations).save(args.out)
    print(args.out)
    return Path(args.out)


if __name__ == "__main__":
    main.cli()
