"""The ground truth of a written world, and the true view of any of its images at any yaw.

    from reid_data.synthetic import load_ground_truth, render_ground_truth
    gt = load_ground_truth("data/synthetic")
    gt.record("0001_c1s1_000123_00.jpg")          # identity, camera, betas, pose, yaw, K, R, t ...
    view = render_ground_truth("data/synthetic", "0001_c1s1_000123_00.jpg", yaw=1.2)
    view.image  # (3, H, W) in [0, 1];  view.mask  # (1, H, W)

A re-render keeps everything of the image but the yaw: the same person (shape, pose, clothes),
the same camera and the same crop box, so it has the size of the written image and the person
stays where it stood, turned about the vertical through its centre. ``mode="grey"`` gives
GCL's structure image (the grey, Lambert-shaded body on black); ``mode="rgb"`` the person lit
as in the image, on black by default, or with ``background=True`` / ``degrade=True`` over the
camera's background and through the camera's degradations (all but pixel noise and occluders,
unless asked for), which reproduces the written image at its own yaw up to JPEG.
"""
from __future__ import annotations

import json
import os
import zipfile
import zlib
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from mesh.rasterizer import render

from ..records import DatasetError
from .identities import Appearance, dressed
from .imaging import Imager
from .scenes import CameraRig
from .writer import FORMAT


# A vertex within this depth (metres) of the visible surface at its pixel is on it: well above the
# rasterizer's float32 depths at a few metres, well below a body's thickness.
WARP_DEPTH_TOLERANCE = 0.03


class GroundTruthRender(NamedTuple):
    image: torch.Tensor     # (3, H, W) in [0, 1]
    mask: torch.Tensor      # (1, H, W): 1 where the person (and its bag) is


class SwapTruth(NamedTuple):
    image: torch.Tensor     # (B, 3, H, W) in [0, 1]: one person's garments on another's structure
    mask: torch.Tensor      # (B, 1, H, W): the person
    garments: torch.Tensor  # (B, 3, H, W) coverage of the upper garment, lower garment, shoes


