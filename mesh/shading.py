"""Vertex normals and Lambert shading (ambient + directional lights).

Lights live in the **camera frame** (x right, y down, z forward; see `mesh.cameras`), so a
body turned in front of the camera is lit the same way from every view, as in a studio. A
light's `direction` points from the surface **toward** the light: (0, 0, −1) is a light at
the camera, (0, −1, 0) a light straight above.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import torch

__all__ = ["vertex_normals", "lambert", "DEFAULT_LIGHTS", "DEFAULT_AMBIENT", "GREY"]

#: A key light from above-left of the camera and a weaker fill from the right.
DEFAULT_LIGHTS: Tuple[Tuple[Tuple[float, float, float], float], ...] = (
    ((-0.35, -0.6, -1.0), 0.55),
    ((0.6, -0.1, -0.8), 0.2),
)
DEFAULT_AMBIENT = 0.35
#: Surface colour of the grey structure render.
GREY = 0.75


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Unit per-vertex normals (B, V, 3): the sum of the incident faces' area-weighted normals.

    A face (i, j, k) wound counter-clockwise seen from outside has the outward normal
    (v_j − v_i) × (v_k − v_i), whose length is twice its area — summing them unnormalised is
    the area weighting. Vertices in no face get a zero normal. Works on a (V, 3·B) layout so
    that every gather and sum moves contiguous rows (5x faster than on (B, V, 3)).
    """
    B, V, _ = vertices.shape
    faces = faces.to(device=vertices.device, dtype=torch.long)
    P = vertices.permute(1, 2, 0).reshape(V, 3 * B)                 # row v: x (B), y (B), z (B)
    t0, t1, t2 = (P.index_select(0, faces[:, k].contiguous()) for k in range(3))
    e1, e2 = (t1 - t0).view(-1, 3, B), (t2 - t0).view(-1, 3, B)
    n = torch.empty_like(e1)
    for i, j, k in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):              # n_i = e1_j e2_k - e1_k e2_j
        torch.mul(e1[:, j], e2[:, k], out=n[:, i])
        n[:, i].sub_(e1[:, k] * e2[:, j])
    n = n.view(-1, 3 * B)
    out = torch.zeros_like(P)
    for k in range(3):
        out.index_add_(0, faces[:, k], n)
    out = out.view(V, 3, B)
    length = out[:, 0] * out[:, 0] + out[:, 1] * out[:, 1] + out[:, 2] * out[:, 2]
    out = out * length.sqrt_().clamp_min_(1e-12).reciprocal_().unsqueeze(1)
    return out.permute(2, 0, 1)


def _per_image(x, batch, like):
    """A number, (3,), (B,) or (B, 3) → (B, 1, 3) or (B, 1, 1) broadcastable over vertices."""
    x = torch.as_tensor(x, dtype=like.dtype, device=like.device)
    if x.dim() == 0:
        return x.view(1, 1, 1).expand(batch, 1, 1)
    if x.dim() == 1:
        if x.shape[0] == batch and batch != 3:
            return x.view(batch, 1, 1)
        return x.view(1, 1, -1).expand(batch, 1, x.shape[0])
    return x.view(batch, 1, -1)


def lambert(normals: torch.Tensor, colors: torch.Tensor, ambient=DEFAULT_AMBIENT,
            lights: Sequence = DEFAULT_LIGHTS) -> torch.Tensor:
    """Lit colour colors·(ambient + Σ intensity·max(0, n·l)), clamped to [0, 1].

    normals: (B, V, 3) unit, camera frame. colors: (B, V, 3) or (V, 3).
    ambient: a number, (B,), (3,) or (B, 3) (an RGB ambient gives a colour cast).
    lights: sequence of (direction, intensity); direction (3,) or (B, 3) toward the light in
    the camera frame (normalised here); intensity a number, (B,), (3,) or (B, 3).
    """
    B = normals.shape[0]
    light = _per_image(ambient, B, normals).expand(B, 1, 3)
    for direction, intensity in lights:
        d = torch.as_tensor(direction, dtype=normals.dtype, device=normals.device)
        d = torch.nn.functional.normalize(d.reshape(-1, 3), dim=-1).expand(B, 3)
        cos = (normals @ d.unsqueeze(-1)).clamp_min_(0.0)          # (B, V, 1)
        light = light + cos * _per_image(intensity, B, normals)
    return (colors * light).clamp_(0.0, 1.0)
