"""The pieces of DG-Net's objective of its own: the teacher's targets and the warm-up ramps (the GAN
terms it shares with GCL are in `trainers.gan`)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

TEACHER_STYLES = ("soft", "one_hot", "appearance", "uniform", "two_label")


def ramp(iteration: int, start: int, scale: float, ceiling: float) -> float:
    """A warm-up weight: 0 until `start`, then + `scale` per iteration, up to `ceiling`."""
    return min(ceiling, scale * max(0, iteration - start))


def teacher_targets(teacher, images: torch.Tensor, style: str, num_classes: int,
                    appearance_ids: torch.Tensor, structure_ids: torch.Tensor) -> torch.Tensor:
    """Target identity distributions (B, classes) for generated images, by `style`:
    soft — the teacher's softmax averaged over the image and its mirror (the paper's dynamic soft label);
    one_hot — that distribution's argmax; appearance — the appearance donor's id; uniform — LSRO;
    two_label — the soft label kept to the appearance and structure donors' ids, renormalised."""
    b = len(images)
    if style == "uniform":
        return images.new_full((b, num_classes), 1.0 / num_classes, dtype=torch.float32)
    if style == "appearance":
        return F.one_hot(appearance_ids, num_classes).float()
    if style not in TEACHER_STYLES:
        raise ValueError(f"unknown dgnet.teacher_style {style!r}; choose one of {', '.join(TEACHER_STYLES)}")
    logits = teacher(torch.cat([images, images.flip(3)])).logits.float()
    probs = logits.softmax(1).view(2, b, -1).mean(0)
    if style == "one_hot":
        return F.one_hot(probs.argmax(1), num_classes).float()
    if style == "two_label":
        mask = F.one_hot(appearance_ids, num_classes) + F.one_hot(structure_ids, num_classes)
        probs = probs * mask.clamp(max=1)
        return probs / probs.sum(1, keepdim=True)
    return probs