class WorldGroundTruth:
    """A world's sidecar: per-image records (with the arrays merged in) by file name."""

    def __init__(self, folder):
        self.folder = os.path.abspath(folder)
        path = os.path.join(self.folder, "ground_truth.json")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} not found: {folder} is not a synthetic world "
                                    f"(write one with python -m reid_data.synthetic --out DIR)")
        reading = path
        try:  # a cut-short or edited sidecar fails in any of the ways caught below
            with open(path) as fh:
                doc = json.load(fh)
            if doc.get("format") != FORMAT:
                raise ValueError("it is not a GenReID synthetic world's ground truth")
            self.doc = doc
            self.config = doc["config"]
            self.height, self.width = self.config["height"], self.config["width"]
            self.cameras = [CameraRig(**c) for c in doc["cameras"]]
            self.identities = doc["identities"]
            self.appearances = [Appearance(**d["appearance"]) for d in self.identities]
            self.images = doc["images"]
            self.index = {r["name"]: i for i, r in enumerate(self.images)}
            reading = os.path.join(self.folder, "ground_truth.npz")
            arrays = np.load(reading)
            self.arrays = {k: arrays[k] for k in arrays.files}
            if list(self.arrays["names"]) != [r["name"] for r in self.images]:
                raise ValueError("it disagrees with ground_truth.json")
        except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError, zipfile.BadZipFile,
                zlib.error) as err:
            reason = f"no {err}" if isinstance(err, KeyError) else str(err) or type(err).__name__
            raise DatasetError(f"{reading} is damaged ({reason}); delete {self.folder} and write the world again "
                               f"with python -m reid_data.synthetic --out {self.folder} (and the options it was "
                               f"written with)") from None
        self._imager = None

    def __len__(self) -> int:
        return len(self.images)

    def record(self, name: str) -> dict:
        """Everything known about image ``name`` (a file name, or a path ending in one)."""
        name = os.path.basename(name)
        if name not in self.index:
            raise KeyError(f"{name} is not an image of the world at {self.folder}")
        i = self.index[name]
        rec = dict(self.images[i])
        for key, value in self.arrays.items():
            if key != "names":
                rec[key] = value[i]
        rec["appearance"] = self.appearances[rec["identity"]]
        return rec

    def _posable(self, names) -> list[dict]:
        """The records of images `names`, their poses in float64 as the body model takes them."""
        recs = [self.record(n) for n in names]
        for r in recs:
            r["pose"] = r["pose"].astype(np.float64)
        return recs

    @property
    def imager(self) -> Imager:
        if self._imager is None:
            self._imager = Imager(self.cameras, self.height, self.width,
                                  self.config["supersample"])
        return self._imager

    def render(self, names, yaw=None, mode: str = "rgb", background: bool = False,
               degrade: bool = False, noise: bool = False, occlusion: bool = False):
        """Re-renders images ``names`` (a list) at ``yaw`` (radians: one number or one per
        image; None: each image's own). Returns images (B, 3, H, W) and masks (B, 1, H, W)."""
        if mode not in ("rgb", "grey"):
            raise ValueError(f"mode must be 'rgb' or 'grey', not {mode!r}")
        recs = self._posable(names)
        apps = [r["appearance"] for r in recs]
        yaws = None
        if yaw is not None:
            yaws = np.broadcast_to(np.asarray(yaw, np.float64), (len(recs),)).copy()
        verts, _ = self.imager.pose(apps, recs, yaws)
        with torch.no_grad():
            return self.imager.form(apps, recs, verts, mode=mode,
                                    background=background or degrade, degrade=degrade,
                                    noise=noise, occlusion=occlusion)


    def warp(self, names, images: torch.Tensor, yaw) -> torch.Tensor:
        """What geometry alone draws of each image's person turned to ``yaw`` (radians: one number or one
        per image): the texture the image shows, carried on its own true body to the new yaw, the body's
        points the image does not show left grey (0.5), and the image itself outside the turned body.
        ``images`` (B, 3, H, W) in [0, 1] at the world's size (the written images); the same size out.
        Each vertex takes the image's colour where it projects, when nothing of the body stands in front
        of it; the turned body is drawn with those colours, unlit (the image's shading travels with it)."""
        recs = self._posable(names)
        apps = [r["appearance"] for r in recs]
        yaws = np.broadcast_to(np.asarray(yaw, np.float64), (len(recs),)).copy()
        own, _ = self.imager.pose(apps, recs)
        turned, _ = self.imager.pose(apps, recs, yaws)
        h, w = self.height, self.width
        camera, faces = self.imager.camera(recs, 1.0), self.imager.body.faces_t
        with torch.no_grad():
            surface = render(own, faces, camera, h, w, mode="grey").depth
            uvz = camera.project(own, h, w)  # (B, V, 3): pixel u, v (pixel k spans [k, k + 1)), depth
            grid = torch.stack([uvz[..., 0] / w * 2 - 1, uvz[..., 1] / h * 2 - 1], -1)[:, :, None]
            colour = F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="border",
                                   align_corners=False)[..., 0].transpose(1, 2)
            front = F.grid_sample(surface.nan_to_num(posinf=1e6), grid, mode="nearest",
                                  align_corners=False)[:, 0, :, 0]
            inside = (grid.abs() <= 1).all(-1)[..., 0]
            shown = inside & (uvz[..., 2] <= front + WARP_DEPTH_TOLERANCE)
            colour = torch.where(shown[..., None], colour, torch.full_like(colour, 0.5))
            out = render(turned, faces, camera, h, w, colors=colour, ambient=1.0, lights=[])
        return out.rgb * out.mask + images.float() * (1 - out.mask)

    def render_swap(self, appearance_names, structure_names, degrade: bool = True,
                    noise: bool = False) -> SwapTruth:
        """What a DG-Net swap should draw: image k is the structure image ``structure_names[k]``
        (its body, pose, yaw, skin, hair, hat, bag, camera, crop, background, occluder, light
        and degradations) with the garments (`identities.GARMENT_FIELDS`) of the identity of
        ``appearance_names[k]``. ``degrade=False`` leaves out the camera's resolution, blur and
        colour response; ``noise`` adds the structure image's own pixel noise."""
        if len(appearance_names) != len(structure_names):
            raise ValueError(f"{len(appearance_names)} appearance images for "
                             f"{len(structure_names)} structure images")
        recs = self._posable(structure_names)
        apps = [dressed(r["appearance"], self.record(a)["appearance"])
                for r, a in zip(recs, appearance_names)]
        verts, _ = self.imager.pose(apps, recs)
        with torch.no_grad():
            image, mask = self.imager.form(apps, recs, verts, background=True, degrade=degrade,
                                           noise=noise, occlusion=True)
            garments = self.imager.garments(apps, recs, verts)
        return SwapTruth(image, mask, garments)


@lru_cache(maxsize=4)
def _cached(folder: str, stamp: float) -> WorldGroundTruth:
    return WorldGroundTruth(folder)


def load_ground_truth(world_dir) -> WorldGroundTruth:
    """The ground truth of the world in ``world_dir`` (cached per folder and file time)."""
    folder = os.path.abspath(world_dir)
    path = os.path.join(folder, "ground_truth.json")
    stamp = os.path.getmtime(path) if os.path.exists(path) else 0.0
    return _cached(folder, stamp)


def render_ground_truth(world_dir, image_name: str, yaw=None, mode: str = "rgb",
                        background: bool = False, degrade: bool = False) -> GroundTruthRender:
    """The true view of image ``image_name`` of the world in ``world_dir`` with the person
    turned to ``yaw`` (radians, the world's yaw convention; None: the image's own yaw).

    Same size and crop as the written image. ``mode``: "rgb" (the person's colours under the
    image's light) or "grey" (GCL's structure image). ``background`` composites the camera's
    background (and the shadow under the feet); ``degrade`` also applies the camera's
    resolution, blur and colour response (no pixel noise, no occluder)."""
    gt = load_ground_truth(world_dir)
    images, masks = gt.render([image_name], yaw, mode, background, degrade)
    return GroundTruthRender(images[0], masks[0])
