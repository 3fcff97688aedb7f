"""The built-in SMPL-format body, the SMPL file loader / chumpy converter, and view rotation."""
import math
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse
import smplx
import torch

from mesh import body_model as bm
from mesh import body_shape as bs
from mesh.convert_smpl import main as convert_main
from mesh.rotation import (axis_angle_to_matrix, body_center, matrix_to_axis_angle,
                           rotate_about_vertical, rotate_body, yaw_matrix, yaw_smpl_params)

J = {name: i for i, name in enumerate(bs.JOINT_NAMES)}
EPS32, EPS64 = torch.finfo(torch.float32).eps, torch.finfo(torch.float64).eps
# smplx poses in float32: a joint (|J| <= 1.2 m) goes through a kinematic chain of <= 8 rigid
# transforms, each a 3-term product and a sum, so <= 8·4 roundings of 2^-24·1.2 m each
CHAIN_TOL = 8 * 4 * EPS32


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("genreid_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENREID_CACHE", str(root))
        yield root


@pytest.fixture(scope="module")
def body_file(cache):
    return bm.builtin_body_path()


@pytest.fixture(scope="module")
def data(body_file):
    with open(body_file, "rb") as fh:
        return pickle.load(fh)


@pytest.fixture(scope="module")
def model(cache):
    return bm.load_body_model(None, batch_size=1, num_betas=bm.NUM_BETAS)


def body_pose(**joints):
    """(1, 69) body pose from {joint name: axis-angle}."""
    pose = torch.zeros(1, 23, 3)
    for name, aa in joints.items():
        pose[0, J[name] - 1] = torch.as_tensor(aa, dtype=torch.float32)
    return pose.reshape(1, -1)


def rest(model, betas=None):
    with torch.no_grad():
        return model(betas=betas)


def winding_numbers(verts, faces, points):
    """Generalised winding number of a closed mesh at each point (~1 inside, ~0 outside)."""
    a, b, c = (verts[faces[:, i]][None] - points[:, None] for i in range(3))
    la, lb, lc = (np.linalg.norm(x, axis=-1) for x in (a, b, c))
    det = np.einsum("pfi,pfi->pf", a, np.cross(b, c))
    den = (la * lb * lc + np.einsum("pfi,pfi->pf", a, b) * lc
           + np.einsum("pfi,pfi->pf", a, c) * lb + np.einsum("pfi,pfi->pf", b, c) * la)
    return (2 * np.arctan2(det, den)).sum(1) / (4 * np.pi)


def signed_volume(verts, faces):
    a, b, c = (verts[..., faces[:, i], :] for i in range(3))
    return (a * np.cross(b, c)).sum((-1, -2)) / 6.0


# --------------------------------------------------------------------------------------------
# The pickle and smplx.

def test_smplx_loads_the_builtin_pickle(body_file, data):
    assert isinstance(data, dict)
    V = len(data["v_template"])
    assert 4000 <= V <= 8000
    assert data["shapedirs"].shape == (V, 3, 10) and bm.NUM_BETAS == 10
    assert data["posedirs"].shape == (V, 3, 207)
    assert data["J_regressor"].shape == (24, V) and data["weights"].shape == (V, 24)
    assert data["kintree_table"].shape == (2, 24) and data["f"].shape[1] == 3
    model = smplx.SMPL(str(body_file), vertex_ids=data["vertex_ids"], batch_size=2)
    out = model(body_pose=0.2 * torch.randn(2, 69), betas=torch.randn(2, 10),
                global_orient=0.3 * torch.randn(2, 3))
    assert out.vertices.shape == (2, V, 3)
    assert out.joints.shape == (2, 24 + 21, 3)            # + face, feet and fingertip keypoints
    assert torch.isfinite(out.vertices).all()
    parents = model.parents.tolist()
    assert parents == [-1] + bs.PARENTS[1:].tolist()


