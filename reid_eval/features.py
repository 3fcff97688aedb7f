"""Feature extraction for retrieval: flip averaging and L2 normalisation."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from reid_data.transforms import normalize

EMBEDDING_KINDS = ("teacher", "cluster_contrast", "dgnet", "gcl")  # trainers whose network gives a re-ID embedding


def flip_embedding(embed: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
                   flip: bool = True) -> torch.Tensor:
    """float32 embeddings of normalised `images`; with `flip` those of the images and of their
    mirror images summed (normalise afterwards)."""
    f = embed(images).float()
    if flip:
        f = f + embed(images.flip(3)).float()
    return f


@torch.no_grad()
def extract_features(embed: Callable[[torch.Tensor], torch.Tensor], loader, device: torch.device,
                     flip: bool = True, autocast_dtype: torch.dtype | None = None,
                     desc: str = "features") -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """L2-normalised embeddings (N, D) float32 on CPU, with the pids and camids of the loader's items.

    `embed` maps a normalised image batch to embeddings; with `flip` the embedding of the image
    and of its mirror image are summed before normalising.
    """
    feats, pids, camids = [], [], []
    for batch in tqdm(loader, desc=desc, leave=False, mininterval=2.0):
        images = normalize(batch["image"].to(device))
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32,
                            enabled=autocast_dtype is not None):
            f = flip_embedding(embed, images, flip)
        feats.append(F.normalize(f, dim=1).cpu())
        pids.append(batch["pid"].numpy())
        camids.append(batch["camid"].numpy())
    return torch.cat(feats), np.concatenate(pids), np.concatenate(camids)
