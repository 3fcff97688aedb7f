"""Rotations for GCL's rotated views: turning a posed body about the vertical axis through its
centre, and the axis-angle <-> matrix conversions SMPL parameters need.

Conventions: SMPL's axes (y up, the body faces +z, its left is +x). A positive yaw turns the body
counter-clockwise seen from above (right-hand rule about +y): a body facing +z turns to face +x.

Why not `global_orient`: smplx rotates the whole body about its root (pelvis) joint, which sits
a few centimetres off the body's middle and moves with the pose; turning a walking person that
way swings the silhouette sideways in the frame. Here the body turns about the vertical line
through its *centre*, the mean x and z of its vertices (`body_center`): for a standing person
this is the middle of the footprint the eye reads as "the person", it is the same point for
every yaw (so rotating by a and then b equals rotating by a + b), and it needs no joints, so it
works for any mesh. Vertices and joints must turn about the same centre: compute it once from
the vertices and pass it to both (`rotate_body` does).
"""
from __future__ import annotations

import torch
from torch import Tensor


def _vee(m: Tensor) -> Tensor:
    """(..., 3, 3) skew part -> (..., 3) vector: (m - m^T) / 2 read as a cross-product matrix."""
    return 0.5 * torch.stack([m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                              m[..., 1, 0] - m[..., 0, 1]], dim=-1)


def axis_angle_to_matrix(axis_angle: Tensor) -> Tensor:
    """(..., 3) rotation vectors (axis × angle, radians) -> (..., 3, 3) matrices (Rodrigues)."""
    theta2 = (axis_angle * axis_angle).sum(-1, keepdim=True)[..., None]   # (..., 1, 1)
    x, y, z = axis_angle.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(
        axis_angle.shape[:-1] + (3, 3))
    small = theta2 < 1e-8
    safe2 = torch.where(small, torch.ones_like(theta2), theta2)   # finite gradients at 0
    safe = safe2.sqrt()
    # sin(θ)/θ and (1 - cos θ)/θ², with their Taylor series near 0.
    a = torch.where(small, 1 - theta2 / 6, torch.sin(safe) / safe)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(safe)) / safe2)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + a * k + b * (k @ k)


def matrix_to_axis_angle(matrix: Tensor) -> Tensor:
    """(..., 3, 3) rotation matrices -> (..., 3) rotation vectors with angle in [0, π]."""
    w = _vee(matrix)                                   # sin θ · axis
    sin = w.norm(dim=-1)
    cos = ((matrix.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) * 0.5).clamp(-1, 1)
    theta = torch.atan2(sin, cos)
    # Away from π: axis = w / sin θ (θ / sin θ -> 1 as θ -> 0).
    safe_sin = torch.where(sin < 1e-12, torch.ones_like(sin), sin)
    factor = torch.where(sin < 1e-6, 1 + theta * theta / 6, theta / safe_sin)
    near_pi_free = w * factor[..., None]
    # Near π, sin θ loses the axis: read it from (R + I) / 2 ≈ axis axis^T instead.
    sym = 0.5 * (matrix + matrix.transpose(-1, -2)) - cos[..., None, None] * torch.eye(
        3, dtype=matrix.dtype, device=matrix.device)
    sym = sym / (1 - cos).clamp_min(1e-12)[..., None, None]           # = axis axis^T
    k = sym.diagonal(dim1=-2, dim2=-1).argmax(-1)
    row = torch.gather(sym, -2, k[..., None, None].expand(sym.shape[:-2] + (1, 3))).squeeze(-2)
    axis = row / row.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    sign = torch.where((axis * w).sum(-1) < 0, -1.0, 1.0).to(matrix.dtype)
    near_pi = axis * (sign * theta)[..., None]
    return torch.where((cos < -0.9)[..., None], near_pi, near_pi_free)


def yaw_matrix(yaw: Tensor) -> Tensor:
    """(B,) angles in radians -> (B, 3, 3) rotations about +y."""
    c, s = torch.cos(yaw), torch.sin(yaw)
    one, zero = torch.ones_like(yaw), torch.zeros_like(yaw)
    return torch.stack([c, zero, s, zero, one, zero, -s, zero, c], dim=-1).reshape(
        yaw.shape + (3, 3))


def body_center(vertices: Tensor) -> Tensor:
    """(B, N, 3) vertices -> (B, 3) centre: the mean of the vertices. Only its x and z matter
    for a turn about the vertical."""
    return vertices.mean(dim=1)


def rotate_about_vertical(points: Tensor, yaw, center: Tensor | None = None) -> Tensor:
    """Turn (B, N, 3) points by ``yaw`` (B,) radians about the vertical line through
    ``center`` (B, 3); by default the points' own `body_center`."""
    yaw = torch.as_tensor(yaw, dtype=points.dtype, device=points.device).reshape(-1)
    if center is None:
        center = body_center(points)
    c = center.to(points.dtype).reshape(-1, 1, 3) * points.new_tensor([1.0, 0.0, 1.0])
    return (points - c) @ yaw_matrix(yaw).expand(points.shape[0], 3, 3).transpose(1, 2) + c


def rotate_body(vertices: Tensor, joints: Tensor, yaw):
    """Turn a posed body's vertices and joints together about its centre (from the vertices).
    Returns (vertices, joints, center)."""
    center = body_center(vertices)
    return (rotate_about_vertical(vertices, yaw, center),
            rotate_about_vertical(joints, yaw, center), center)


def yaw_smpl_params(global_orient: Tensor, transl: Tensor, root: Tensor, yaw, center: Tensor):
    """SMPL parameters that give the same body turned by ``yaw`` about ``center``.

    smplx places a vertex at R (v - j0) + j0 + transl, j0 being the rest root joint. Turning
    that about c gives global orientation R_y R and translation R_y (r - c) + c - r + transl,
    where r = j0 + transl is the posed root joint (``root``: the model's ``joints[:, 0]``).
    All inputs are batched (B, 3) except ``yaw`` (B,); returns (global_orient, transl)."""
    yaw = torch.as_tensor(yaw, dtype=transl.dtype, device=transl.device).reshape(-1)
    ry = yaw_matrix(yaw)
    orient = matrix_to_axis_angle(ry @ axis_angle_to_matrix(global_orient))
    c = center * center.new_tensor([1.0, 0.0, 1.0])
    new_transl = (ry @ (root - c)[..., None])[..., 0] + c - root + transl
    return orient, new_transl
