"""HMR regressor: shapes, SPIN's state-dict layout, 6D rotations, checkpoint files, and a few
`trainer: hmr` iterations on a tiny synthetic world."""
import math

import numpy as np
import pytest
import torch

from configs.loader import load_config
from mesh.rotation import axis_angle_to_matrix
from models.hmr import HMR, hmr_input, load_hmr_weights, matrix_to_rot6d, read_mean_params, rot6d_to_matrix
from models.weights import WeightsError
from runtime.checkpoint import hmr_weights
from trainers import build_trainer

EPS32 = torch.finfo(torch.float32).eps


def spin_layout() -> dict[str, tuple]:
    """SPIN's regressor (ResNet-50 Bottleneck [3, 4, 6, 3] + IEF head) written out by hand."""
    shapes = {}

    def bn(name, c):
        shapes.update({f"{name}.weight": (c,), f"{name}.bias": (c,), f"{name}.running_mean": (c,),
                       f"{name}.running_var": (c,), f"{name}.num_batches_tracked": ()})

    shapes["conv1.weight"] = (64, 3, 7, 7)
    bn("bn1", 64)
    inplanes = 64
    for layer, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3)), start=1):
        for b in range(blocks):
            p = f"layer{layer}.{b}"
            shapes[f"{p}.conv1.weight"] = (planes, inplanes, 1, 1)
            bn(f"{p}.bn1", planes)
            shapes[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            bn(f"{p}.bn2", planes)
            shapes[f"{p}.conv3.weight"] = (planes * 4, planes, 1, 1)
            bn(f"{p}.bn3", planes * 4)
            if b == 0:
                shapes[f"{p}.downsample.0.weight"] = (planes * 4, inplanes, 1, 1)
                bn(f"{p}.downsample.1", planes * 4)
            inplanes = planes * 4
    for name, (out, inp) in {"fc1": (1024, 2048 + 144 + 13), "fc2": (1024, 1024),
                             "decpose": (144, 1024), "decshape": (10, 1024),
                             "deccam": (3, 1024)}.items():
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (out, inp), (out,)
    shapes.update({"init_pose": (1, 144), "init_shape": (1, 10), "init_cam": (1, 3)})
    return shapes


def test_state_dict_is_spins_layout():
    got = {k: tuple(v.shape) for k, v in HMR("resnet50").state_dict().items()}
    assert got == spin_layout()


def test_forward_shapes_and_rotations():
    model = HMR("resnet18").eval()
    x = hmr_input(torch.randn(2, 3, 64, 32), 64)
    assert x.shape == (2, 3, 64, 64)
    assert (x[..., :16] == 0).all() and (x[..., 48:] == 0).all()   # padded left and right
    out = model(x)
    assert out.rotmat.shape == (2, 24, 3, 3) and out.betas.shape == (2, 10)
    assert out.cam.shape == (2, 3)
    eye = torch.eye(3).expand(2, 24, 3, 3)
    # the 6D outputs are the mean pose (orthonormal columns) plus small corrections (decpose's
    # gain 0.01), so Gram-Schmidt is well conditioned: 3-term dot products of unit vectors, ~ few eps32
    assert torch.allclose(out.rotmat @ out.rotmat.transpose(-1, -2), eye, rtol=0, atol=16 * EPS32)


def test_rot6d_orthonormal_and_round_trip():
    torch.manual_seed(0)
    x = torch.randn(100, 6)
    m = rot6d_to_matrix(x)
    # Gram-Schmidt loses accuracy as the two 3-vectors approach parallel: the second column's
    # error is ~ eps32 / sin(angle between them), per sample
    a = x.reshape(100, 3, 2)
    sin = torch.linalg.cross(a[..., 0], a[..., 1]).norm(dim=-1) / (a[..., 0].norm(dim=-1) * a[..., 1].norm(dim=-1))
    tol = 8 * EPS32 * (1 + 1 / sin)
    assert ((m @ m.transpose(-1, -2) - torch.eye(3)).abs().amax((1, 2)) <= tol).all()
    assert ((torch.linalg.det(m) - 1).abs() <= tol).all()
    # Rodrigues' matrices: entries <= 3 from ~10 float32 roundings (well conditioned columns)
    r = axis_angle_to_matrix(torch.randn(100, 3))
    assert torch.allclose(rot6d_to_matrix(matrix_to_rot6d(r)), r, rtol=0, atol=16 * EPS32)
    # SPIN's layout: the first two columns read row by row.
    assert matrix_to_rot6d(torch.eye(3)).tolist() == [1, 0, 0, 1, 0, 0]


def test_spin_files_load_and_missing_files_are_one_sentence(tmp_path):
    src = HMR("resnet18")
    torch.save({"model": src.state_dict(), "optimizer": {}}, tmp_path / "model_checkpoint.pt")
    dst = load_hmr_weights(HMR("resnet18"), hmr_weights(tmp_path / "model_checkpoint.pt"), "SPIN's file")
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(),
                                                 dst.state_dict().values()))
    mean = {"pose": np.arange(144, dtype=np.float64), "shape": np.ones(10), "cam": np.ones(3)}
    np.savez(tmp_path / "smpl_mean_params.npz", **mean)
    params = read_mean_params(tmp_path / "smpl_mean_params.npz")
    assert HMR("resnet18", mean_params=params).init_pose[0, 5].item() == 5.0
    with pytest.raises(WeightsError, match="does not exist; SPIN's fetch_data.sh"):
        read_mean_params(tmp_path / "nothing.npz")
    with pytest.raises(WeightsError, match="needs model.backbone resnet50"):
        load_hmr_weights(HMR("resnet34"), hmr_weights(tmp_path / "model_checkpoint.pt"), "SPIN's file")
    with pytest.raises(WeightsError, match="does not exist; SPIN's fetch_data.sh"):
        hmr_weights(tmp_path / "none.pt")


