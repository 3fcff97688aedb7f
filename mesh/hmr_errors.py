"""How far HMR's bodies are from the synthetic world's true ones: the geometry its training losses
and its evaluation share, and the evaluation itself (mean per-vertex and per-joint error of the
pelvis-aligned bodies in millimetres — the body model is in metres —, the mean 2D joint error in
pixels, and the error of the body's global orientation in the camera frame, in degrees: the angle
of the rotation between the predicted and the true one, its median and mean)."""
from __future__ import annotations

from contextlib import nullcontext

import torch

from models.hmr import hmr_input
from reid_data import test_loader
from reid_data.synthetic.hmr_targets import hmr_targets
from reid_data.transforms import normalize

from .cameras import WeakPerspectiveCamera, pixel_to_ndc
from .views import pose_body


def keypoints_ndc(joints, cam, height: int, width: int):
    """Joints (B, J, 3) through weak-perspective cameras (B, 3) → crop NDC (B, J, 2). The joints
    are the posed body's (`mesh.views.pose_body`), as SPIN projects them and as `render_grey`
    draws the vertices: pelvis-aligned ones would put the camera a root offset (~0.22 m) away from
    where the renders need it."""
    pixels = WeakPerspectiveCamera(cam).project_camera(joints, height, width)[..., :2]
    return pixel_to_ndc(pixels, height, width)


def regressed_body(body, out, height: int, width: int):
    """An HMR answer's pelvis-aligned vertices and joints, and its 2D joints in crop NDC."""
    verts, joints = pose_body(body, out.rotmat.float(), out.betas.float())
    return (*aligned(verts, joints), keypoints_ndc(joints, out.cam.float(), height, width))


def aligned(vertices, joints):
    """Vertices and joints relative to the pelvis (joint 0)."""
    root = joints[:, :1]
    return vertices - root, joints - root


@torch.no_grad()
def body_errors(model, body, world, samples, data_cfg, input_size: int, device: torch.device,
                autocast=nullcontext) -> dict[str, float]:
    """Mean errors of `model` (eval mode) over `samples` of the synthetic `world`."""
    sums = torch.zeros(3, dtype=torch.float64)
    angles = []
    for batch in test_loader(samples, data_cfg):
        names = [samples[i].path for i in batch["index"].tolist()]
        target = {k: v.to(device) for k, v in hmr_targets(world, names).items()}
        with autocast():
            out = model(hmr_input(normalize(batch["image"].to(device)), input_size))
        pv, pj, kp = regressed_body(body, out, world.height, world.width)
        tv, tj = aligned(*pose_body(body, target["rotmat"], target["betas"]))
        sums += torch.stack([(pv - tv).norm(dim=-1).mean(1).sum(),
                             (pj - tj).norm(dim=-1).mean(1).sum(),
                             (kp - target["keypoints"]).norm(dim=-1).mean(1).sum()]).double().cpu()
        angles.append(rotation_angle(out.rotmat[:, 0].float(), target["rotmat"][:, 0]).cpu())
    mpve, mpjpe, kp = (sums / len(samples)).tolist()
    half = max(world.height, world.width) / 2     # NDC units → pixels
    degrees = torch.rad2deg(torch.cat(angles).double())
    return {"mpve_mm": 1000 * mpve, "mpjpe_mm": 1000 * mpjpe, "keypoint_px": half * kp,
            "orientation_median_deg": degrees.median().item(), "orientation_mean_deg": degrees.mean().item()}


def rotation_angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The angle (radians, 0..pi) of the rotation taking b to a, for rotation matrices (..., 3, 3):
    from the trace of a^T b, 1 + 2 cos(angle)."""
    trace = (a * b).sum((-2, -1))
    return torch.acos(((trace - 1) / 2).clamp(-1.0, 1.0))
