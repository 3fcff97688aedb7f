"""Structural similarity (Wang et al., 2004) with the usual 11x11 Gaussian window (sigma 1.5)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

WINDOW = 11
SIGMA = 1.5
K1, K2 = 0.01, 0.03


def gaussian_kernel(size: int = WINDOW, sigma: float = SIGMA, dtype=torch.float32,
                    device=None) -> torch.Tensor:
    """Normalised 1-D Gaussian weights of length `size`."""
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    w = torch.exp(-x ** 2 / (2 * sigma ** 2))
    return w / w.sum()


def ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window: int = WINDOW,
             sigma: float = SIGMA) -> torch.Tensor:
    """The SSIM map of each image pair, averaged over channels: (B, C, H, W) in [0, data_range] →
    (B, H - window + 1, W - window + 1), one value per window wholly inside the image (no padding, as
    the original definition); entry (i, j) is the window centred on pixel (i + window // 2, j + window // 2)."""
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"ssim needs two (B, C, H, W) batches of one shape, got {tuple(x.shape)} "
                         f"and {tuple(y.shape)}")
    if min(x.shape[-2:]) < window:
        raise ValueError(f"images of {x.shape[-2]}x{x.shape[-1]} are smaller than the "
                         f"{window}x{window} SSIM window")
    # float64 on CPU keeps E[x²] - E[x]² exact enough; float32 elsewhere (fast on GPUs).
    dtype = torch.float64 if x.device.type == "cpu" else torch.float32
    x, y = x.to(dtype), y.to(dtype)
    c = x.shape[1]
    g = gaussian_kernel(window, sigma, dtype, x.device)
    # All five local moments in one separable depthwise filtering pass.
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    rows = g.view(1, 1, 1, window).expand(5 * c, 1, 1, window)
    cols = g.view(1, 1, window, 1).expand(5 * c, 1, window, 1)
    moments = F.conv2d(F.conv2d(stack, rows, groups=5 * c), cols, groups=5 * c)
    mx, my, exx, eyy, exy = moments.split(c, dim=1)
    vx, vy, cov = exx - mx * mx, eyy - my * my, exy - mx * my
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    ssim_map = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return ssim_map.mean(1)


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window: int = WINDOW,
         sigma: float = SIGMA) -> torch.Tensor:
    """SSIM of each image pair: (B, C, H, W) in [0, data_range] → (B,), the mean of `ssim_map` over
    positions (and so over channels and positions)."""
    return ssim_map(x, y, data_range, window, sigma).flatten(1).mean(1).float()


def masked_ssim(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, data_range: float = 1.0,
                window: int = WINDOW, sigma: float = SIGMA) -> torch.Tensor:
    """SSIM of each pair over a region: the mean of `ssim_map` over the windows centred on the pixels
    of `mask` (B, 1, H, W; bool or 0/1) → (B,), NaN where no window centre falls in the mask."""
    half = window // 2
    inside = mask[:, 0, half:mask.shape[-2] - half, half:mask.shape[-1] - half].to(torch.float64)
    values = ssim_map(x, y, data_range, window, sigma).to(torch.float64)
    return ((values * inside).sum((1, 2)) / inside.sum((1, 2))).float()
