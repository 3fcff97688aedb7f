"""SMPL-format body models: GenReID's built-in synthetic body, and one loader for it and for a
user's licensed SMPL file.

The built-in body (geometry in `mesh.body_shape`) is rigged here into exactly the arrays an
SMPL pickle holds, so `smplx.SMPL` runs it unchanged:

- ``v_template`` (V, 3), ``f`` (F, 3): the rest mesh, outward winding;
- ``weights`` (V, 24): skinning weights, from the primitive each vertex lies on (each primitive
  hands over from joint to joint along its axis), smoothed over the mesh; rows sum to 1;
- ``J_regressor`` (24, V): each joint is a weighted mean of the ring of vertices where its
  skinning weight blends with its parent's (the tissue around the joint), the weights tilted
  (exponentially) so that the template's joints are reproduced exactly; joints therefore move
  with the flesh around them when the shape changes;
- ``shapedirs`` (V, 3, 10): `SHAPE_DIRECTIONS`, each a skeleton-driven deformation: the bone
  ends move (longer legs, wider shoulders ...) and each bone's flesh is scaled about the bone
  (girth, depth); a vertex follows its bones by its skinning weights (smoothed further over
  the mesh, so that neighbouring bones' changes meet without creases). One unit is about one
  standard deviation of adults (`SHAPE_DIRECTIONS` gives the figures used). Exactly ten:
  smplx uses at most ten shape coefficients of any model with fewer than 300 directions;
- ``posedirs`` (V, 3, 207): volume-keeping correctives. Linear blend skinning shrinks a bent
  joint (a vertex blended half-and-half between two bones rotated by θ lands at cos(θ/2) of
  its distance) and collapses a twisted one. Each joint's corrective pushes the vertices of its
  blend zone outward, perpendicular to the rotation axis, by an amount that grows like 1 - cos θ
  (the symmetric part of R - I), and shifts the outer side of a bend out and the inner side in
  (the swing of the child bone, (R - I) u). Both are linear in (R - I) as SMPL's are;
- ``kintree_table`` (2, 24), ``J`` (24, 3), and ``vertex_ids`` (face, feet and fingertip
  keypoints for smplx's extra joints: the SMPL-H defaults index out of range here).

The body is generated on first use (well under a second) and cached as a plain pickle in
``$GENREID_CACHE/body/`` (default ``~/.cache/genreid/body/``), keyed by `BODY_VERSION` and a hash
of the generator's source, so a changed generator writes a new file.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import tempfile
from pathlib import Path

import numpy as np
import scipy.sparse

from configs.errors import UserError

from mesh import body_shape as bs

BODY_VERSION = "1"
MESH_STEP = 0.018          # surface-nets grid step (m): ~7k vertices

# name: what one unit does (about one standard deviation of adult humans).
SHAPE_DIRECTIONS = {
    "stature": "whole body scaled by 4.1% (about 7 cm of height)",
    "girth": "weight: torso 10-16% and limbs 8% wider and deeper",
    "leg_length": "legs 2.8 cm longer",
    "arm_length": "arms 2.8 cm longer",
    "shoulder_width": "shoulders 2.4 cm wider, upper chest broader",
    "hip_width": "hips 2 cm wider, pelvis 8% broader",
    "head_size": "head 6% larger",
    "chest_depth": "chest 12% deeper in front, 6% at the back",
    "belly": "belly 22% more forward",
    "torso_length": "trunk 2 cm and neck 0.8 cm longer (head and arms ride up)",
}
NUM_BETAS = len(SHAPE_DIRECTIONS)

# Main child of each joint, for bone directions: 24 = top of head, 25/26 = left/right toe tip,
# 27/28 = left/right fingertip.
_CHILD = np.array([3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 25, 26, 15, 16, 17, 24, 18, 19, 20, 21, 22,
                   23, 27, 28])


def _skeleton_points(joints):
    ends = [bs.HEAD_TOP, bs.TOE_TIP, bs.TOE_TIP * [-1, 1, 1], bs.FINGER_TIP,
            bs.FINGER_TIP * [-1, 1, 1]]
    return np.concatenate([joints, np.array(ends)])


# ---------------------------------------------------------------------------------------------
# Rigging.

def mesh_adjacency(faces, n):
    """(n, n) sparse row-normalised vertex adjacency: A @ x averages x over edge neighbours."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e = np.concatenate([e, e[:, ::-1]])
    a = scipy.sparse.csr_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    a.data[:] = 1.0                                     # duplicate edges counted once
    deg = np.asarray(a.sum(1)).ravel()
    return scipy.sparse.diags(1.0 / np.maximum(deg, 1)) @ a


