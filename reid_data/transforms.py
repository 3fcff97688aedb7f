"""Image transforms. Loading resizes only; augmentation runs on the whole batch on the device.

Batch augmentation draws its randomness from one generator whose state goes into checkpoints,
so a resumed run augments exactly as an uninterrupted one — and no per-sample Python loop runs.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .image import read_image

# ImageNet statistics: the backbones are (or may be) ImageNet-pretrained.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def load_resized(path: str, height: int, width: int, mode: str = "RGB") -> torch.Tensor:
    """(C, H, W) uint8 tensor of the image resized with bicubic interpolation: C = 3 for mode
    "RGB", 1 for "L" (grey, e.g. GCL's mesh renders)."""
    img = read_image(str(path))
    if mode != "RGB":
        img = img.convert(mode)
    if img.size != (width, height):
        img = img.resize((width, height), Image.BICUBIC)
    pixels = np.asarray(img, dtype=np.uint8).copy()
    return torch.from_numpy(pixels.reshape(height, width, -1)).permute(2, 0, 1).contiguous()


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) → float, standardised with the ImageNet mean and std."""
    mean = torch.tensor(MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


def denormalize(images: torch.Tensor) -> torch.Tensor:
    """Inverse of `normalize`, to [0, 1] for display."""
    mean = torch.tensor(MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=images.device).view(1, 3, 1, 1)
    return (images * std + mean).clamp(0, 1)


class BatchAugment:
    """Pad + random crop, horizontal flip, then normalisation and random erasing, for a batch.

    Random erasing (Zhong et al.) fills a box of 2-40 % of the image with aspect 0.3-3.3 with 0,
    the mean colour after normalisation; a sample draws up to `tries` boxes and erases the first
    that fits, as the original draws until one fits.
    """

    def __init__(self, flip: float = 0.5, pad: int = 10, erasing: float = 0.5, seed: int = 0,
                 tries: int = 10):
        self.flip, self.pad, self.erasing, self.tries = flip, pad, erasing, tries
        self.generator = torch.Generator().manual_seed(seed)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])

    def _rand(self, *shape) -> torch.Tensor:
        return torch.rand(*shape, generator=self.generator)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        b, _, h, w = images.shape
        if self.pad > 0:
            images = self._pad_crop(images)
        if self.flip > 0:
            flip = (self._rand(b) < self.flip).to(images.device).view(b, 1, 1, 1)
            images = torch.where(flip, images.flip(3), images)
        images = normalize(images)
        if self.erasing > 0:
            images = self.erase(images)
        return images

    def erase(self, images: torch.Tensor) -> torch.Tensor:
        """Random erasing alone, on normalised images (DG-Net erases only its identity-loss inputs)."""
        b, _, h, w = images.shape
        return images.masked_fill(self._erase_mask(b, h, w).to(images.device).unsqueeze(1), 0.0)

    def _pad_crop(self, images: torch.Tensor) -> torch.Tensor:
        b, _, h, w = images.shape
        p = self.pad
        padded = F.pad(images, (p, p, p, p))  # zeros = black, as padding a PIL image does
        off = (self._rand(b, 2) * (2 * p + 1)).long().clamp_(max=2 * p).to(images.device)
        rows = off[:, :1] + torch.arange(h, device=images.device)  # (B, H)
        cols = off[:, 1:] + torch.arange(w, device=images.device)  # (B, W)
        batch = torch.arange(b, device=images.device).view(b, 1, 1)
        return padded[batch, :, rows.unsqueeze(2), cols.unsqueeze(1)].permute(0, 3, 1, 2)

    def _erase_mask(self, b: int, h: int, w: int) -> torch.Tensor:
        area = (0.02 + 0.38 * self._rand(b, self.tries)) * h * w
        aspect = 0.3 + (1 / 0.3 - 0.3) * self._rand(b, self.tries)
        eh = (area * aspect).sqrt().round().long()
        ew = (area / aspect).sqrt().round().long()
        fits = (eh < h) & (ew < w)
        first = fits.float().argmax(1, keepdim=True)  # first box that fits
        apply = (self._rand(b) < self.erasing) & fits.any(1)
        eh, ew = eh.gather(1, first).squeeze(1), ew.gather(1, first).squeeze(1)
        y0 = (self._rand(b) * (h - eh + 1)).long()
        x0 = (self._rand(b) * (w - ew + 1)).long()
        ys = torch.arange(h).view(1, h, 1)
        xs = torch.arange(w).view(1, 1, w)
        inside = ((ys >= y0.view(b, 1, 1)) & (ys < (y0 + eh).view(b, 1, 1))
                  & (xs >= x0.view(b, 1, 1)) & (xs < (x0 + ew).view(b, 1, 1)))
        return inside & apply.view(b, 1, 1)
