"""How well one render folder's bodies agree with another's: per angle, the silhouette IoU of each
image's render in both (e.g. HMR's renders against the synthetic world's oracle renders, the measure
of whether HMR can stand in for the oracle in GCL).

    python -m mesh.render_agreement --renders DIR --truth DIR [--split test] [--json OUT]

Both folders in GCL's layout (`mesh.renders`, as `mesh.precompute` writes them). A pixel is on the
body where its grey is at least SILHOUETTE_GREY: the lit grey body is never darker than its ambient
share (0.75 x 0.35 = 0.26, 67/255), the black background's JPEG ringing stays below ~10/255, so half
the darkest body grey separates the two.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from configs.errors import UserError, command
from reid_data.records import first_few

from .renders import ANGLES, angle_folder

SILHOUETTE_GREY = 33  # of 255


def silhouette(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L")) >= SILHOUETTE_GREY


def silhouette_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks; two empty masks agree (1)."""
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def agreement(renders: Path, truth: Path, split: str = "test") -> dict:
    """Per angle, the mean and median silhouette IoU over the images of `truth`'s split folders
    (each must be in `renders` too, at the same size)."""
    problems, pairs = [], {}
    for angle in ANGLES:
        folder = truth / split / angle_folder(angle)
        if not folder.is_dir():
            problems.append(f"{folder} does not exist")
            continue
        names = sorted(os.listdir(folder))
        missing = [n for n in names if not (renders / split / angle_folder(angle) / n).is_file()]
        if missing:
            problems.append(f"{len(missing)} of {folder}'s {len(names)} renders are missing from "
                            f"{renders / split / angle_folder(angle)} ({first_few(missing)})")
        pairs[angle] = names
    if problems:
        raise UserError("cannot compare the renders: " + "; ".join(problems) +
                        "; render both folders for the same data set with python -m mesh.precompute")
    result = {"renders": str(renders), "truth": str(truth), "split": split, "silhouette_grey": SILHOUETTE_GREY,
              "images": len(pairs[ANGLES[0]])}
    for angle, names in tqdm(pairs.items(), desc="silhouette IoU", unit="angle", leave=False):
        ious = []
        for n in names:
            a = silhouette(renders / split / angle_folder(angle) / n)
            b = silhouette(truth / split / angle_folder(angle) / n)
            if a.shape != b.shape:
                raise UserError(f"{renders / split / angle_folder(angle) / n} is {a.shape[1]}x{a.shape[0]} but its "
                                f"truth is {b.shape[1]}x{b.shape[0]}; render both at the images' own size")
            ious.append(silhouette_iou(a, b))
        result[f"iou_mean_{angle}"] = float(np.mean(ious))
        result[f"iou_median_{angle}"] = float(np.median(ious))
    return result


@command
def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m mesh.render_agreement", description=__doc__.split("\n\n")[0])
    p.add_argument("--renders", required=True, type=Path, help="the render root to judge (e.g. HMR's)")
    p.add_argument("--truth", required=True, type=Path, help="the render root to judge it by (e.g. --oracle's)")
    p.add_argument("--split", default="test", choices=("train", "test"))
    p.add_argument("--json", type=Path, help="also write the result here")
    args = p.parse_args(argv)
    result = agreement(args.renders, args.truth, args.split)
    print(f"silhouette IoU of {args.renders} against {args.truth} ({args.split}, {result['images']} images)")
    print("angle   mean  median")
    for angle in ANGLES:
        print(f"{angle:>5}  {result[f'iou_mean_{angle}']:.3f}  {result[f'iou_median_{angle}']:.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main.cli()
