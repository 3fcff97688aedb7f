"""Batched image synthesis with a DG-Net: encode once, decode any (structure, appearance) mix.

All images are in the normalised space of `reid_data.normalize`; work runs in chunks of
`batch_size` images so memory stays bounded whatever the number of combinations.
"""
from __future__ import annotations

import torch


@torch.no_grad()
def encode(model, images: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Structure maps (N, C_s, H/f, W/f) and appearance codes (N, C, S) of `images`."""
    structures, codes = [], []
    for chunk in images.split(batch_size):
        structures.append(model.encode_structure(chunk))
        codes.append(model.encode_appearance(chunk).code)
    return torch.cat(structures), torch.cat(codes)


@torch.no_grad()
def combine(model, structures: torch.Tensor, codes: torch.Tensor, structure_index: torch.Tensor,
            code_index: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Image k drawn from structure `structure_index[k]` and appearance `code_index[k]`; the
    indexed copies are made per chunk, never for all pairs at once."""
    out = []
    for s, c in zip(structure_index.split(batch_size), code_index.split(batch_size)):
        out.append(model.decode(structures[s.to(structures.device)], codes[c.to(codes.device)]))
    return torch.cat(out)


@torch.no_grad()
def all_pairs(model, structures: torch.Tensor, codes: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(S, A, 3, H, W): every structure drawn with every appearance."""
    s, a = len(structures), len(codes)
    images = combine(model, structures, codes, torch.arange(s).repeat_interleave(a), torch.arange(a).repeat(s),
                     batch_size)
    return images.view(s, a, *images.shape[1:])


def lerp(start: torch.Tensor, end: torch.Tensor, steps: int) -> torch.Tensor:
    """(steps, *start.shape): from `start` to `end` in equal steps, both ends included."""
    t = torch.linspace(0, 1, steps, device=start.device, dtype=start.dtype)
    return torch.lerp(start.unsqueeze(0), end.unsqueeze(0), t.view(-1, *[1] * start.dim()))


def donors(n: int, seed: int) -> torch.Tensor:
    """For each of n images another image (none its own when n > 1), a seeded random choice:
    the successor on a random cycle through all of them."""
    cycle = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    donor = torch.empty(n, dtype=torch.long)
    donor[cycle] = cycle.roll(-1)
    return donor