def test_template_is_an_smpl_sized_t_pose(data):
    v, j = data["v_template"], data["J"]
    assert -1.2 < v[:, 1].min() < -1.12                   # soles
    assert 0.48 < v[:, 1].max() < 0.56                    # top of the head
    assert 1.6 < np.ptp(v[:, 1]) < 1.8
    assert 1.6 < np.ptp(v[:, 0]) < 1.85                   # arm span
    assert v[:, 2].max() == pytest.approx(v[v[:, 1] < -1.0, 2].max(), abs=0.02)  # toes lead
    assert j[J["left_wrist"], 0] > 0.6 and j[J["right_wrist"], 0] < -0.6       # left is +x
    assert j[J["head"], 1] > j[J["neck"], 1] > j[J["spine3"], 1] > j[J["pelvis"], 1]
    assert j[J["left_foot"], 2] > j[J["left_ankle"], 2] + 0.08                   # faces +z
    # regressor reproduces the skeleton: the tilt is accepted at <= 1e-6 in float64, then J is
    # rounded to float32 (<= 2^-24 · 1.2 m)
    assert np.abs(j - bs.rest_joints()).max() < 1e-6 + EPS32


def test_load_body_model_builtin_writes_the_cache_once(cache, body_file):
    assert body_file.parent == cache / "body" and body_file.exists()
    stamp = body_file.stat().st_mtime_ns
    model = bm.load_body_model(None, batch_size=3)
    assert isinstance(model, smplx.SMPL)
    out = model()
    assert out.vertices.shape[:1] == (3,) and out.joints.shape[:2] == (3, 45)
    assert bm.builtin_body_path() == body_file and body_file.stat().st_mtime_ns == stamp


def test_generation_is_deterministic():
    one = pickle.dumps(bm.build_body_model(), protocol=4)
    two = pickle.dumps(bm.build_body_model(), protocol=4)
    assert one == two


# --------------------------------------------------------------------------------------------
# Geometry and rig.

def test_mesh_is_closed_and_wound_outward(data):
    v, f = data["v_template"].astype(np.float64), data["f"]
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    keys = directed[:, 0] * len(v) + directed[:, 1]
    assert len(np.unique(keys)) == len(keys)              # no directed edge twice: consistent
    reverse = directed[:, 1] * len(v) + directed[:, 0]
    assert np.isin(reverse, keys).all()                   # every edge has its twin: closed
    assert 0.05 < signed_volume(v, f) < 0.09              # m³, positive: normals point out


def test_skinning_weights_and_regressor(data):
    w, reg = data["weights"].astype(np.float64), data["J_regressor"].astype(np.float64)
    # rows normalised in float64, then each entry rounded to float32 (<= 2^-24 relative): the
    # rounding errors of a row add up to <= 2^-24 · its sum
    assert (w >= 0).all() and np.allclose(w.sum(1), 1, rtol=0, atol=EPS32)
    assert (reg >= 0).all() and np.allclose(reg.sum(1), 1, rtol=0, atol=EPS32)
    v = data["v_template"]
    # Each joint's region: the hand's vertices follow the wrist/hand, the feet the ankle/foot.
    hand = v[:, 0] > 0.78
    assert (w[hand][:, [J["left_wrist"], J["left_hand"]]].sum(1) > 0.95).all()
    foot = (v[:, 1] < -1.13) & (v[:, 0] > 0)
    assert (w[foot][:, [J["left_ankle"], J["left_foot"]]].sum(1) > 0.9).mean() > 0.95
    head = v[:, 1] > 0.42
    assert (w[head][:, J["head"]] > 0.95).all()


def test_elbow_bend_moves_the_wrist_as_the_pose_says(model):
    j0 = rest(model).joints[0]
    bend = torch.tensor([0.0, -math.pi / 2, 0.0])        # about +y: forearm swings to +z
    with torch.no_grad():
        j1 = model(body_pose=body_pose(left_elbow=bend)).joints[0]
    R = axis_angle_to_matrix(bend)
    e, w = J["left_elbow"], J["left_wrist"]
    expect = j0[e] + R @ (j0[w] - j0[e])
    assert torch.allclose(j1[w], expect, rtol=0, atol=CHAIN_TOL)
    assert j1[w, 2] - j1[e, 2] > 0.24                     # the hand is now in front
    assert torch.allclose(j1[:w - 2], j0[:w - 2], rtol=0, atol=CHAIN_TOL)   # nothing upstream moved


