"""CIELAB conversion, the CIEDE2000 colour difference and Reinhard colour transfer, batched in torch.

Everything is computed in float64 (the Lab cube root and CIEDE2000's hue trigonometry lose digits
in float32) and returned in the input's dtype. Images are (..., 3, H, W) sRGB in [0, 1].
"""
from __future__ import annotations

import math

import torch

# sRGB primaries to CIE XYZ (D65), as tabulated by Lindbloom. The white point is the matrix's image
# of RGB white, D65's (0.95047, 1, 1.08883) to 7 digits, so that greys get a = b = 0 exactly.
RGB_TO_XYZ = ((0.4124564, 0.3575761, 0.1804375),
              (0.2126729, 0.7151522, 0.0721750),
              (0.0193339, 0.1191920, 0.9503041))
EPSILON = 216 / 24389   # CIE: (6/29)^3, where the cube-root segment of f meets the linear one
KAPPA = 24389 / 27      # CIE: slope of that linear segment, times 116
STD_FLOOR = 1e-6        # Lab units; keeps a flat source channel from dividing by zero


def _matrix(like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(RGB_TO_XYZ, dtype=torch.float64, device=like.device)


def _check_channels(x: torch.Tensor, dim: int) -> None:
    if x.dim() < -dim or x.shape[dim] != 3:
        raise ValueError(f"expected 3 colour channels at dim {dim}, got shape {tuple(x.shape)}")


def rgb_to_lab(images: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1], (..., 3, H, W) → CIELAB (D65), same shape; L in [0, 100]."""
    _check_channels(images, -3)
    c = images.to(torch.float64)
    linear = torch.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = _matrix(c)
    xyz = torch.einsum("ij,...jhw->...ihw", m, linear) / m.sum(1).view(3, 1, 1)
    # the clamp only keeps the unused cube-root branch of torch.where finite (and its gradient)
    f = torch.where(xyz > EPSILON, xyz.clamp(min=EPSILON) ** (1 / 3), (KAPPA * xyz + 16) / 116)
    fx, fy, fz = f.unbind(-3)
    lab = torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=-3)
    return lab.to(images.dtype)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIELAB (D65), (..., 3, H, W) → sRGB, same shape, clamped to [0, 1] (out-of-gamut colours
    are clipped per channel)."""
    _check_channels(lab, -3)
    L, a, b = lab.to(torch.float64).unbind(-3)
    fy = (L + 16) / 116
    f = torch.stack([fy + a / 500, fy, fy - b / 200], dim=-3)
    # f > 6/29 exactly where f³ > EPSILON: the inverse of rgb_to_lab's two segments
    xyz = torch.where(f ** 3 > EPSILON, f ** 3, (116 * f - 16) / KAPPA)
    m = _matrix(xyz)
    linear = torch.einsum("ij,...jhw->...ihw", torch.linalg.inv(m), xyz * m.sum(1).view(3, 1, 1))
    # the clamp keeps negative (out-of-gamut) values out of the fractional power
    c = torch.where(linear <= 0.0031308, 12.92 * linear,
                    1.055 * linear.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)
    return c.clamp(0, 1).to(lab.dtype)


def ciede2000(lab1: torch.Tensor, lab2: torch.Tensor) -> torch.Tensor:
    """CIEDE2000 difference (kL = kC = kH = 1) of broadcastable Lab tensors, following Sharma, Wu &
    Dalal (2005) equations 1-22 step by step.

    Channels are at dim -3 for images (..., 3, H, W) and at dim -1 for colour lists (N, 3) or a
    single colour (3,); the result has that axis removed.
    """
    dim = -1 if lab1.dim() <= 2 else -3
    _check_channels(lab1, dim)
    _check_channels(lab2, dim)
    dtype = torch.promote_types(lab1.dtype, lab2.dtype)
    L1, a1, b1 = lab1.to(torch.float64).unbind(dim)
    L2, a2, b2 = lab2.to(torch.float64).unbind(dim)
    deg = math.pi / 180

    # a* is stretched near the neutral axis (G), giving C' and h' (eqs. 2-7)
    c_bar7 = ((torch.hypot(a1, b1) + torch.hypot(a2, b2)) / 2) ** 7
    g = 0.5 * (1 - torch.sqrt(c_bar7 / (c_bar7 + 25.0 ** 7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = torch.hypot(a1p, b1), torch.hypot(a2p, b2)
    # h' = 0 for a neutral colour (eq. 7); atan2(0, -0) would give 180
    h1p = torch.where(c1p == 0, 0.0, torch.remainder(torch.atan2(b1, a1p) / deg, 360))
    h2p = torch.where(c2p == 0, 0.0, torch.remainder(torch.atan2(b2, a2p) / deg, 360))

    # differences (eqs. 8-11): the hue difference goes the short way round, and is 0 if either
    # colour is neutral
    neutral = c1p * c2p == 0
    dh = h2p - h1p
    dh = torch.where(dh > 180, dh - 360, torch.where(dh < -180, dh + 360, dh))
    dh = torch.where(neutral, 0.0, dh)
    dL, dC = L2 - L1, c2p - c1p
    dH = 2 * torch.sqrt(c1p * c2p) * torch.sin(dh / 2 * deg)

    # means (eqs. 12-14): the mean hue is taken across 0/360 when the hues are more than 180 apart,
    # and is the plain sum when either colour is neutral
    L_bar, c_bar = (L1 + L2) / 2, (c1p + c2p) / 2
    h_sum = h1p + h2p
    # Hues exactly opposite (Sharma's pairs 10 and 14) sit on the branch point: a margin far above the
    # rounding of atan2 keeps them on the first branch (as Sharma's table does) on every libm.
    h_bar = torch.where((h1p - h2p).abs() <= 180 + 1e-9, h_sum / 2,
                        torch.where(h_sum < 360, (h_sum + 360) / 2, (h_sum - 360) / 2))
    h_bar = torch.where(neutral, h_sum, h_bar)

    # weights and the blue-region rotation (eqs. 15-21)
    t = (1 - 0.17 * torch.cos((h_bar - 30) * deg) + 0.24 * torch.cos(2 * h_bar * deg)
         + 0.32 * torch.cos((3 * h_bar + 6) * deg) - 0.20 * torch.cos((4 * h_bar - 63) * deg))
    d_theta = 30 * torch.exp(-((h_bar - 275) / 25) ** 2)
    c_bar7p = c_bar ** 7
    r_c = 2 * torch.sqrt(c_bar7p / (c_bar7p + 25.0 ** 7))
    s_l = 1 + 0.015 * (L_bar - 50) ** 2 / torch.sqrt(20 + (L_bar - 50) ** 2)
    s_c = 1 + 0.045 * c_bar
    s_h = 1 + 0.015 * c_bar * t
    r_t = -torch.sin(2 * d_theta * deg) * r_c

    lt, ct, ht = dL / s_l, dC / s_c, dH / s_h
    return torch.sqrt(lt ** 2 + ct ** 2 + ht ** 2 + r_t * ct * ht).to(dtype)  # eq. 22


def _weights(mask: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) float64 pixel weights: the mask, or all ones."""
    if mask is None:
        return torch.ones_like(like[:, :1])
    return mask.to(torch.float64)


def _stats(lab: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image, per-channel mean and (population, floored) std over the weighted pixels, each
    (B, 3, 1, 1); NaN for an empty mask."""
    n = w.sum((2, 3), keepdim=True)
    mean = (lab * w).sum((2, 3), keepdim=True) / n
    var = ((lab - mean) ** 2 * w).sum((2, 3), keepdim=True) / n
    return mean, var.sqrt().clamp(min=STD_FLOOR)


def reinhard_transfer(source: torch.Tensor, target: torch.Tensor, mask_source: torch.Tensor | None = None,
                      mask_target: torch.Tensor | None = None) -> torch.Tensor:
    """Reinhard et al. (2001) colour transfer in CIELAB: `source` with each Lab channel's mean and
    std replaced by `target`'s, image by image.

    `source`, `target`: (B, 3, H, W) sRGB in [0, 1]; the masks (B, 1, H, W, bool or 0/1) choose
    which pixels the statistics are taken over, and the mapping is then applied to every pixel
    of `source`. An image whose mask is empty comes out NaN. Returns (B, 3, H, W) sRGB in [0, 1].
    """
    if source.dim() != 4 or target.dim() != 4 or source.shape[:2] != target.shape[:2]:
        raise ValueError(f"reinhard_transfer needs two (B, 3, H, W) batches of one B, got "
                         f"{tuple(source.shape)} and {tuple(target.shape)}")
    lab_s, lab_t = rgb_to_lab(source.to(torch.float64)), rgb_to_lab(target.to(torch.float64))
    mean_s, std_s = _stats(lab_s, _weights(mask_source, lab_s))
    mean_t, std_t = _stats(lab_t, _weights(mask_target, lab_t))
    return lab_to_rgb((lab_s - mean_s) / std_s * std_t + mean_t).to(source.dtype)


def masked_mean_delta_e(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean CIEDE2000 between sRGB batches `a` and `b` (B, 3, H, W) over each image's pixels in
    `mask` (B, 1, H, W, bool or 0/1): (B,), NaN where the mask is empty."""
    de = ciede2000(rgb_to_lab(a.to(torch.float64)), rgb_to_lab(b.to(torch.float64)))
    w = mask.to(torch.float64)[:, 0]
    return ((de * w).sum((1, 2)) / w.sum((1, 2))).to(a.dtype)
