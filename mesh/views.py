"""Bodies from SMPL rotations (an HMR answer), turned to new views, and their grey renders —
GCL's structure images.

A view turns the body about the vertical axis of its own frame (the pelvis's up direction)
through its centre, before the global orientation puts it in front of the camera. For a world
body (zero pose[0], turned about the world's vertical) that is exactly the world's turn; for
a regressed one it is the best vertical HMR gives (the camera's tilt is unknown), and a
person standing or walking holds the pelvis upright.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .cameras import WeakPerspectiveCamera
from .rasterizer import render
from .rotation import rotate_about_vertical


def pose_body(body_model, rotmat: torch.Tensor, betas: torch.Tensor):
    """Vertices (B, V, 3) and the 24 joints (B, 24, 3) of an `smplx.SMPL` ``body_model`` with
    rotations ``rotmat`` (B, 24, 3, 3) and ``betas`` (B, 10); no translation."""
    out = body_model(betas=betas, global_orient=rotmat[:, :1], body_pose=rotmat[:, 1:],
                     pose2rot=False)
    return out.vertices, out.joints[:, :rotmat.shape[1]]


def turned_vertices(body_model, rotmat, betas, degrees) -> list[torch.Tensor]:
    """Camera-frame vertices (B, V, 3) of the body turned by each angle of ``degrees``
    (positive: counter-clockwise seen from above, `mesh.rotation`); 0 gives the body as
    regressed."""
    upright = rotmat.clone()
    upright[:, 0] = torch.eye(3, dtype=rotmat.dtype, device=rotmat.device)
    verts, joints = pose_body(body_model, upright, betas)
    root = joints[:, :1]                     # smplx turns the body about its root joint
    orient = rotmat[:, 0].transpose(1, 2)
    out = []
    for deg in degrees:
        turned = rotate_about_vertical(verts, math.radians(deg))
        out.append((turned - root) @ orient + root)
    return out


def render_grey(vertices, faces, cam, height: int, width: int, supersample: int = 2):
    """(B, 1, H, W) grey renders in [0, 1] through weak-perspective cameras ``cam`` (B, 3),
    drawn at ``supersample`` × the size and area-filtered down (as the world's images)."""
    s = supersample
    out = render(vertices, faces, WeakPerspectiveCamera(cam), height * s, width * s,
                 mode="grey")
    grey = out.rgb[:, :1]
    if s > 1:
        grey = F.interpolate(grey, size=(height, width), mode="bilinear", antialias=True,
                             align_corners=False)
    return grey.clamp(0, 1)