def test_hip_flexion_moves_the_ankle_forward(model):
    j0 = rest(model).joints[0]
    flex = torch.tensor([-math.pi / 4, 0.0, 0.0])
    with torch.no_grad():
        out = model(body_pose=body_pose(left_hip=flex))
    j1 = out.joints[0]
    h, k, a = J["left_hip"], J["left_knee"], J["left_ankle"]
    assert torch.allclose(j1[a], j0[h] + axis_angle_to_matrix(flex) @ (j0[a] - j0[h]), rtol=0, atol=CHAIN_TOL)
    assert j1[a, 2] - j0[a, 2] > 0.25 and j1[k, 2] > j0[k, 2]
    assert torch.allclose(j1[J["right_ankle"]], j0[J["right_ankle"]], rtol=0, atol=CHAIN_TOL)
    v0, v1 = rest(model).vertices[0], out.vertices[0]
    left_foot = (v0[:, 1] < -1.0) & (v0[:, 0] > 0)
    assert (v1[left_foot, 2] - v0[left_foot, 2]).mean() > 0.25   # the flesh follows


def test_global_orient_turns_about_the_root_joint(model):
    j0 = rest(model).joints[0]
    with torch.no_grad():
        j1 = model(global_orient=torch.tensor([[0.0, 1.0, 0.0]])).joints[0]
    assert torch.allclose(j1[0], j0[0], rtol=0, atol=CHAIN_TOL)


def test_pose_correctives_keep_a_bent_elbow_full(data, model):
    f = data["f"]
    pose = body_pose(left_elbow=[0.0, -2.0, 0.0], right_knee=[2.0, 0.0, 0.0])
    with torch.no_grad():
        rest_volume = signed_volume(rest(model).vertices[0].numpy(), f)
        with_pd = signed_volume(model(body_pose=pose).vertices[0].numpy(), f)
        saved = model.posedirs.clone()
        model.posedirs.zero_()
        try:
            without = signed_volume(model(body_pose=pose).vertices[0].numpy(), f)
        finally:
            model.posedirs.copy_(saved)
    assert abs(with_pd - rest_volume) < abs(without - rest_volume)
    assert np.abs(data["posedirs"]).max() < 0.08          # small, local offsets


# --------------------------------------------------------------------------------------------
# Shape space.

def betas(**named):
    b = torch.zeros(1, bm.NUM_BETAS)
    names = list(bm.SHAPE_DIRECTIONS)
    for k, val in named.items():
        b[0, names.index(k)] = val
    return b


def test_shape_directions_do_what_they_say(model):
    base = rest(model)
    v0, j0 = base.vertices[0], base.joints[0]

    def run(**named):
        out = rest(model, betas(**named))
        return out.vertices[0], out.joints[0]

    v, j = run(stature=1.0)
    assert 0.05 < np.ptp(v[:, 1].numpy()) - np.ptp(v0[:, 1].numpy()) < 0.09
    v, j = run(girth=1.0)
    waist = lambda vv: vv[(vv[:, 1].abs() < 0.02) & (vv[:, 0].abs() < 0.25), 0].max()
    belly = lambda vv: vv[(vv[:, 1].abs() < 0.1) & (vv[:, 0].abs() < 0.05), 2].max()
    assert waist(v) > waist(v0) + 0.01 and belly(v) > belly(v0) + 0.008
    v, j = run(leg_length=1.0)
    assert j[J["left_ankle"], 1] < j0[J["left_ankle"], 1] - 0.02
    assert abs(j[J["neck"], 1] - j0[J["neck"], 1]) < 1e-3
    v, j = run(arm_length=1.0)
    assert j[J["left_wrist"], 0] > j0[J["left_wrist"], 0] + 0.02
    assert j[J["right_wrist"], 0] < j0[J["right_wrist"], 0] - 0.02
    v, j = run(shoulder_width=1.0)
    span = lambda jj: jj[J["left_shoulder"], 0] - jj[J["right_shoulder"], 0]
    assert span(j) > span(j0) + 0.015
    v, j = run(hip_width=1.0)
    hips = lambda jj: jj[J["left_hip"], 0] - jj[J["right_hip"], 0]
    assert hips(j) > hips(j0) + 0.01
    v, j = run(head_size=1.0)
    assert v[:, 1].max() > v0[:, 1].max() + 0.008
    v, j = run(torso_length=1.0)
    assert j[J["neck"], 1] > j0[J["neck"], 1] + 0.015
    for name in bm.SHAPE_DIRECTIONS:                      # every direction does something
        v, _ = run(**{name: 1.0})
        assert (v - v0).norm(dim=1).max() > 0.005, name