def _smooth(values, adjacency, iters, keep=0.5):
    for _ in range(iters):
        values = keep * values + (1 - keep) * (adjacency @ values)
    return values


def skinning_weights(shape, verts, faces):
    w = shape.skin(verts)
    w = _smooth(w, mesh_adjacency(faces, len(verts)), iters=3)
    w[w < 2e-3] = 0.0
    return w / w.sum(1, keepdims=True)


def _tilt(weights, points, target, iters=60):
    """Exponentially tilted weights w_i ∝ weights_i exp(λ·(p_i - target)) whose weighted mean
    is ``target`` (Newton on the convex log-partition function)."""
    d = points - target
    lam = np.zeros(3)
    for _ in range(iters):
        z = d @ lam
        e = weights * np.exp(z - z.max())
        w = e / e.sum()
        mean = w @ d
        if np.linalg.norm(mean) < 1e-10:
            break
        cov = (d * w[:, None]).T @ d - np.outer(mean, mean)
        step = np.linalg.solve(cov + 1e-9 * np.eye(3), mean)
        # Damped: never move λ so far that a single vertex takes over.
        scale = min(1.0, 50.0 / max(np.abs(d @ step).max(), 1e-12))
        lam -= scale * step
    return w, float(np.linalg.norm(mean))


_RING_SIGMA = {0: 0.08, 3: 0.07, 6: 0.07, 9: 0.07, 12: 0.05, 15: 0.05, 13: 0.06, 14: 0.06,
               1: 0.07, 2: 0.07, 4: 0.05, 5: 0.05, 7: 0.04, 8: 0.04, 10: 0.035, 11: 0.035,
               16: 0.05, 17: 0.05, 18: 0.045, 19: 0.045, 20: 0.035, 21: 0.035, 22: 0.03, 23: 0.03}


def joint_regressor(verts, weights, joints):
    """(24, V): joint j = tilted mean of the vertices where j blends with its parent."""
    reg = np.zeros((bs.NUM_JOINTS, len(verts)))
    for j in range(bs.NUM_JOINTS):
        p = bs.PARENTS[j]
        near = np.exp(-((verts - joints[j]) ** 2).sum(1) / (2 * _RING_SIGMA[j] ** 2))
        ring = (weights[:, j] if p < 0 else weights[:, j] * weights[:, p]) * near
        if p >= 0 and ring.sum() < 1e-3:           # no blend zone: the joint's own region
            ring = (weights[:, j] + weights[:, p]) * near
        ring[ring < 1e-3 * ring.max()] = 0.0
        idx = np.nonzero(ring)[0]
        w, err = _tilt(ring[idx], verts[idx], joints[j])
        if err > 1e-6:
            raise RuntimeError(f"joint {bs.JOINT_NAMES[j]} is outside its vertex ring ({err:.2e})")
        reg[j, idx] = w
    return reg


