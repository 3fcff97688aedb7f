"""Memory for arithmetic: a network stage whose inner activations are not kept for backward but
computed again there (torch.utils.checkpoint), with the same results, gradients and BN statistics."""
from __future__ import annotations

import contextlib

import torch
import torch.utils.checkpoint
from torch import nn


def run_stage(stage: nn.Module, *args, recompute: bool = False):
    """stage(*args); with `recompute` (and gradients on), only the stage's inputs are kept for backward,
    which runs the stage again to get the rest: one more forward of it. The stage must be deterministic
    and its parameters unchanged until backward (a training step's forward and backward)."""
    if recompute and torch.is_grad_enabled():
        return torch.utils.checkpoint.checkpoint(
            stage, *args, use_reentrant=False, context_fn=lambda: (contextlib.nullcontext(), _BatchNormsKept(stage)))
    return stage(*args)


def run_stages(stages, x, recompute: bool = False):
    """x through each of `stages` in turn, each one a `run_stage`."""
    for stage in stages:
        x = run_stage(stage, x, recompute=recompute)
    return x


class _BatchNormsKept:
    """During the recomputation BN normalises with the batch's statistics, as in the forward, but its
    running statistics and batch count stay as the forward left them (momentum 0 leaves them exactly:
    (1 - 0)·r + 0·m = r), so a recomputed step updates them once, as a plain one. Reusable: a graph
    that backward walks twice (the trainer's input-gradient-only passes) recomputes twice."""

    def __init__(self, stage: nn.Module):
        self.norms = [m for m in stage.modules()
                      if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats]

    def __enter__(self):
        self.kept = [(m.momentum, m.num_batches_tracked.clone()) for m in self.norms]
        for m in self.norms:
            m.momentum = 0.0

    def __exit__(self, *exc):
        for m, (momentum, count) in zip(self.norms, self.kept):
            m.momentum = momentum
            m.num_batches_tracked.copy_(count)
