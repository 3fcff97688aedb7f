"""Losses shared by the methods."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def triplet_loss(features: torch.Tensor, labels: torch.Tensor, margin: float | None = 0.3) -> torch.Tensor:
    """Batch-hard triplet loss (Hermans et al.): hardest positive and hardest negative per anchor.

    `margin=None` gives the soft-margin form log(1 + exp(d_ap − d_an)). Anchors without another
    image of their identity, or without a negative, in the batch do not count.
    """
    dist = torch.cdist(features, features)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    self_pair = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positive = same & ~self_pair
    valid = positive.any(1) & (~same).any(1)
    if not valid.any():
        return features.sum() * 0.0
    hardest_pos = dist.masked_fill(~positive, float("-inf")).amax(1)[valid]
    hardest_neg = dist.masked_fill(same, float("inf")).amin(1)[valid]
    if margin is None:
        return F.softplus(hardest_pos - hardest_neg).mean()
    return F.relu(hardest_pos - hardest_neg + margin).mean()