def _direction_table(P):
    """Per direction: (29, 3) skeleton point moves and (24, 4) flesh scales (x, y, z front,
    z back) about each bone."""
    side = np.sign(P[:, 0])                     # +1 left, -1 right, 0 midline
    out = lambda idx, amount: [(i, np.array([side[i] * amount, 0.0, 0.0])) for i in idx]
    up = lambda idx, amount: [(i, np.array([0.0, amount, 0.0])) for i in idx]
    L_ARM = [13, 14, 16, 17, 18, 19, 20, 21, 22, 23, 27, 28]
    ARM = [16, 17, 18, 19, 20, 21, 22, 23, 27, 28]
    table = {}

    def direction(name, moves=(), scales=()):
        dP = np.zeros((len(P), 3))
        for i, m in moves:
            dP[i] += m
        A = np.zeros((bs.NUM_JOINTS, 4))
        for joints, s in scales:
            for j in joints:
                A[j] = s
        table[name] = (dP, A)

    eps = 0.041
    direction("stature", [(i, eps * (P[i] - P[0])) for i in range(len(P))],
              [(range(24), (eps, eps, eps, eps))])
    direction("girth",
              out([13, 14], 0.004) + out(ARM, 0.010) + out([1, 2], 0.008) + out([4, 5], 0.010)
              + out([7, 8, 10, 11, 25, 26], 0.008),
              [([0, 6, 9], (0.10, 0, 0.13, 0.09)), ([3], (0.10, 0, 0.16, 0.09)),
               ([12], (0.07, 0, 0.07, 0.07)), ([13, 14, 16, 17, 18, 19], (0, 0.08, 0.08, 0.08)),
               ([1, 2, 4, 5], (0.09, 0, 0.09, 0.09)), ([20, 21, 22, 23], (0, 0.03, 0.03, 0.03)),
               ([7, 8, 10, 11], (0.03, 0.02, 0, 0)), ([15], (0.015,) * 4)])
    legs = 0.028
    direction("leg_length", [(i, np.array([0, -legs * 0.5, 0])) for i in (4, 5)]
              + [(i, np.array([0, -legs, 0])) for i in (7, 8, 10, 11, 25, 26)])
    arms = 0.028
    direction("arm_length", out([18, 19], 0.45 * arms) + out([20, 21, 22, 23, 27, 28], arms))
    direction("shoulder_width", out([13, 14], 0.004) + out(ARM, 0.012),
              [([9], (0.06, 0, 0, 0)), ([6], (0.03, 0, 0, 0))])
    direction("hip_width", out([1, 2], 0.010) + out([4, 5], 0.007)
              + out([7, 8, 10, 11, 25, 26], 0.005),
              [([0], (0.08, 0, 0, 0)), ([3], (0.03, 0, 0, 0)), ([1, 2], (0.04, 0, 0, 0))])
    direction("head_size", [(24, 0.06 * (P[24] - P[15]))],
              [([15], (0.06,) * 4), ([12], (0.02, 0, 0.02, 0.02))])
    direction("chest_depth", [],
              [([9], (0, 0, 0.12, 0.06)), ([6], (0, 0, 0.08, 0.04)),
               ([13, 14], (0, 0, 0.05, 0.03))])
    direction("belly", [], [([3], (0.04, 0, 0.22, 0)), ([0], (0.02, 0, 0.10, 0)),
                            ([6], (0.02, 0, 0.10, 0))])
    direction("torso_length", up([3], 0.004) + up([6], 0.010) + up([9], 0.014)
              + up([12], 0.020) + up([15, 24], 0.028) + up(L_ARM, 0.018))
    assert tuple(table) == tuple(SHAPE_DIRECTIONS)
    return table


def _bone_frames(verts, P):
    """Per joint: position along its bone t (V,), the bone point and the offset from it."""
    a = P[:bs.NUM_JOINTS]
    b = P[_CHILD]
    ab = b - a
    t = np.einsum("jvc,jc->jv", verts[None] - a[:, None], ab) / (ab * ab).sum(1)[:, None]
    t = np.clip(t, 0.0, 1.0)
    base = a[:, None] + t[..., None] * ab[:, None]
    return t, verts[None] - base


def shape_directions(verts, weights, joints):
    P = _skeleton_points(joints)
    t, off = _bone_frames(verts, P)                       # (24, V), (24, V, 3)
    dirs = []
    for name, (dP, A) in _direction_table(P).items():
        move = (1 - t)[..., None] * dP[:24, None] + t[..., None] * dP[_CHILD][:, None]
        zscale = np.where(off[..., 2] > 0, A[:, None, 2], A[:, None, 3])
        flesh = off * np.stack([np.broadcast_to(A[:, None, 0], zscale.shape),
                                np.broadcast_to(A[:, None, 1], zscale.shape), zscale], -1)
        dirs.append(np.einsum("vj,jvc->vc", weights, move + flesh))
    return np.stack(dirs, axis=-1)                         # (V, 3, NB)


_POSE_GAIN = np.array([0, 1, 1, .5, 1, 1, .5, .5, .5, .5, .5, .5, .5, .5, .5, .5, .6, .6, 1, 1, .5,
                       .5, .5, .5])


