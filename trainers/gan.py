"""What DG-Net and GCL share in training their generators: the LSGAN terms, the gradient penalty,
calls through a network whose parameters are frozen for one term, and the image grids of the
people they draw."""
from __future__ import annotations

import torch
from torch import nn
from torchvision.utils import make_grid

from reid_data import denormalize


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


def lsgan_real(real_scores) -> torch.Tensor:
    """The discriminator's LSGAN term on real images: Σ over scales of mean((D(real) − 1)²)."""
    return sum((r.float() - 1).pow(2).mean() for r in real_scores)


def real_terms(discriminator, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The discriminator's terms on real images: its LSGAN term and the gradient penalty."""
    real_in = real.detach().requires_grad_(True)
    scores = discriminator(real_in)
    return lsgan_real(scores), gradient_penalty(scores, real_in)


def lsgan_fake(fake_scores) -> torch.Tensor:
    """The discriminator's LSGAN term on generated images: Σ over scales of mean(D(fake)²)."""
    return sum(f.float().pow(2).mean() for f in fake_scores)


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
def first_per_identity(samples):
    """The first sample of each identity, in order (distinct people for the image grids)."""
    seen = set()
    return [s for s in samples if not (s.pid in seen or seen.add(s.pid))]


def image_grid(rows: list[torch.Tensor], columns: int) -> torch.Tensor:
    """Rows of normalised images → one (1, 3, H, W) picture in [0, 1]."""
    return make_grid(denormalize(torch.cat(rows).float().cpu()), nrow=columns, padding=2).unsqueeze(0)
