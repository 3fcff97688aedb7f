"""LPIPS distance (Zhang et al., 2018) and the diversity of generated images measured with it.

The lpips package ships its linear heads; its AlexNet backbone is torchvision's ImageNet model,
which follows the suite's rule for pretrained files (`True`: torch cache or download, a path:
that file, `False`: random — distances then only exercise the code).
"""
from __future__ import annotations

import warnings

import lpips
import torch
from torch import nn

from models.weights import WeightsError, read_state_dict, resolve_weights

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
ALEXNET_URL = "https://download.pytorch.org/models/" + ALEXNET_FILE


class LPIPSDistance(nn.Module):
    """LPIPS (AlexNet, v0.1 heads) between image batches in [0, 1]; `pretrained_backbone` says
    whether the AlexNet features are ImageNet's or random."""

    def __init__(self, backbone=True):
        super().__init__()
        path = resolve_weights(backbone, ALEXNET_FILE, ALEXNET_URL, "LPIPS AlexNet")
        # pnet_rand: the package would download the backbone itself; it is loaded below instead.
        # Seeded, so that distances with a random backbone are the same every run.
        with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
            warnings.simplefilter("ignore", UserWarning)  # lpips passes torchvision's deprecated `pretrained`
            torch.manual_seed(0)
            self.lpips = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()
        self.pretrained_backbone = path is not None
        if path is not None:
            self._load_backbone(read_state_dict(path, "LPIPS AlexNet"), path)

    def _load_backbone(self, state: dict, path) -> None:
        # lpips splits torchvision's `features` into slices whose children keep their indices,
        # so `features.3.weight` is `sliceK.3.weight` for the slice holding layer 3.
        net = self.lpips.net
        own = {}
        for name in net.state_dict():
            index_and_param = name.split(".", 1)[1]
            own[name] = state.get(f"features.{index_and_param}")
        missing = [k for k, v in own.items() if v is None]
        if missing:
            raise WeightsError(f"LPIPS AlexNet weight file {path} is not torchvision's AlexNet "
                               f"(no {missing[0].split('.', 1)[1]!r} in features); use {ALEXNET_FILE}")
        net.load_state_dict(own)

    @torch.no_grad()
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(B,) distances of image pairs (B, 3, H, W) in [0, 1]."""
        return self.lpips(x.float(), y.float(), normalize=True).flatten()


@torch.no_grad()
def pairwise_diversity(distance: LPIPSDistance, groups: torch.Tensor, batch_size: int = 64) -> float:
    """Mean LPIPS over all unordered pairs within each group: groups (G, K, 3, H, W), K >= 2.

    E.g. the K images generated from one structure with K appearances: the larger, the more
    the appearance changes the image.
    """
    g, k = groups.shape[:2]
    if k < 2:
        raise ValueError(f"diversity needs at least 2 images per group, got {k}")
    images = groups.flatten(0, 1)
    i, j = torch.triu_indices(k, k, offset=1)
    offsets = torch.arange(g).repeat_interleave(len(i)) * k  # every group's pairs, flat
    first = (i.repeat(g) + offsets).to(images.device)
    second = (j.repeat(g) + offsets).to(images.device)
    total = 0.0
    for s in range(0, len(first), batch_size):
        a, b = first[s:s + batch_size], second[s:s + batch_size]
        total += float(distance(images[a], images[b]).double().sum())
    return total / len(first)
