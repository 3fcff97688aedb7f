"""Writing what the visual tools produce: single images, figure grids and animated GIFs.

Images here are float tensors in [0, 1] (`reid_data.denormalize` of the model's output).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

from reid_eval.figure import save  # the one atomic image writer, shared with reid_eval's figures

PAD = 2  # white pixels between the cells of a figure


def to_pil(image: torch.Tensor) -> Image.Image:
    """(3, H, W) in [0, 1] → RGB image."""
    array = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
    return Image.fromarray(np.ascontiguousarray(array.permute(1, 2, 0).cpu().numpy()))


def format_options(path: str | Path) -> dict:
    """PIL save options by file suffix: JPEG at quality 95 with full-resolution colour (small
    person images lose much of their colour to the default 4:2:0 subsampling); none otherwise."""
    return {"quality": 95, "subsampling": 0} if Path(path).suffix.lower() in (".jpg", ".jpeg") else {}


def grid(cells: torch.Tensor, filled: torch.Tensor | None = None) -> torch.Tensor:
    """(R, C, 3, H, W) cells → one (3, H', W') figure, row by row; cells where `filled` (R, C) is
    False are left white."""
    rows, cols = cells.shape[:2]
    if filled is not None:
        cells = torch.where(filled.to(cells.device).view(rows, cols, 1, 1, 1), cells, torch.ones_like(cells))
    return make_grid(cells.flatten(0, 1), nrow=cols, padding=PAD, pad_value=1.0)


def save_gif(frames: torch.Tensor, path: str | Path, duration_ms: int = 120) -> Path:
    """(T, 3, H, W) frames → a looping GIF played forth and back."""
    images = [to_pil(f) for f in torch.cat([frames, frames.flip(0)[1:-1]])]
    return save(images[0], path, save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
