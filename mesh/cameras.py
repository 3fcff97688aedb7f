"""Cameras: world → camera frame → pixels (+ a depth for the z-buffer).

One set of conventions for the whole suite:

World
    Metres, **y up**. A body in its rest pose stands along +y and faces +z (SMPL's frame).

Camera frame (OpenCV's, which is also SPIN's / HMR's)
    x right, **y down**, z forward: the camera looks down **+z** and sees points with z > 0.
    ``x_cam = R @ x_world + t``. A camera in front of an upright body (at +z, looking at it)
    therefore has ``R = Y_UP_TO_CAMERA = diag(1, -1, -1)`` (a half turn about x); `look_at`
    builds R and t for any eye / target / up. Smaller camera z is nearer, for both cameras.

Pixels
    u (column) to the right, v (row) down; the image covers [0, W] × [0, H] and the centre of
    pixel (row i, column j) is at (j + 0.5, i + 0.5).

NDC (weak perspective)
    x_ndc = s·(x + tx), y_ndc = s·(y + ty) on camera-frame points — SPIN's convention: SPIN
    turns (s, tx, ty) into the translation (tx, ty, 2·f / (res·s)) of a perspective camera with
    R = I looking down +z, and its keypoints are normalised as ndc = 2·pixel / res − 1 with
    pixel rows growing downward, so **y_ndc grows with the image row** and (−1, −1) is the
    top-left corner of SPIN's square res × res crop. SPIN's regressed global orientation
    already holds the half turn about x that stands a y-up body upright in that frame; to
    project a y-up body with a weak-perspective camera, give it ``R=Y_UP_TO_CAMERA``.

    A person crop is H × W (H = 2W typical), not square. `ndc_to_pixel` keeps pixels square:
    NDC [−1, 1]² is the square of side S = max(H, W) centred on the crop,
    u = W/2 + x_ndc·S/2, v = H/2 + y_ndc·S/2. For H = 2W the crop shows y_ndc ∈ [−1, 1] and
    x_ndc ∈ [−0.5, 0.5]: exactly the central strip of the square crop an HMR regressor sees
    when a person crop is padded to a square. The weak-perspective depth is the camera-frame z.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

__all__ = ["Y_UP_TO_CAMERA", "PerspectiveCamera", "WeakPerspectiveCamera", "look_at",
           "ndc_to_pixel", "pixel_to_ndc", "weak_perspective_to_translation", "fov_to_focal"]

#: World → camera rotation of a camera in front of a y-up body facing +z (half turn about x).
Y_UP_TO_CAMERA = torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])


def _batched(x, batch, shape, like):
    """`x` (a number, shape `shape` or (B, *shape)) as a (batch, *shape) tensor like `like`."""
    x = torch.as_tensor(x, dtype=like.dtype, device=like.device)
    if x.dim() == len(shape):
        x = x.expand(*shape) if shape else x
        return x.unsqueeze(0).expand(batch, *shape)
    return x.expand(batch, *shape)


def _rigid(points, R, t):
    """R @ p + t for (B, V, 3) points; R (3,3)|(B,3,3) or None, t (3,)|(B,3) or None."""
    if R is not None:
        R = _batched(R, points.shape[0], (3, 3), points)
        points = points @ R.transpose(1, 2)
    if t is not None:
        points = points + _batched(t, points.shape[0], (3,), points)[:, None, :]
    return points


def ndc_to_pixel(xy_ndc: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """NDC (..., 2) → pixel (u, v) in an H × W crop; square pixels, see the module docstring."""
    half = max(height, width) / 2.0
    centre = xy_ndc.new_tensor([width / 2.0, height / 2.0])
    return centre + xy_ndc * half


def pixel_to_ndc(uv: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse of `ndc_to_pixel`."""
    half = max(height, width) / 2.0
    centre = uv.new_tensor([width / 2.0, height / 2.0])
    return (uv - centre) / half


def look_at(eye, target=(0.0, 0.0, 0.0), up=(0.0, 1.0, 0.0)):
    """World → camera (R (…,3,3), t (…,3)) of a camera at `eye` looking at `target`.

    `up` is the world direction that appears upward in the image (y-up world: (0, 1, 0)).
    Inputs may be batched (…, 3).
    """
    eye = torch.as_tensor(eye, dtype=torch.float32)
    target = torch.as_tensor(target, dtype=eye.dtype).expand_as(eye)
    up = torch.as_tensor(up, dtype=eye.dtype).expand_as(eye)
    z = torch.nn.functional.normalize(target - eye, dim=-1)          # forward
    x = torch.nn.functional.normalize(torch.cross(z, up, dim=-1), dim=-1)  # right
    y = torch.cross(z, x, dim=-1)                                    # down
    R = torch.stack([x, y, z], dim=-2)
    t = -(R @ eye.unsqueeze(-1)).squeeze(-1)
    return R, t