def hmr_cfg(root, logs, *overrides):
    return load_config(None, [
        "trainer=hmr", "data.dataset=synthetic", f"data.root={root}", "data.height=64",
        "data.width=32", "data.batch_size=6", "data.workers=0", "data.test_batch_size=16",
        "model.backbone=resnet18", "hmr.input_size=32", "optim.name=adam", "optim.lr=1e-4",
        "optim.weight_decay=0", "optim.milestones=[100]", "run.max_iter=2", "run.device=cpu",
        "run.log_every=1", "run.checkpoint_every=100", f"run.log_dir={logs}", "run.name=hmr",
        *overrides])


def test_hmr_trainer_learns_and_evaluates(tiny_world_root, tmp_path):
    cfg = hmr_cfg(tiny_world_root, tmp_path)
    trainer = build_trainer(cfg, tmp_path / "hmr")
    batch = next(trainer.batches(0))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    losses = [trainer.train_step(batch) for _ in range(8)]   # the same batch: loss must fall
    assert all(math.isfinite(v) for h in losses for v in h.values())
    first, last = (sum(h["loss"] for h in part) / 2 for part in (losses[:2], losses[-2:]))
    assert last < 0.9 * first
    changed = [k for k, v in trainer.model.state_dict().items()
               if v.dtype.is_floating_point and not torch.equal(v, before[k])]
    assert "decpose.weight" in changed and "conv1.weight" in changed
    results = trainer.evaluate()
    assert set(results) == {"mpve_mm", "mpjpe_mm", "keypoint_px", "orientation_median_deg", "orientation_mean_deg"}
    assert all(0 < v < 5000 for v in results.values())
    assert results["orientation_median_deg"] <= 180 and results["orientation_mean_deg"] <= 180


def test_rotation_angle_of_known_turns():
    from mesh.hmr_errors import rotation_angle
    from mesh.rotation import axis_angle_to_matrix
    torch.manual_seed(0)
    base = axis_angle_to_matrix(torch.randn(5, 3))
    axis = torch.nn.functional.normalize(torch.randn(5, 3), dim=1)
    turn = torch.tensor([0.0, 0.3, 1.0, 2.5, 3.1])
    turned = axis_angle_to_matrix(axis * turn[:, None]) @ base
    # float32 rotations to ~1e-6; acos near 0 and pi loses half the digits: sqrt(2 * 1e-6) ~ 1.4e-3
    assert torch.allclose(rotation_angle(turned, base), turn, rtol=0, atol=2e-3)


