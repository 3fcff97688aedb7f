"""How well a GCL generator turns people: its novel views against the synthetic world's true ones.

For an image of the synthetic world and its grey mesh renders at every angle A of
``mesh.renders.ANGLES``, the generator draws the person at A (A = 0: the reconstruction from
the image's own render). The truth at A is the world's re-render of the same person turned to
the image's own yaw + A (the convention of ``mesh.precompute``'s oracle renders), over the
camera's background and through its degradations, at the model's image size, with the true
person mask. Three methods are scored against it the same way:

  generated  the generator's view
  input      the unmodified input image at every angle: the score of doing nothing
  warp       the input's visible texture carried on the true body to the new yaw, what it does not
             show grey (``WorldGroundTruth.warp``): what geometry alone gives

by whole-image SSIM (higher is better) and LPIPS (lower is better), by SSIM over the windows centred
on the true person (``ssim_person``) and mean CIEDE2000 over the true person's pixels
(``delta_e_person``, lower is better), and, with a judge (a re-ID network and a gallery), by the
fraction of views whose nearest gallery identity is the person's own (``id``: does the turned
person still look like itself?). Keys ``<score>_<method>``. A generator is only worth its novel
views where it beats both baselines.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from mesh.renders import ANGLES
from models.gcl import normalize_render
from reid_data import denormalize, load_resized

from .colour import masked_mean_delta_e
from .ssim import masked_ssim, ssim

METHODS = ("generated", "input", "warp")
IMAGE_SCORES = ("ssim", "lpips", "ssim_person", "delta_e_person")

# images (B, 3, H, W) in normalize's space, uint8 renders (B, A, H, W) → views (B, A, 3, H, W) in [0, 1]
Generator = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def score_keys(judged: bool) -> list[str]:
    """The keys of one angle's scores: every score of every method (``id`` with a judge)."""
    scores = IMAGE_SCORES + (("id",) if judged else ())
    return [f"{score}_{method}" for score in scores for method in METHODS]


class TrueViews(NamedTuple):
    images: torch.Tensor  # (B, A, 3, H, W) in [0, 1]
    masks: torch.Tensor   # (B, A, 1, H, W) bool: the person (covering at least half of the pixel)


@torch.no_grad()
def novel_views(model, images: torch.Tensor, renders: torch.Tensor) -> torch.Tensor:
    """Each image's person drawn in each of its renders: images (B, 3, H, W) in normalize's
    space, uint8 renders (B, A, H, W) → (B, A, 3, H, W) in [0, 1]. The appearance code is
    computed once per image; the decoder runs once per angle on the whole batch."""
    code = model.encode_identity(images).code
    views = [model.decode(model.encode_structure(normalize_render(renders[:, a:a + 1])), code)
             for a in range(renders.shape[1])]
    return denormalize(torch.stack(views, 1).flatten(0, 1)).unflatten(0, (len(images), renders.shape[1]))


def _turned_yaws(world, paths: Sequence[str], angles: Sequence[int]) -> np.ndarray:
    """(B·A,) each image's own yaw + each angle (degrees), in radians, image-major."""
    own = np.array([world.record(p)["yaw"] for p in paths], dtype=np.float64)
    return (own[:, None] + np.radians(np.asarray(angles, dtype=np.float64))[None, :]).ravel()


