"""The world's posable people: the SMPL-format body plus accessory meshes (bags), skinned
together, and the poses they take (a walking gait cycle and a few idle stances).

`WorldBody` loads the body model once (`mesh.load_body_model`, the built-in body unless a
user's SMPL file is given) and appends two small boxes to its mesh: a backpack rigidly skinned
to ``spine3`` and a shoulder bag skinned to the pelvis. Both are part of every mesh so that a
batch of people shares one face list; a person without the bag has its vertices collapsed onto
a point inside the torso, where their faces have no area and cover no pixel.

Posing runs smplx's own linear blend skinning (`smplx.lbs.lbs`) over the extended arrays, so a
body without accessories is exactly what `smplx.SMPL` gives for the same parameters. The
posed body is then turned by its yaw about the vertical line through its centre
(`mesh.rotation.rotate_about_vertical`, not ``global_orient``) and stood on the ground: its
centre at x = z = 0 and its lowest vertex at y = 0. Axes are SMPL's: y up, the body faces +z
at yaw 0, a positive yaw turns it towards +x.

Poses are SMPL's 24 × 3 axis-angle rows (row 0, the global orientation, is always zero here:
the view is given by the yaw). Joint frames are those of the rest T-pose (arms along ±x), so a
hanging arm is a shoulder rotation about z followed by the swing about x.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from mesh.rotation import body_center, rotate_about_vertical

# SMPL joints used by the poses.
PELVIS, L_HIP, R_HIP, SPINE1, L_KNEE, R_KNEE, SPINE2, L_ANKLE, R_ANKLE, SPINE3 = range(10)
NECK, L_COLLAR, R_COLLAR, HEAD, L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW = 12, 13, 14, 15, 16, \
    17, 18, 19
L_WRIST, R_WRIST = 20, 21
NUM_JOINTS = 24

# Accessory boxes: (name, joint it is skinned to, centre (x, y, z) in the rest frame relative to
# the body's surface anchor, half sizes). The anchor is found on the rest mesh (`_anchor`).
BAG_KINDS = ("none", "backpack", "shoulder_bag")


def _box(center, half):
    """A closed box: 24 vertices (4 per side, so each side shades flat) and 12 faces wound
    counter-clockwise seen from outside."""
    c, h = np.asarray(center, float), np.asarray(half, float)
    verts, faces = [], []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            u, v = [a for a in range(3) if a != axis]
            n = np.zeros(3)
            n[axis] = sign
            quad = []
            for du, dv in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                p = n.copy()
                p[u], p[v] = du, dv
                quad.append(c + p * h)
            quad = np.array(quad)
            # orient counter-clockwise about the outward normal
            if np.dot(np.cross(quad[1] - quad[0], quad[2] - quad[0]), n) < 0:
                quad = quad[::-1]
            k = len(verts)
            verts.extend(quad)
            faces.extend([(k, k + 1, k + 2), (k, k + 2, k + 3)])
    return np.array(verts), np.array(faces)


class WorldBody:
    """The body model with its accessories, posed in batches.

    Attributes (numpy, rest pose): ``rest`` (V, 3) all vertices (body first, then the boxes),
    ``faces`` (F, 3), ``weights`` (V, 24) skinning weights, ``joints`` (24, 3) rest joints,
    ``num_body`` the body's vertex count, ``bag_slices`` name -> slice of its vertices,
    ``normals`` (V, 3) rest normals.
    """

    def __init__(self, model_path=None):
        from mesh.body_model import load_body_model
        self.model_path = model_path
        model = load_body_model(model_path)
        v = model.v_template.detach().double().numpy()
        f = np.asarray(model.faces, dtype=np.int64)
        w = model.lbs_weights.detach().double().numpy()
        reg = model.J_regressor.detach().double().numpy()
        shapedirs = model.shapedirs.detach().double().numpy()          # (V, 3, NB)
        posedirs = model.posedirs.detach().double().numpy()            # (P, V*3)
        self.num_body = len(v)
        self.body_faces = len(f)
        self.joints = reg @ v
        self.parents = model.parents.detach().clone()
        self.num_betas = shapedirs.shape[-1]

        verts, faces, weights, shape_rows = [v], [f], [w], [shapedirs]
        self.bag_slices = {}
        offset = len(v)
        normals = _vertex_normals(v, f)
        for name, joint, centre, half in self._accessories(v, normals):
            bv, bf = _box(centre, half)
            # the box follows the body's shape as its anchor vertex does (rigidly)
            anchor = int(np.argmin(((v - centre) ** 2).sum(1)))
            verts.append(bv)
            faces.append(bf + offset)
            bw = np.zeros((len(bv), NUM_JOINTS))
            bw[:, joint] = 1.0
            weights.append(bw)
            shape_rows.append(np.repeat(shapedirs[anchor:anchor + 1], len(bv), axis=0))
            self.bag_slices[name] = slice(offset, offset + len(bv))
            offset += len(bv)
        self.rest = np.concatenate(verts)
        self.faces = np.concatenate(faces)
        self.weights = np.concatenate(weights)
        self.normals = _vertex_normals(self.rest, self.faces)
        extra = len(self.rest) - self.num_body
        pd = posedirs.reshape(posedirs.shape[0], self.num_body, 3)
        pd = np.concatenate([pd, np.zeros((pd.shape[0], extra, 3))], axis=1)

        t = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
        self._v_template = t(self.rest)
        self._shapedirs = t(np.concatenate(shape_rows))
        self._posedirs = t(pd.reshape(pd.shape[0], -1))
        self._reg = t(np.concatenate([reg, np.zeros((NUM_JOINTS, extra))], axis=1))
        self._weights = t(self.weights)
        self.faces_t = torch.as_tensor(self.faces, dtype=torch.long)

    def _accessories(self, v, normals):
        """(name, joint, centre, half size) of the accessory boxes, placed on the rest body."""
        back = v[(np.abs(v[:, 0]) < 0.05) & (np.abs(v[:, 1] - 0.05) < 0.03)]
        back_z = back[:, 2].min()
        hip = v[(np.abs(v[:, 1] + 0.25) < 0.03) & (np.abs(v[:, 2]) < 0.05)]
        hip_x = hip[:, 0].max()
        return [
            # backpack: 30 cm wide, 40 cm tall, 14 cm deep, against the upper back
            ("backpack", SPINE3, (0.0, 0.02, back_z - 0.07), (0.15, 0.20, 0.07)),
            # shoulder bag on the body's right hip (x < 0), hanging from a strap
            ("shoulder_bag", PELVIS, (-hip_x - 0.045, -0.27, 0.02), (0.04, 0.11, 0.14)),
        ]

    @property
    def num_vertices(self) -> int:
        return len(self.rest)

    def pose(self, betas, pose, yaw, bags=None, hair_offset=None, with_joints=False):
        """Posed, turned and grounded vertices (B, V, 3), and the translation that grounded
        them (B, 3) (applied after the turn); ``with_joints`` adds the 24 joints (B, 24, 3)
        moved the same way.

        betas (B, NB), pose (B, 24, 3) axis-angle, yaw (B,) radians; bags: per image the
        `BAG_KINDS` name shown (None: no bags); hair_offset: optional (B, V) outward offsets
        (metres) of the rest vertices along their normals (hair volume)."""
        betas = torch.as_tensor(np.asarray(betas), dtype=torch.float32)
        pose = torch.as_tensor(np.asarray(pose), dtype=torch.float32).reshape(len(betas), -1)
        yaw = torch.as_tensor(np.asarray(yaw), dtype=torch.float32).reshape(-1)
        B = betas.shape[0]
        template = self._v_template.expand(B, -1, -1)
        if hair_offset is not None:
            off = torch.as_tensor(np.asarray(hair_offset), dtype=torch.float32)
            template = template + off[..., None] * torch.as_tensor(
                self.normals, dtype=torch.float32)
        from smplx.lbs import lbs
        with torch.no_grad():
            verts, joints = lbs(betas[:, :self.num_betas], pose, template, self._shapedirs,
                           self._posedirs, self._reg, self.parents, self._weights)
            verts = verts.clone()
            # hide the accessories not worn (before the centre is measured)
            for name, sl in self.bag_slices.items():
                hide = [bags is None or bags[i] != name for i in range(B)]
                if any(hide):
                    idx = torch.tensor([i for i, h in enumerate(hide) if h])
                    verts[idx, sl] = joints[idx, SPINE2][:, None, :]
            centre = body_center(verts[:, :self.num_body])
            verts = rotate_about_vertical(verts, yaw, centre)
            transl = torch.stack([-centre[:, 0], -verts[:, :self.num_body, 1].amin(1),
                                  -centre[:, 2]], dim=1)
            verts = verts + transl[:, None, :]
        if with_joints:
            return verts, transl, rotate_about_vertical(joints, yaw, centre) + transl[:, None, :]
        return verts, transl


@lru_cache(maxsize=2)
def world_body(model_path=None) -> WorldBody:
    """The shared `WorldBody` (built once per process and model file)."""
    return WorldBody(model_path)


def _vertex_normals(v, f):
    n = np.zeros_like(v)
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    for k in range(3):
        np.add.at(n, f[:, k], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


# ---------------------------------------------------------------------------------------------
# Poses.

def _rx(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _ry(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rz(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _aa(matrix) -> np.ndarray:
    from scipy.spatial.transform import Rotation
    return Rotation.from_matrix(matrix).as_rotvec()


def _arm(pose, side, down, swing, elbow, twist=0.0):
    """Shoulder: lowered by ``down`` (about z), then swung forward by ``swing`` (about x);
    elbow flexed by ``elbow`` (the forearm comes forward); ``side`` +1 left, -1 right."""
    shoulder, elb = (L_SHOULDER, L_ELBOW) if side > 0 else (R_SHOULDER, R_ELBOW)
    pose[shoulder] = _aa(_rx(-swing) @ _rz(-side * down) @ _rx(twist))
    pose[elb] = _aa(_ry(-side * elbow))


def walking_pose(phase: float, stride: float = 1.0, arm_swing: float = 1.0,
                 arm_down: float = 1.32, head_turn: float = 0.0, lean: float = 0.05,
                 elbow_bend: float = 0.25) -> np.ndarray:
    """(24, 3) axis-angle pose at ``phase`` (radians) of a walking cycle.

    At phase π/2 the left leg is furthest forward (heel strike), at 3π/2 the right one. The
    knee flexes most early in the swing, the arms swing against the legs, the trunk counter-
    rotates a little. ``stride`` and ``arm_swing`` scale the amplitudes (1 = an ordinary walk).
    """
    pose = np.zeros((NUM_JOINTS, 3))
    for side, ph in ((1, phase), (-1, phase + math.pi)):
        hip, knee, ankle = (L_HIP, L_KNEE, L_ANKLE) if side > 0 else (R_HIP, R_KNEE, R_ANKLE)
        flex = 0.05 + 0.33 * stride * math.sin(ph)                 # thigh forward (+)
        swing_knee = max(0.0, math.sin(ph + 0.75 * math.pi)) ** 1.5
        knee_flex = 0.08 + 0.75 * stride * swing_knee + 0.1 * max(0.0, math.sin(2 * ph))
        pose[hip] = [-flex, 0.0, -side * 0.03]
        pose[knee] = [knee_flex, 0.0, 0.0]
        pose[ankle] = [-0.15 * stride * math.sin(ph + 0.5) + 0.25 * swing_knee * stride, 0, 0]
        arm_fwd = -0.32 * arm_swing * math.sin(ph)
        _arm(pose, side, arm_down, arm_fwd, elbow_bend + 0.3 * max(0.0, arm_fwd))
    twist = 0.07 * stride * math.sin(phase)
    pose[SPINE1] = [lean * 0.5, -twist, 0.0]
    pose[SPINE2] = [lean * 0.3, -twist * 0.5, 0.0]
    pose[SPINE3] = [lean * 0.2, 0.0, 0.0]
    pose[HEAD] = [0.0, head_turn, 0.0]
    pose[NECK] = [-0.05, 0.0, 0.0]
    return pose


def standing_pose(rng: np.random.Generator) -> np.ndarray:
    """(24, 3) an idle stance: weight on one leg, arms hanging or one forearm raised (a phone,
    a cup, hands in pockets), head turned a little."""
    pose = np.zeros((NUM_JOINTS, 3))
    shift = rng.uniform(-1, 1)
    pose[L_HIP] = [-rng.uniform(0, 0.12), 0, -0.04 - 0.05 * max(shift, 0)]
    pose[R_HIP] = [-rng.uniform(0, 0.12), 0, 0.04 + 0.05 * max(-shift, 0)]
    pose[L_KNEE] = [rng.uniform(0.0, 0.2), 0, 0]
    pose[R_KNEE] = [rng.uniform(0.0, 0.2), 0, 0]
    kind = rng.integers(3)
    for side in (1, -1):
        elbow = rng.uniform(0.05, 0.3)
        swing = rng.uniform(-0.1, 0.15)
        if kind == 1 and side == 1:       # holding something up
            elbow, swing = rng.uniform(1.2, 1.8), rng.uniform(0.1, 0.4)
        if kind == 2:                     # hands in pockets / folded in front
            elbow, swing = rng.uniform(0.5, 0.9), rng.uniform(0.0, 0.2)
        _arm(pose, side, rng.uniform(1.2, 1.38), swing, elbow)
    pose[HEAD] = [rng.uniform(-0.05, 0.25), rng.uniform(-0.4, 0.4), 0.0]
    pose[SPINE1] = [0.02, 0.0, rng.uniform(-0.04, 0.04)]
    return pose