def pose_correctives(verts, weights, joints, swell=0.4, swing=0.12):
    """(V, 3, 207) volume-keeping pose blend shapes (see the module docstring)."""
    P = _skeleton_points(joints)
    posedirs = np.zeros((len(verts), 3, 23 * 9))
    for j in range(1, bs.NUM_JOINTS):
        g = np.clip(4.0 * weights[:, j] * weights[:, bs.PARENTS[j]], 0.0, 1.0) * _POSE_GAIN[j]
        sel = g > 1e-4
        if not sel.any():
            continue
        q = verts[sel] - joints[j]
        u = P[_CHILD[j]] - joints[j]
        u /= np.linalg.norm(u)
        q_perp = q - (q @ u)[:, None] * u
        n_perp = np.linalg.norm(q_perp, axis=1, keepdims=True)
        unit = q_perp / np.maximum(n_perp, 1e-6)
        block = np.zeros((sel.sum(), 3, 3, 3))             # [vertex, out axis, row r, col c]
        eye = np.eye(3)
        # swell: -1/2 (M + M^T) q  ->  d out_a / d M[r, c] = -1/2 ([a=r] q_c + [a=c] q_r)
        block -= 0.5 * swell * (eye[None, :, :, None] * q[:, None, None, :]
                                + eye[None, :, None, :] * q[:, None, :, None])
        # swing: -(unit . M u) q_perp  ->  d out_a / d M[r, c] = -unit_r u_c q_perp_a
        block -= swing * (q_perp[:, :, None, None] * unit[:, None, :, None]
                          * u[None, None, None, :])
        posedirs[sel, :, (j - 1) * 9:j * 9] = (g[sel, None, None, None] * block).reshape(-1, 3, 9)
    return posedirs


def keypoint_vertices(verts):
    """Vertex ids of the keypoints smplx appends to the joints (SMPL-H names)."""
    targets = {
        "nose": (0.0, 0.392, 0.13), "leye": (0.032, 0.414, 0.11), "lear": (0.09, 0.40, -0.005),
        "LBigToe": (0.10, -1.155, 0.18), "LSmallToe": (0.15, -1.155, 0.14),
        "LHeel": (0.09, -1.16, -0.10),
        "lthumb": (0.80, 0.20, 0.045), "lindex": (0.88, 0.207, -0.022),
        "lmiddle": (0.885, 0.207, -0.045), "lring": (0.88, 0.207, -0.065),
        "lpinky": (0.87, 0.207, -0.082),
    }
    ids = {}
    for name, p in targets.items():
        p = np.array(p)
        ids[name] = int(np.argmin(((verts - p) ** 2).sum(1)))
        if name != "nose":
            right = ("R" + name[1:]) if name[0] == "L" else ("r" + name[1:])
            ids[right] = int(np.argmin(((verts - p * [-1, 1, 1]) ** 2).sum(1)))
    return ids


def build_body_model(step: float = MESH_STEP) -> dict:
    """The built-in body as the dict an SMPL pickle holds (float32 arrays, int64 faces)."""
    shape = bs.BodyShape()
    joints = shape.joints
    verts, faces = bs.mesh_body(shape, step=step)
    weights = skinning_weights(shape, verts, faces)
    reg = joint_regressor(verts, weights, joints)
    # Shape changes follow the bones through broader weights than skinning, so that flesh
    # scaled differently on two neighbouring bones meets without a crease.
    broad = _smooth(weights.astype(np.float64), mesh_adjacency(faces, len(verts)), iters=20)
    broad /= broad.sum(1, keepdims=True)
    kintree = np.stack([bs.PARENTS, np.arange(bs.NUM_JOINTS)]).astype(np.int64)
    kintree[0, 0] = 4294967295      # SMPL files mark the root's parent with uint32 -1
    return {
        "v_template": verts.astype(np.float32),
        "f": faces.astype(np.int64),
        "weights": weights.astype(np.float32),
        "J_regressor": reg.astype(np.float32),
        "J": (reg @ verts).astype(np.float32),
        "shapedirs": shape_directions(verts, broad, joints).astype(np.float32),
        "posedirs": pose_correctives(verts, weights, joints).astype(np.float32),
        "kintree_table": kintree,
        "vertex_ids": keypoint_vertices(verts),
        "joint_names": list(bs.JOINT_NAMES),
        "shape_directions": list(SHAPE_DIRECTIONS),
        "genreid_body_version": BODY_VERSION,
    }


# ---------------------------------------------------------------------------------------------
# Cache.

def cache_root() -> Path:
    return Path(os.environ.get("GENREID_CACHE") or Path.home() / ".cache" / "genreid")


def _generator_key() -> str:
    h = hashlib.sha256()
    for mod in (bs.__file__, __file__):
        h.update(Path(mod).read_bytes())
    return f"v{BODY_VERSION}-{h.hexdigest()[:10]}"