def weak_camera_fit(joints, keypoints):
    """The least-squares weak-perspective camera (s, tx, ty) taking joints (B, J, 3) to keypoints
    (B, J, 2) in NDC (ndc = s·xy + s·t), and the fitted keypoints."""
    B, J = joints.shape[:2]
    A = torch.zeros(B, 2 * J, 3)
    A[:, 0::2, 0], A[:, 1::2, 0] = joints[..., 0], joints[..., 1]
    A[:, 0::2, 1], A[:, 1::2, 2] = 1, 1
    sol = torch.linalg.lstsq(A, keypoints.reshape(B, 2 * J, 1)).solution[..., 0]
    cam = torch.stack([sol[:, 0], sol[:, 1] / sol[:, 0], sol[:, 2] / sol[:, 0]], dim=1)
    return cam, (A @ sol[..., None]).reshape(B, J, 2)


def test_world_targets_agree_with_the_body(tiny_world_root):
    """The targets' 2D joints are where a weak-perspective camera sees the targets' body."""
    from mesh import load_body_model
    from mesh.views import pose_body
    from reid_data.synthetic.ground_truth import load_ground_truth
    from reid_data.synthetic.hmr_targets import hmr_targets
    gt = load_ground_truth(tiny_world_root / "synthetic")
    target = hmr_targets(gt, [r["name"] for r in gt.images[:6]])
    body = load_body_model(None, create_transl=False)
    _, joints = pose_body(body, target["rotmat"], target["betas"])
    _, fit = weak_camera_fit(joints.detach(), target["keypoints"])
    assert (fit - target["keypoints"]).abs().mean(dim=(1, 2)).max() < 0.08    # perspective effects only


def test_the_keypoint_loss_places_the_camera_where_the_renders_need_it(tiny_world_root):
    """The camera that answers the keypoint term draws the body over the person: the loss projects
    the posed joints, as `render_grey` draws the posed vertices (pelvis-aligned joints put it a
    root offset, ~0.22 m, off: the true body then covers half the world's silhouette, IoU ~0.5)."""
    from types import SimpleNamespace
    from mesh import load_body_model
    from mesh.render_agreement import SILHOUETTE_GREY
    from mesh.views import pose_body, render_grey, turned_vertices
    from reid_data.synthetic.ground_truth import load_ground_truth
    from reid_data.synthetic.hmr_targets import hmr_targets
    from trainers.hmr import hmr_losses
    gt = load_ground_truth(tiny_world_root / "synthetic")
    names = [r["name"] for r in gt.images[:6]]
    target = hmr_targets(gt, names)
    body = load_body_model(None, create_transl=False)
    with torch.no_grad():
        _, joints = pose_body(body, target["rotmat"], target["betas"])
        cam, fit = weak_camera_fit(joints, target["keypoints"])
        out = SimpleNamespace(rotmat=target["rotmat"], betas=target["betas"], cam=cam)
        losses = hmr_losses(body, out, target, gt.height, gt.width)
        residual = (fit - target["keypoints"]).pow(2).sum(-1).mean()
        # the loss at the least-squares camera is that fit's residual (float32 sums of 24 joints)
        assert abs(losses["keypoint"].item() - residual.item()) < 1e-5 * (1 + residual.item())
        drawn = render_grey(turned_vertices(body, target["rotmat"], target["betas"], [0])[0],
                            body.faces_tensor, cam, gt.height, gt.width)[:, 0] >= SILHOUETTE_GREY / 255
        world = gt.render(names, mode="grey")[0][:, 0] >= SILHOUETTE_GREY / 255
    iou = (drawn & world).sum((1, 2)).float() / (drawn | world).sum((1, 2)).float()
    # the world draws hair and bags that no SMPL body has: the true body scores ~0.7 on average
    assert iou.mean() > 0.6, iou