@dataclass
class PerspectiveCamera:
    """Pinhole camera: u = fx·x/z + cx, v = fy·y/z + cy on camera-frame points (z forward).

    focal: pixels: a number, (B,) per image, or (B, 2) / (1, 2) for (fx, fy).
    principal: (cx, cy) in pixels, (2,) or (B, 2); None → the image centre (W/2, H/2).
    R, t: world → camera, (3, 3)/(B, 3, 3) and (3,)/(B, 3); None → identity / zero, i.e. the
    vertices are already in the camera frame.
    """
    focal: object
    principal: Optional[object] = None
    R: Optional[object] = None
    t: Optional[object] = None

    perspective = True

    def to_camera(self, points: torch.Tensor) -> torch.Tensor:
        """World points (B, V, 3) → camera frame."""
        return _rigid(points, self.R, self.t)

    def project_camera(self, points_cam: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Camera-frame points (B, V, 3) → (B, V, 3): pixel u, pixel v, camera z."""
        B = points_cam.shape[0]
        f = torch.as_tensor(self.focal, dtype=points_cam.dtype, device=points_cam.device)
        f = _focal(f, B, points_cam)
        if self.principal is None:
            c = points_cam.new_tensor([width / 2.0, height / 2.0]).expand(B, 2)
        else:
            c = _batched(self.principal, B, (2,), points_cam)
        z = points_cam[..., 2]
        uv = points_cam[..., :2] / z.unsqueeze(-1) * f[:, None, :] + c[:, None, :]
        return torch.cat([uv, z.unsqueeze(-1)], dim=-1)

    def project(self, points: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """World points (B, V, 3) → (B, V, 3): pixel u, pixel v, camera z."""
        return self.project_camera(self.to_camera(points), height, width)


def _focal(f, batch, like):
    """Focal length as (B, 2): a number → both axes; (B,) → per image; (B, 2) kept."""
    if f.dim() == 0:
        return f.expand(batch, 2)
    if f.dim() == 1:
        if f.shape[0] == batch:
            return f.unsqueeze(-1).expand(batch, 2)
        return f.expand(batch, 2)  # (2,) shared by the batch
    return f.expand(batch, 2)


@dataclass
class WeakPerspectiveCamera:
    """HMR / SPIN weak perspective: x_ndc = s·(x + tx), y_ndc = s·(y + ty), then `ndc_to_pixel`.

    cam: (3,) or (B, 3) rows (s, tx, ty) as HMR predicts them.
    R: optional world → camera rotation applied first ((3, 3) or (B, 3, 3)); None means the
    points are already in SPIN's camera frame (y down). For a y-up body use Y_UP_TO_CAMERA.
    Depth is the camera-frame z (nearer is smaller), so the z-buffer keeps the smallest.
    """
    cam: object
    R: Optional[object] = None

    perspective = False

    def to_camera(self, points: torch.Tensor) -> torch.Tensor:
        return _rigid(points, self.R, None)

    def project_camera(self, points_cam: torch.Tensor, height: int, width: int) -> torch.Tensor:
        cam = _batched(self.cam, points_cam.shape[0], (3,), points_cam)
        s, txy = cam[:, None, :1], cam[:, None, 1:]
        ndc = s * (points_cam[..., :2] + txy)
        return torch.cat([ndc_to_pixel(ndc, height, width), points_cam[..., 2:]], dim=-1)

    def project(self, points: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return self.project_camera(self.to_camera(points), height, width)


def weak_perspective_to_translation(cam: torch.Tensor, focal: float, size: float) -> torch.Tensor:
    """SPIN's conversion of (s, tx, ty) to a perspective camera translation (tx, ty, tz).

    tz = 2·focal / (size·s), where `size` is the side of the square that NDC [−1, 1] spans in
    pixels (max(H, W) for `ndc_to_pixel`). With R = I (plus the weak camera's R, if any), focal
    `focal` and the principal point at the crop centre, the perspective camera sees the body
    as the weak-perspective one does, up to the perspective of the body's own depth.
    """
    cam = torch.as_tensor(cam)
    tz = 2.0 * focal / (size * cam[..., 0] + 1e-9)
    return torch.stack([cam[..., 1], cam[..., 2], tz], dim=-1)


def fov_to_focal(fov_degrees: float, pixels: float) -> float:
    """Focal length in pixels of a camera whose field of view spans `pixels`."""
    return pixels / (2.0 * math.tan(math.radians(fov_degrees) / 2.0))
