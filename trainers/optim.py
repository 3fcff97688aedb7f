"""Optimizers and per-iteration learning-rate schedules built from the `optim` config section."""
from __future__ import annotations

import bisect

import torch


def build_optimizer(optim_cfg, param_groups: list[dict]) -> torch.optim.Optimizer:
    """`param_groups` carry an `lr_mult`; the group's lr is optim.lr × lr_mult."""
    groups = [{"params": g["params"], "lr": optim_cfg.lr * g.get("lr_mult", 1.0)} for g in param_groups]
    if optim_cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=optim_cfg.lr, momentum=optim_cfg.momentum,
                               nesterov=optim_cfg.nesterov, weight_decay=optim_cfg.weight_decay)
    if optim_cfg.name == "adam":
        return torch.optim.Adam(groups, lr=optim_cfg.lr, weight_decay=optim_cfg.weight_decay)
    raise ValueError(f"unknown optimizer {optim_cfg.name!r}; choose sgd or adam")


def lr_factor(iteration: int, milestones, gamma: float, warmup_iters: int) -> float:
    """Multistep decay, with a linear warm-up from 1 % over the first `warmup_iters`."""
    factor = gamma ** bisect.bisect_right(sorted(milestones), iteration)
    if iteration < warmup_iters:
        factor *= 0.01 + 0.99 * iteration / warmup_iters
    return factor


def build_scheduler(optimizer, optim_cfg) -> torch.optim.lr_scheduler.LambdaLR:
    """Stepped once per iteration."""
    milestones, gamma, warmup = list(optim_cfg.milestones), optim_cfg.gamma, optim_cfg.warmup_iters
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: lr_factor(it, milestones, gamma, warmup))
