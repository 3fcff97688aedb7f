"""GCL's folder layout of the grey mesh renders, and finding each image's renders in it.

    DIR/train/render/NAME            the training images' bodies as seen
    DIR/train/render_45/NAME ...     turned by 45°, ..., 315° (`ANGLES`)
    DIR/test/render/NAME ...         the same for query and gallery images

NAME is the image's own file name, so folders prepared for GCL's code load here and the
other way round (GCL joins ``mesh_dir + 'train/' + 'render_%d/'`` to the image's name).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import Dataset

from reid_data import DatasetError
from reid_data.transforms import load_resized
from reid_data.records import ReIDDataset, Sample

ANGLES = (0, 45, 90, 135, 180, 225, 270, 315)
SHOWN_MISSING = 5


class RenderError(DatasetError):
    """A render folder lacks images of the data set (the message names them and the fix)."""


def angle_folder(angle: int) -> str:
    return "render" if angle == 0 else f"render_{angle}"


def render_path(root, split: str, angle: int, image_path: str) -> Path:
    return Path(root) / split / angle_folder(angle) / os.path.basename(image_path)


def render_splits(dataset: ReIDDataset) -> dict[str, list[Sample]]:
    """GCL's two render splits: train, and test = query + gallery."""
    return {"train": dataset.train, "test": dataset.query + dataset.gallery}


class RenderSet:
    """Each image of ``dataset`` → its render paths under ``root``, one per angle of
    ``angles``; all of them must exist."""

    def __init__(self, dataset: ReIDDataset, root, angles=ANGLES):
        self.root, self.angles = Path(root), tuple(angles)
        splits = render_splits(dataset)
        self.split = {s.path: split for split, samples in splits.items() for s in samples}
        missing = []
        for split, samples in splits.items():
            for angle in self.angles:
                folder = self.root / split / angle_folder(angle)
                present = set(os.listdir(folder)) if folder.is_dir() else set()
                missing += [folder / os.path.basename(s.path) for s in samples
                            if os.path.basename(s.path) not in present]
        if missing:
            shown = ", ".join(str(p) for p in missing[:SHOWN_MISSING])
            raise RenderError(
                f"{len(missing)} mesh renders of {dataset.name} are missing under {self.root} "
                f"(first: {shown}); write them with python -m mesh.precompute --config CONFIG "
                f"--out {self.root}")

    def path(self, image_path: str, angle: int) -> Path:
        return render_path(self.root, self.split[image_path], angle, image_path)

    def paths(self, image_path: str) -> list[Path]:
        """The renders of one image, in the order of ``angles``."""
        return [self.path(image_path, a) for a in self.angles]


class RenderedImages(Dataset):
    """Items: uint8 image (3, H, W), its grey renders (A, H, W) in the order ``render_paths(image
    path)`` gives them (e.g. ``RenderSet.paths``), and ``index``: the image's slot (its position
    in the list, by default)."""

    def __init__(self, samples, render_paths, height: int, width: int, slots=None):
        self.samples, self.render_paths, self.height, self.width = list(samples), render_paths, height, width
        self.slots = list(range(len(self.samples))) if slots is None else list(slots)

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i: int) -> dict:
        s = self.samples[i]
        views = [load_resized(p, self.height, self.width, mode="L") for p in self.render_paths(s.path)]
        return {"image": load_resized(s.path, self.height, self.width), "renders": torch.cat(views),
                "index": self.slots[i]}