def test_joints_stay_inside_the_body_for_any_shape(model, data):
    torch.manual_seed(0)
    b = 2.0 * (torch.rand(4, bm.NUM_BETAS) * 2 - 1)
    with torch.no_grad():
        out = model(betas=b, body_pose=torch.zeros(4, 69), global_orient=torch.zeros(4, 3))
    for v, j in zip(out.vertices.numpy(), out.joints[:, :24].numpy()):
        assert (winding_numbers(v.astype(np.float64), data["f"], j) > 0.5).all()


# --------------------------------------------------------------------------------------------
# Real SMPL files: missing ones, chumpy ones, converted ones.

def test_missing_smpl_file_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="SMPL website.*licence") as err:
        bm.load_body_model(tmp_path / "SMPL_NEUTRAL.pkl")
    assert str(tmp_path / "SMPL_NEUTRAL.pkl") in str(err.value)
    with pytest.raises(FileNotFoundError, match="SMPL_NEUTRAL.pkl"):
        bm.load_body_model(tmp_path)                      # a folder without the file


@pytest.fixture
def chumpy_file(tmp_path, data):
    """An SMPL-style pickle holding chumpy objects, written with a stand-in chumpy module
    that pickles the way chumpy does (class + __dict__ minus its caches), then removed."""
    pkg, sub = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x = np.asarray(x, np.float64)
            self._dirty_vars, self._itr, self._parents, self._cache = set(), None, {}, {}

        def __getstate__(self):
            state = dict(self.__dict__)
            del state["_parents"], state["_cache"]
            return state

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    sub.Ch, pkg.ch = Ch, sub
    saved = {k: sys.modules.get(k) for k in ("chumpy", "chumpy.ch")}
    sys.modules.update({"chumpy": pkg, "chumpy.ch": sub})
    try:
        content = {
            "v_template": Ch(data["v_template"]), "shapedirs": Ch(data["shapedirs"]),
            "posedirs": data["posedirs"].astype(np.float64), "weights": Ch(data["weights"]),
            "J_regressor": scipy.sparse.csc_matrix(data["J_regressor"].astype(np.float64)),
            "J": Ch(data["J"]), "f": data["f"].astype(np.uint32),
            "kintree_table": data["kintree_table"], "bs_type": "lrotmin",
            "vertex_ids": data["vertex_ids"],
        }
        path = tmp_path / "SMPL_NEUTRAL.pkl"
        path.write_bytes(pickle.dumps(content, protocol=2))
    finally:
        for k, mod in saved.items():
            if mod is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = mod
    assert b"chumpy" in path.read_bytes()
    return path


def test_chumpy_file_gets_a_clear_error(chumpy_file):
    with pytest.raises(bm.BodyModelError, match="chumpy.*python -m mesh.convert_smpl"):
        bm.load_body_model(chumpy_file.parent)


