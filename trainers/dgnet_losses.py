"""The pieces of DG-Net's objective: LSGAN terms, the gradient penalty, teacher targets, warm-up ramps,
and calls through a network whose parameters are frozen for one term."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

TEACHER_STYLES = ("soft", "one_hot", "appearance", "uniform", "two_label")


def frozen(module: nn.Module):
    """`module` as a function of its input alone: parameters detached (gradients reach the input only)
    and buffers copied (BN running statistics are left as they are). No copy of the weights is made."""
    state = {name: p.detach() for name, p in module.named_parameters()}
    state.update({name: b.clone() for name, b in module.named_buffers()})
    return lambda *args, **kwargs: torch.func.functional_call(module, state, args, kwargs)


class _InputGradientOnly(torch.autograd.Function):
    @staticmethod
    def forward(ctx, value, source, graph):
        ctx.graph = graph
        return value.view_as(value)

    @staticmethod
    def backward(ctx, grad):
        output, leaf = ctx.graph
        # Still alive: this node was made after the network's, so the backward pass reaches it before
        # the network's own nodes, which free their saved tensors (were it otherwise, this call would raise).
        (to_input,) = torch.autograd.grad(output, leaf, grad, retain_graph=True)
        return None, to_input, None


def input_gradient_only(output: torch.Tensor, leaf: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """`output` of a network run on `leaf` (a detached copy of `source` that requires grad), for terms
    whose gradient must reach `source` through the network but not the network's parameters — what
    `frozen` gives, without a second forward pass when the live pass is needed anyway. The gradient
    these terms send to the returned tensor is carried back to `source` by an input-only backward of
    the network inside the backward pass (so loss scaling applies as to every other term)."""
    return _InputGradientOnly.apply(output.detach(), source, (output, leaf))


def ramp(iteration: int, start: int, scale: float, ceiling: float) -> float:
    """A warm-up weight: 0 until `start`, then + `scale` per iteration, up to `ceiling`."""
    return min(ceiling, scale * max(0, iteration - start))


def lsgan_discriminator(fake_scores, real_scores) -> torch.Tensor:
    """Σ over scales of mean(D(fake)²) + mean((D(real) − 1)²)."""
    return sum(f.float().pow(2).mean() + (r.float() - 1).pow(2).mean() for f, r in zip(fake_scores, real_scores))


def lsgan_generator(fake_scores) -> torch.Tensor:
    """Σ over scales of 2·mean((D(fake) − 1)²), the paper code's scale of the generator's term."""
    return sum(2 * (f.float() - 1).pow(2).mean() for f in fake_scores)


def gradient_penalty(real_scores, real: torch.Tensor) -> torch.Tensor:
    """Σ over scales of the batch mean of ‖∂D_s(real)/∂real‖² (per image).

    Taken of the unscaled scores even under a float16 GradScaler: then an overflow can only happen in
    the backward pass, where the scaler skips the step, and never makes the loss itself infinite —
    a non-finite loss stays the sign of a diverged run. (An underflow only weakens this small term.)
    """
    penalty = real.new_zeros((), dtype=torch.float32)
    for scores in real_scores:
        (grad,) = torch.autograd.grad(scores.float().sum(), real, create_graph=True)
        penalty = penalty + grad.float().pow(2).flatten(1).sum(1).mean()
    return penalty


@torch.no_grad()
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
