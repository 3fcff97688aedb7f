"""What an HMR regressor should answer for an image of the world, in its conventions
(`models.hmr`, `mesh.cameras`): SMPL rotations with the global orientation in the camera frame,
the shape coefficients, and the 24 joints as the image shows them, in the crop's NDC.

The world poses a body with a zero global orientation, turns it by its yaw about the vertical
and looks at it through the camera rotation R (y-up world → y-down camera frame), so the
orientation the image shows is R · R_y(yaw) · R(pose[0]); the position needs no translation
target: the weak-perspective camera learns it from the 2D joints.
"""
from __future__ import annotations

import numpy as np
import torch

from mesh.cameras import pixel_to_ndc
from mesh.rotation import axis_angle_to_matrix, yaw_matrix

from .ground_truth import WorldGroundTruth


def hmr_targets(gt: WorldGroundTruth, names: list[str]) -> dict[str, torch.Tensor]:
    """rotmat (B, 24, 3, 3), betas (B, 10), keypoints (B, 24, 2) of images ``names``."""
    recs = [gt.record(n) for n in names]
    pose = torch.as_tensor(np.stack([r["pose"] for r in recs]), dtype=torch.float32)
    rotmat = axis_angle_to_matrix(pose)
    R = torch.as_tensor(np.stack([r["R"] for r in recs]), dtype=torch.float32)
    yaw = torch.as_tensor([r["yaw"] for r in recs], dtype=torch.float32)
    rotmat[:, 0] = R @ yaw_matrix(yaw) @ rotmat[:, 0]
    for r in recs:
        r["pose"] = r["pose"].astype(np.float64)
    _, _, joints = gt.imager.pose([r["appearance"] for r in recs], recs, with_joints=True)
    t = torch.as_tensor(np.stack([r["t"] for r in recs]), dtype=torch.float32)
    K = torch.as_tensor(np.stack([r["K"] for r in recs]), dtype=torch.float32)
    cam = joints.float() @ R.transpose(1, 2) + t[:, None]
    uv = cam @ K.transpose(1, 2)
    uv = uv[..., :2] / uv[..., 2:]
    betas = torch.as_tensor(np.stack([r["betas"] for r in recs]), dtype=torch.float32)
    return {"rotmat": rotmat, "betas": betas,
            "keypoints": pixel_to_ndc(uv, gt.height, gt.width)}