def test_convert_smpl_rewrites_chumpy_as_plain_numpy(chumpy_file, tmp_path, data, capsys):
    out = tmp_path / "converted" / "SMPL_NEUTRAL.pkl"
    convert_main([str(chumpy_file), str(out)])
    assert "wrote" in capsys.readouterr().out
    assert b"chumpy" not in out.read_bytes()
    with open(out, "rb") as fh:
        plain = pickle.load(fh)
    for key in ("v_template", "shapedirs", "weights", "J_regressor", "J"):
        assert type(plain[key]) is np.ndarray
        # float32 -> float64 (and sparse -> dense) is exact
        np.testing.assert_array_equal(plain[key], data[key])
    assert plain["bs_type"] == "lrotmin"
    # The converted file goes through the real-file path of the loader.
    model = bm.load_body_model(out.parent, batch_size=1)
    with torch.no_grad():
        ours = bm.load_body_model(None)().vertices
        # the same float32 values, but the converted regressor is a Fortran-ordered dense copy of a
        # CSC matrix, so smplx regresses the joints through another GEMM layout (another summation
        # order): not bit-identical. At rest each vertex is v + Σ w_j t_j with t_j the chain's
        # round-off (the joints' own errors cancel): CHAIN_TOL plus the 24-term skinning sum.
        np.testing.assert_allclose(model().vertices.numpy(), ours.numpy(), rtol=0,
                                   atol=CHAIN_TOL + 24 * EPS32 * ours.abs().max().item())