def _resized(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Images at the model's size, resized as the inputs are (bicubic)."""
    if images.shape[-2:] == (height, width):
        return images
    return F.interpolate(images, size=(height, width), mode="bicubic", antialias=True,
                         align_corners=False).clamp(0, 1)


def true_views(world, paths: Sequence[str], angles: Sequence[int], height: int, width: int) -> TrueViews:
    """The person of each image (of the world `world`, a ``WorldGroundTruth``) turned to its own
    yaw + each angle (degrees), as the camera saw it, at H x W, with the person's mask."""
    names = [p for p in paths for _ in angles]
    images, masks = world.render(names, yaw=_turned_yaws(world, paths, angles), mode="rgb", degrade=True)
    masks = F.interpolate(masks, size=(height, width), mode="area") >= 0.5
    shape = (len(paths), len(angles))
    return TrueViews(_resized(images, height, width).unflatten(0, shape), masks.unflatten(0, shape))


def warped_views(world, paths: Sequence[str], angles: Sequence[int], height: int, width: int) -> torch.Tensor:
    """(B, A, 3, H, W) in [0, 1]: each image (read at the world's size) warped on its true body to its
    own yaw + each angle (``WorldGroundTruth.warp``), then resized to H x W."""
    written = torch.stack([load_resized(p, world.height, world.width) for p in paths]).float() / 255
    warped = world.warp([p for p in paths for _ in angles], written.repeat_interleave(len(angles), 0),
                        _turned_yaws(world, paths, angles))
    return _resized(warped, height, width).unflatten(0, (len(paths), len(angles)))


@torch.no_grad()
def view_scores(views: dict[str, torch.Tensor], truth: TrueViews, distance) -> dict:
    """Scores of one batch, each (B, A): `views` maps each method to its views (B, A, 3, H, W) in
    [0, 1]; `truth` the true views and masks; `distance` an ``LPIPSDistance``."""
    b, a = truth.images.shape[:2]
    flat_truth, flat_mask = truth.images.flatten(0, 1), truth.masks.flatten(0, 1)
    out = {}
    for method, images in views.items():
        flat = images.flatten(0, 1).to(flat_truth)
        out[f"ssim_{method}"] = ssim(flat, flat_truth).view(b, a)
        out[f"lpips_{method}"] = distance(flat, flat_truth).view(b, a)
        out[f"ssim_person_{method}"] = masked_ssim(flat, flat_truth, flat_mask).view(b, a)
        out[f"delta_e_person_{method}"] = masked_mean_delta_e(flat, flat_truth, flat_mask).view(b, a)
    return out


def rotated_view_scores(generate: Generator, batches: Iterable[tuple[Sequence[str], torch.Tensor, torch.Tensor]],
                        world, distance, angles: Sequence[int] = ANGLES,
                        identify: Callable[[torch.Tensor], np.ndarray] | None = None,
                        pids_of: Callable[[Sequence[str]], np.ndarray] | None = None) -> dict:
    """Mean scores per angle over every image of `batches`: (paths, normalised images
    (B, 3, H, W), uint8 renders (B, A, H, W) at `angles`). `generate` draws the views
    (``functools.partial(novel_views, model)`` for a GCL network). With `identify` (images
    (N, 3, H, W) in [0, 1] → their nearest gallery identities) and `pids_of` (paths → true
    identities), the ``id`` scores too.

    Returns {"images": N, "angles": {"A": {key: mean}}, "novel": {key: mean over A != 0}} with the
    keys of ``score_keys`` (angles keyed by their text, as in JSON; a mean over images where the
    score exists: the person may be hidden at some angle)."""
    angles = list(angles)
    keys = score_keys(identify is not None)
    sums = {k: torch.zeros(len(angles), dtype=torch.float64) for k in keys}
    counts = {k: torch.zeros(len(angles), dtype=torch.float64) for k in keys}
    total = 0
    for paths, images, renders in batches:
        if renders.shape[1] != len(angles):
            raise ValueError(f"renders at {renders.shape[1]} angles, expected {len(angles)}")
        paths = list(paths)
        h, w = images.shape[-2:]
        truth = TrueViews(*(t.to(images.device) for t in true_views(world, paths, angles, h, w)))
        views = {"generated": generate(images, renders),
                 "input": denormalize(images).unsqueeze(1).expand_as(truth.images),
                 "warp": warped_views(world, paths, angles, h, w).to(images.device)}
        scores = view_scores(views, truth, distance)
        if identify is not None:
            own = np.repeat(pids_of(paths)[:, None], len(angles), 1)
            for method, v in views.items():
                found = identify(v.flatten(0, 1)).reshape(len(paths), len(angles))
                scores[f"id_{method}"] = torch.from_numpy((found == own).astype(np.float64))
        for k in keys:
            value = scores[k].double().cpu()
            sums[k] += value.nan_to_num(0.0).sum(0)
            counts[k] += (~value.isnan()).sum(0)
        total += len(paths)
    if total == 0:
        raise ValueError("no images to score")
    means = {k: (sums[k] / counts[k]).tolist() for k in keys}
    novel = [i for i, a in enumerate(angles) if a % 360 != 0]
    return {"images": total,
            "angles": {str(a): {k: means[k][i] for k in keys} for i, a in enumerate(angles)},
            "novel": {k: (math.fsum(means[k][i] for i in novel) / len(novel) if novel else float("nan"))
                      for k in keys}}
