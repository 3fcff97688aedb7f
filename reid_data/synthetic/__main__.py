"""python -m reid_data.synthetic --out DIR [--ids N] [--seed S] [--height H --width W]
[--cameras C] [--images MIN MAX]: write a synthetic world (Market-1501 layout + ground truth)."""
from __future__ import annotations

import argparse
import json
import os

from configs.errors import UserError, command

from .writer import WorldConfig, generate


@command
def main(argv=None) -> dict:
    """Writes the world; returns (and prints, as one JSON line) where and what."""
    d = WorldConfig()
    p = argparse.ArgumentParser(prog="python -m reid_data.synthetic",
                                description="Write a synthetic person world as a Market-1501 "
                                            "data set with a ground-truth sidecar.")
    p.add_argument("--out", required=True, help="folder to write (must be new or empty)")
    p.add_argument("--ids", type=int, default=d.ids, help=f"identities (default {d.ids})")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--height", type=int, default=d.height)
    p.add_argument("--width", type=int, default=d.width)
    p.add_argument("--cameras", type=int, default=d.cameras)
    p.add_argument("--images", type=int, nargs=2, metavar=("MIN", "MAX"),
                   default=(d.min_images, d.max_images), help="images per identity")
    p.add_argument("--duplicates", type=float, default=d.duplicate_fraction,
                   help="fraction of identities dressed like another but for one detail")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    cfg = WorldConfig(ids=args.ids, cameras=args.cameras, height=args.height, width=args.width,
                      seed=args.seed, min_images=args.images[0], max_images=args.images[1],
                      duplicate_fraction=args.duplicates)
    try:
        cfg.check()
        if os.path.isdir(args.out) and os.listdir(args.out):
            raise FileExistsError(f"{args.out} is not empty; pass a new or empty folder")
        summary = generate(args.out, cfg, progress=not args.quiet)
    except (ValueError, FileExistsError) as exc:
        raise UserError(str(exc)) from None
    summary = {"out": args.out, **summary}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main.cli()