def test_convert_smpl_cli_reports_a_missing_input(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sys.argv", ["convert_smpl", str(tmp_path / "none.pkl"), str(tmp_path / "out.pkl")])
    with pytest.raises(SystemExit) as exit_:
        convert_main.cli()
    assert exit_.value.code == 2 and "not found" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# Rotation.

def test_rotation_matches_the_analytic_rotation():
    torch.manual_seed(1)
    pts = torch.randn(3, 50, 3, dtype=torch.float64)
    yaw = torch.tensor([0.3, -2.0, math.pi], dtype=torch.float64)
    center = torch.randn(3, 3, dtype=torch.float64)
    got = rotate_about_vertical(pts, yaw, center)
    dx = pts[..., 0] - center[:, None, 0]
    dz = pts[..., 2] - center[:, None, 2]
    c, s = torch.cos(yaw)[:, None], torch.sin(yaw)[:, None]
    # float64, a few roundings of values of magnitude |pts| + |center|
    tol = 16 * EPS64 * (pts.abs().max() + center.abs().max()).item()
    assert torch.allclose(got[..., 0], center[:, None, 0] + c * dx + s * dz, rtol=0, atol=tol)
    assert torch.allclose(got[..., 2], center[:, None, 2] - s * dx + c * dz, rtol=0, atol=tol)
    assert torch.equal(got[..., 1], pts[..., 1])
    # A quarter turn takes the body's facing direction (+z) to its left (+x); in float32, where
    # cos(π/2 rounded to float32) = -4.4e-8
    nose = torch.tensor([[[0.0, 0.0, 1.0]]])
    assert torch.allclose(rotate_about_vertical(nose, [math.pi / 2], torch.zeros(1, 3)),
                          torch.tensor([[[1.0, 0.0, 0.0]]]), rtol=0, atol=1e-7)


def test_full_turn_is_identity_and_turns_compose():
    torch.manual_seed(2)
    pts = torch.randn(2, 40, 3, dtype=torch.float64)
    # float64: sin(2π rounded) = -2.4e-16, and a few roundings of values of magnitude |pts|
    tol = 16 * EPS64 * pts.abs().max().item()
    assert torch.allclose(rotate_about_vertical(pts, [2 * math.pi, -2 * math.pi]), pts, rtol=0, atol=tol)
    a = torch.tensor([0.7, -1.1], dtype=torch.float64)
    b = torch.tensor([1.9, 0.4], dtype=torch.float64)
    twice = rotate_about_vertical(rotate_about_vertical(pts, a), b)
    assert torch.allclose(twice, rotate_about_vertical(pts, a + b), rtol=0, atol=tol)


def test_the_body_centre_stays_put(model):
    with torch.no_grad():
        out = model(body_pose=body_pose(left_hip=[-0.5, 0, 0], right_shoulder=[0, 0, 1.2]))
    v, j = out.vertices.double(), out.joints.double()
    center = body_center(v)
    # float64 means of V vertices of magnitude <= |v|: <= V·eps64·|v|
    mean_tol = v.shape[1] * EPS64 * v.abs().max().item()
    # cdist takes sqrt(|x|² + |y|² - 2x·y) in float64: d² is off by ~8 eps64 r² (r: the largest
    # norm), which a square root turns into sqrt(8 eps64)·r where d ~ 0 (joints on vertices)
    r = max(v.norm(dim=-1).max().item(), j.norm(dim=-1).max().item())
    cdist_tol = 2 * (8 * EPS64) ** 0.5 * r
    for yaw in (0.5, 2.0, -3.0):
        rv, rj, c = rotate_body(v, j, [yaw])
        assert torch.equal(c, center)  # the same mean of the same vertices
        assert torch.allclose(body_center(rv)[:, [0, 2]], center[:, [0, 2]], rtol=0, atol=mean_tol)
        # Joints turn rigidly with the vertices: distances to the vertices are unchanged.
        assert torch.allclose(torch.cdist(rj, rv), torch.cdist(j, v), rtol=0, atol=cdist_tol)


def test_axis_angle_round_trip():
    torch.manual_seed(3)
    axis = torch.nn.functional.normalize(torch.randn(9, 3, dtype=torch.float64), dim=1)
    angle = torch.tensor([0.0, 1e-7, 1e-3, 0.5, 1.5, 2.5, 3.0, math.pi - 1e-6, math.pi],
                         dtype=torch.float64)
    aa = axis * angle[:, None]
    R = axis_angle_to_matrix(aa)
    # float64 Rodrigues: entries <= 3 from a few roundings; RRᵀ sums 3 products of them
    tol = 64 * EPS64
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(9, 3, 3), rtol=0, atol=tol)
    back = matrix_to_axis_angle(R)
    # the axis comes from w / sin θ (error × θ / sin θ <= 6.2, as the near-π formula takes over at
    # cos θ < -0.9) or from (R + Rᵀ) / 2 over 1 - cos θ >= 1.9: well conditioned either way
    assert torch.allclose(axis_angle_to_matrix(back), R, rtol=0, atol=tol)
    assert torch.allclose(back[:-2], aa[:-2], rtol=0, atol=tol)  # unique below π
    zero = torch.zeros(1, 3, requires_grad=True)
    axis_angle_to_matrix(zero).sum().backward()
    assert torch.isfinite(zero.grad).all()
    # float32: cos and sin against Rodrigues' 1 - (1 - cos θ) and sin θ / θ · θ, a few roundings of values <= 1
    assert torch.allclose(yaw_matrix(torch.tensor([0.8])),
                          axis_angle_to_matrix(torch.tensor([[0.0, 0.8, 0.0]])), rtol=0, atol=4 * EPS32)


def test_yaw_smpl_params_match_rotating_the_vertices(model):
    torch.manual_seed(4)
    orient, transl = 0.3 * torch.randn(2, 3), 0.2 * torch.randn(2, 3)
    pose = 0.3 * torch.randn(2, 69)
    yaw = torch.tensor([1.0, -2.5])
    with torch.no_grad():
        out = model(global_orient=orient, transl=transl, body_pose=pose)
        center = body_center(out.vertices)
        o2, t2 = yaw_smpl_params(orient, transl, out.joints[:, 0], yaw, center)
        turned = model(global_orient=o2, transl=t2, body_pose=pose).vertices
    # float32 both ways: the kinematic chain (CHAIN_TOL), the 24-term skinning sums and the orientation's
    # round trip through matrix_to_axis_angle, each a few eps32 of the vertices' magnitude
    tol = CHAIN_TOL + (24 + 8) * EPS32 * out.vertices.abs().max().item()
    assert torch.allclose(turned, rotate_about_vertical(out.vertices, yaw, center), rtol=0, atol=tol)
