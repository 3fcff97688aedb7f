"""How well a GCL generator turns people: its novel views against the synthetic world's true ones.

For an image of the synthetic world and its grey mesh renders at every angle A of
``mesh.renders.ANGLES``, the generator draws the person at A (A = 0: the reconstruction from
the image's own render). The truth at A is the world's re-render of the same person turned to
the image's own yaw + A (the convention of ``mesh.precompute``'s oracle renders), over the
camera's background and through its degradations, at the model's image size. Each generated
view is scored against its truth by SSIM (higher is better) and LPIPS (lower is better), and so
is the *input copy*: the unmodified input image against the truth at every angle, the score of
doing nothing. A generator is only worth its novel views where it beats the input copy.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from mesh.renders import ANGLES
from models.gcl import normalize_render
from reid_data import denormalize

from .ssim import ssim

SCORES = ("ssim_generated", "ssim_input", "lpips_generated", "lpips_input")

# images (B, 3, H, W) in normalize's space, uint8 renders (B, A, H, W) → views (B, A, 3, H, W) in [0, 1]
Generator = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def novel_views(model, images: torch.Tensor, renders: torch.Tensor) -> torch.Tensor:
    """Each image's person drawn in each of its renders: images (B, 3, H, W) in normalize's
    space, uint8 renders (B, A, H, W) → (B, A, 3, H, W) in [0, 1]. The appearance code is
    computed once per image; the decoder runs once per angle on the whole batch."""
    code = model.encode_identity(images).code
    views = [model.decode(model.encode_structure(normalize_render(renders[:, a:a + 1])), code)
             for a in range(renders.shape[1])]
    return denormalize(torch.stack(views, 1).flatten(0, 1)).unflatten(0, (len(images), renders.shape[1]))


def true_views(world, paths: Sequence[str], angles: Sequence[int], height: int, width: int) -> torch.Tensor:
    """(B, A, 3, H, W) in [0, 1]: the person of each image (of the world `world`, a
    ``WorldGroundTruth``) turned to its own yaw + each angle (degrees), as the camera saw it,
    resized to H x W (bicubic, as the inputs are) when the world's size differs."""
    own = np.array([world.record(p)["yaw"] for p in paths], dtype=np.float64)
    yaws = own[:, None] + np.radians(np.asarray(angles, dtype=np.float64))[None, :]
    names = [p for p in paths for _ in angles]
    images, _ = world.render(names, yaw=yaws.ravel(), mode="rgb", degrade=True)
    if images.shape[-2:] != (height, width):
        images = F.interpolate(images, size=(height, width), mode="bicubic", antialias=True,
                               align_corners=False).clamp(0, 1)
    return images.unflatten(0, (len(paths), len(angles)))


@torch.no_grad()
def view_scores(generated: torch.Tensor, truth: torch.Tensor, inputs: torch.Tensor, distance) -> dict:
    """Scores of one batch, each (B, A): generated views and true views (B, A, 3, H, W) and the
    inputs (B, 3, H, W), all in [0, 1]; `distance` is an ``LPIPSDistance``."""
    b, a = truth.shape[:2]
    flat_truth = truth.flatten(0, 1)
    copies = inputs.unsqueeze(1).expand_as(truth).flatten(0, 1)
    flat_generated = generated.flatten(0, 1).to(flat_truth)
    return {"ssim_generated": ssim(flat_generated, flat_truth).view(b, a),
            "ssim_input": ssim(copies, flat_truth).view(b, a),
            "lpips_generated": distance(flat_generated, flat_truth).view(b, a),
            "lpips_input": distance(copies, flat_truth).view(b, a)}


def rotated_view_scores(generate: Generator, batches: Iterable[tuple[Sequence[str], torch.Tensor, torch.Tensor]],
                        world, distance, angles: Sequence[int] = ANGLES) -> dict:
    """Mean scores per angle over every image of `batches`: (paths, normalised images
    (B, 3, H, W), uint8 renders (B, A, H, W) at `angles`). `generate` draws the views
    (``functools.partial(novel_views, model)`` for a GCL network).

    Returns {"images": N, "angles": {"A": {score: mean}}, "novel": {score: mean over A != 0}}
    with the scores of ``SCORES`` (angles keyed by their text, as in JSON)."""
    angles = list(angles)
    sums = {k: torch.zeros(len(angles), dtype=torch.float64) for k in SCORES}
    count = 0
    for paths, images, renders in batches:
        if renders.shape[1] != len(angles):
            raise ValueError(f"renders at {renders.shape[1]} angles, expected {len(angles)}")
        inputs = denormalize(images)
        truth = true_views(world, list(paths), angles, *images.shape[-2:]).to(images.device)
        scores = view_scores(generate(images, renders), truth, inputs, distance)
        for k in SCORES:
            sums[k] += scores[k].double().sum(0).cpu()
        count += len(paths)
    if count == 0:
        raise ValueError("no images to score")
    means = {k: (v / count).tolist() for k, v in sums.items()}
    novel = [i for i, a in enumerate(angles) if a % 360 != 0]
    return {"images": count,
            "angles": {str(a): {k: means[k][i] for k in SCORES} for i, a in enumerate(angles)},
            "novel": {k: (math.fsum(means[k][i] for i in novel) / len(novel) if novel else float("nan"))
                      for k in SCORES}}