def builtin_body_path() -> Path:
    """Path of the built-in body's pickle, generated (atomically) if it is not there yet.
    Bodies of older generator versions in the same folder are removed."""
    name = f"genreid_body_{_generator_key()}.pkl"
    path = cache_root() / "body" / name
    if path.exists():
        return path
    data = pickle.dumps(build_body_model(), protocol=4)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:                                   # read-only home: use the temp folder
        path = Path(tempfile.gettempdir()) / "genreid" / "body" / name
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    for old in path.parent.glob("genreid_body_*.pkl"):
        if old != path:
            with contextlib.suppress(OSError):
                old.unlink()
    return path


# ---------------------------------------------------------------------------------------------
# Loading.

class BodyModelError(UserError, RuntimeError):
    """A body model file that cannot be used as it is (the message says what to do)."""


SMPL_SOURCE = ("download 'SMPL for Python' from the SMPL website (https://smpl.is.tue.mpg.de, "
               "free registration and licence) and pass the path of SMPL_NEUTRAL.pkl or its folder")


def resolve_smpl_path(path, gender: str = "neutral") -> Path:
    p = Path(path).expanduser()
    if p.is_dir():
        names = [f"SMPL_{gender.upper()}.pkl",
                 f"basicmodel_{gender.lower()[0]}_lbs_10_207_0_v1.1.0.pkl",
                 f"basicModel_{gender.lower()[0]}_lbs_10_207_0_v1.0.0.pkl",
                 f"basicmodel_{gender.lower()}_lbs_10_207_0_v1.1.0.pkl"]
        for name in names:
            if (p / name).is_file():
                return p / name
        raise FileNotFoundError(
            f"No SMPL model file SMPL_{gender.upper()}.pkl in {p}: {SMPL_SOURCE}.")
    if not p.is_file():
        raise FileNotFoundError(f"SMPL model file {p} not found: {SMPL_SOURCE}.")
    return p


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles numpy / scipy content only; a chumpy object stops it with `BodyModelError`."""

    def __init__(self, fh, path):
        super().__init__(fh, encoding="latin1")
        self.path = Path(path)

    def find_class(self, module, name):
        if module.split(".")[0] == "chumpy":
            out = self.path.with_name(self.path.stem + "_numpy.pkl")
            raise BodyModelError(
                f"{self.path} holds chumpy objects (the official SMPL release does), which need "
                f"the unmaintained chumpy package; convert it once to plain numpy with "
                f"`python -m mesh.convert_smpl {self.path} {out}` and load {out} instead.")
        return super().find_class(module, name)


def read_model_file(path) -> dict:
    path = Path(path)
    with open(path, "rb") as fh:
        try:
            data = _PlainUnpickler(fh, path).load()
        except BodyModelError:
            raise
        except Exception as exc:  # a truncated or foreign file
            raise BodyModelError(f"{path} is not a readable SMPL model pickle ({exc}).") from exc
    missing = {"v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table",
               "f"} - set(data)
    if not isinstance(data, dict) or missing:
        raise BodyModelError(f"{path} is not an SMPL model file (missing {sorted(missing)}).")
    return data


def load_body_model(path=None, batch_size: int = 1, device="cpu", num_betas: int = 10,
                    gender: str = "neutral", **kwargs):
    """An `smplx.SMPL` module: the user's SMPL file (``path``: the .pkl or its folder) or, with
    ``path=None``, the built-in synthetic body. Extra keyword arguments go to `smplx.SMPL`."""
    import smplx
    from smplx.utils import Struct

    file = builtin_body_path() if path is None else resolve_smpl_path(path, gender)
    data = read_model_file(file)
    n_verts = len(data["v_template"])
    vertex_ids = kwargs.pop("vertex_ids", None)
    if vertex_ids is None and "vertex_ids" in data:
        vertex_ids = dict(data["vertex_ids"])
    if vertex_ids is None and n_verts != 6890:
        raise BodyModelError(f"{file} has {n_verts} vertices, not SMPL's 6890: pass vertex_ids "
                             f"(nose, eyes, ears, toes, heels, fingertips) for smplx's keypoints.")
    # smplx prints a warning for every model with fewer than 300 shape directions.
    with contextlib.redirect_stdout(io.StringIO()):
        model = smplx.SMPL(str(file), data_struct=Struct(**data), batch_size=batch_size,
                           num_betas=num_betas, gender=gender, vertex_ids=vertex_ids, **kwargs)
    return model.to(device)
