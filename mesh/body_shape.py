"""The geometry of GenReID's built-in body: a skeleton in SMPL's joint order and a smooth,
watertight surface around it.

The surface is the zero level set of a signed distance field made of smooth tubes, ellipsoids
and lofted cross-sections (torso, hands, feet), blended where they meet, and meshed with a
vectorised surface-nets pass whose vertices are then projected onto the true surface. Every
primitive also says which joints drive it (``skin``), which `body_model` turns into skinning
weights. Units are metres; axes are SMPL's: y up, the body faces +z, its left is +x.

Nothing here reads a file or draws a random number: the same code gives the same mesh.
"""
from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline

JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
)
NUM_JOINTS = 24
PARENTS = np.array([-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19,
                    20, 21], dtype=np.int64)
# Left joint index -> right joint index (and back): the body is built left-handed and mirrored.
MIRROR = np.array([0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21,
                   20, 23, 22], dtype=np.int64)

# The rest skeleton (T-pose), close to SMPL's neutral template: pelvis a little below the
# origin, soles near y = -1.17, top of the head near y = +0.52 (1.69 m), arms straight out.
# Only the left side and the midline are written; the right side is the mirror image.
_LEFT_JOINTS = {
    0: (0.000, -0.223, 0.028),   # pelvis
    1: (0.070, -0.314, 0.022),   # left_hip
    3: (0.000, -0.112, 0.002),   # spine1
    4: (0.104, -0.693, 0.016),   # left_knee
    6: (0.000, 0.021, 0.003),    # spine2
    7: (0.090, -1.091, -0.027),  # left_ankle
    9: (0.000, 0.074, 0.028),    # spine3
    10: (0.116, -1.143, 0.094),  # left_foot (ball of the foot)
    12: (0.000, 0.288, -0.015),  # neck (base of the neck)
    13: (0.080, 0.194, -0.008),  # left_collar
    15: (0.000, 0.350, 0.014),   # head (top of the neck, below the skull)
    16: (0.174, 0.226, -0.017),  # left_shoulder
    18: (0.431, 0.212, -0.042),  # left_elbow
    20: (0.683, 0.221, -0.045),  # left_wrist
    22: (0.770, 0.215, -0.055),  # left_hand (knuckles)
}
# Ends of the leaf bones, used by the shape model: top of the head, left toe tip, left fingertip.
HEAD_TOP = np.array([0.0, 0.520, 0.010])
TOE_TIP = np.array([0.124, -1.160, 0.172])
FINGER_TIP = np.array([0.872, 0.207, -0.052])
SOLE_Y = -1.170


def rest_joints() -> np.ndarray:
    """(24, 3) joint positions of the rest skeleton."""
    joints = np.zeros((NUM_JOINTS, 3))
    for j, p in _LEFT_JOINTS.items():
        joints[j] = p
        joints[MIRROR[j]] = (-p[0], p[1], p[2])
    return joints


# ---------------------------------------------------------------------------------------------
# Signed distance primitives. Each takes points (N, 3) and returns (N,) approximate distances
# (negative inside). They need not be exact distances: blending only needs the right zero set
# and a field that grows roughly like the distance near it.

def smin(a, b, k):
    """Polynomial smooth minimum: the union of two fields, filleted over a width ~k."""
    h = np.maximum(k - np.abs(a - b), 0.0) / k
    return np.minimum(a, b) - h * h * k * 0.25


def smax(a, b, k):
    """Smooth maximum (intersection / subtraction with a fillet of width ~k)."""
    return -smin(-a, -b, k)


FAR = 1.0


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


class Primitive:
    """A piece of the body: a field, and the joints that drive the surface it makes.

    ``skin(points)`` returns (N, 24) non-negative weights summing to 1 along one axis of the
    primitive: ``joints`` are listed in order along ``axis`` (origin, unit direction) and
    ``knots`` are the axial positions (metres from the origin) where one joint hands over to
    the next, each with a half-width over which the weights blend.
    """

    name = "primitive"

    def __init__(self, joints, knots=(), origin=(0, 0, 0), axis=(0, 1, 0)):
        self.joints = list(joints)
        self.knots = list(knots)
        assert len(self.knots) == len(self.joints) - 1
        self.origin = np.asarray(origin, float)
        axis = np.asarray(axis, float)
        self.axis = axis / np.linalg.norm(axis)

    def sdf(self, p):  # pragma: no cover - abstract
        raise NotImplementedError

    def bbox(self):  # pragma: no cover - abstract
        """(lo, hi) corners of a box that holds the primitive's surface."""
        raise NotImplementedError

    def field(self, p, margin=0.06):
        """``sdf`` evaluated only within ``margin`` of the primitive's box; farther away the
        constant ``FAR`` stands in (positive and well beyond every blend width, so it never
        changes the body's surface)."""
        lo, hi = self.bbox()
        near = np.ones(len(p), dtype=bool)
        for i in range(3):
            c = p[:, i]
            near &= (c > lo[i] - margin) & (c < hi[i] + margin)
        out = np.full(len(p), FAR)
        if near.any():
            out[near] = self.sdf(p[near])
        return out

    def skin(self, p):
        w = np.zeros((len(p), NUM_JOINTS))
        if len(self.joints) == 1:
            w[:, self.joints[0]] = 1.0
            return w
        s = (p - self.origin) @ self.axis
        ramps = [np.ones(len(p))]
        for at, half in self.knots:
            ramps.append(_smoothstep((s - at + half) / (2.0 * half)))
        ramps.append(np.zeros(len(p)))
        for i, j in enumerate(self.joints):
            w[:, j] += np.maximum(ramps[i] - ramps[i + 1], 0.0)
        return w / w.sum(1, keepdims=True)


class RoundCone(Primitive):
    """A tube from a to b whose radius goes from ra to rb, with round ends. ``squash`` scales
    the cross-section along two directions perpendicular to the tube (elliptic limbs)."""

    def __init__(self, a, b, ra, rb, joints, knots=(), squash=(1.0, 1.0), up=(0, 1, 0),
                 name="tube"):
        a, b = np.asarray(a, float), np.asarray(b, float)
        super().__init__(joints, knots, origin=a, axis=b - a)
        self.name = name
        self.a, self.length = a, float(np.linalg.norm(b - a))
        self.ra, self.rb = float(ra), float(rb)
        u = self.axis
        e1 = np.asarray(up, float) - (np.asarray(up, float) @ u) * u
        e1 /= np.linalg.norm(e1)
        self.frame = np.stack([u, e1, np.cross(u, e1)])
        self.squash = np.asarray(squash, float)

    def bbox(self):
        r = max(self.ra, self.rb) * max(1.0, self.squash.max())
        b = self.a + self.length * self.axis
        return np.minimum(self.a, b) - r, np.maximum(self.a, b) + r

    def sdf(self, p):
        q = (p - self.a) @ self.frame.T              # along, e1, e2
        t = np.clip(q[:, 0] / self.length, 0.0, 1.0)
        along = q[:, 0] - t * self.length
        r = self.ra + t * (self.rb - self.ra)
        d = np.sqrt(along ** 2 + (q[:, 1] / self.squash[0]) ** 2 + (q[:, 2] / self.squash[1]) ** 2)
        return d - r


class Ellipsoid(Primitive):
    def __init__(self, center, radii, joints, knots=(), axis=(1, 0, 0), name="ellipsoid"):
        super().__init__(joints, knots, origin=center, axis=axis)
        self.name = name
        self.center = np.asarray(center, float)
        self.radii = np.asarray(radii, float)

    def bbox(self):
        return self.center - self.radii, self.center + self.radii

    def sdf(self, p):
        q = p - self.center
        k0 = np.linalg.norm(q / self.radii, axis=1)
        k1 = np.linalg.norm(q / self.radii ** 2, axis=1)
        return np.where(k1 > 1e-12, k0 * (k0 - 1.0) / np.maximum(k1, 1e-12), -self.radii.min())


class Loft(Primitive):
    """A surface swept along one coordinate axis: at each station s, a super-ellipse in the
    two other coordinates (u, w) with centre (uc, wc), half-width ``half`` along u, extents
    ``plus`` / ``minus`` along +w / -w and exponent ``power``. Stations are interpolated
    by a natural cubic spline (C2, so shading shows no bands at the stations); the two ends
    are closed with rounded caps of width ``cap``."""

    def __init__(self, along, stations, joints, knots=(), power=2.4, cap=0.02, name="loft"):
        # along: (s, u, w) coordinate indices, e.g. (1, 0, 2) for the torso (y; x, z).
        self.s_i, self.u_i, self.w_i = along
        axis = np.zeros(3)
        axis[self.s_i] = 1.0
        super().__init__(joints, knots, origin=(0, 0, 0), axis=axis)
        self.name = name
        st = np.asarray(stations, float)             # rows: s, uc, half, wc, plus, minus
        self.s0, self.s1 = st[0, 0], st[-1, 0]
        self.profile = CubicSpline(st[:, 0], st[:, 1:], axis=0, bc_type="natural")
        self.power, self.cap = float(power), float(cap)
        lo, hi = np.zeros(3), np.zeros(3)
        lo[self.s_i], hi[self.s_i] = self.s0, self.s1
        lo[self.u_i], hi[self.u_i] = (st[:, 1] - st[:, 2]).min(), (st[:, 1] + st[:, 2]).max()
        lo[self.w_i], hi[self.w_i] = (st[:, 3] - st[:, 5]).min(), (st[:, 3] + st[:, 4]).max()
        self._box = (lo - 0.015, hi + 0.015)   # room for the spline's overshoot

    def bbox(self):
        return self._box

    def sdf(self, p):
        s = p[:, self.s_i]
        sc = np.clip(s, self.s0, self.s1)
        uc, half, wc, plus, minus = self.profile(sc).T
        du = (p[:, self.u_i] - uc) / half
        dw = p[:, self.w_i] - wc
        dw = dw / np.where(dw > 0, plus, minus)
        rho = (np.abs(du) ** self.power + np.abs(dw) ** self.power) ** (1.0 / self.power)
        scale = np.minimum(half, 0.5 * (plus + minus))
        d = (rho - 1.0) * scale
        d = smax(d, self.s0 - s, self.cap)
        return smax(d, s - self.s1, self.cap)


class Mirrored(Primitive):
    """The mirror image (x -> -x) of a left-side primitive, driven by the right-side joints."""

    def __init__(self, inner: Primitive):
        self.inner = inner
        self.name = "right " + inner.name

    def sdf(self, p):
        return self.inner.sdf(p * np.array([-1.0, 1.0, 1.0]))

    def bbox(self):
        lo, hi = self.inner.bbox()
        return np.array([-hi[0], lo[1], lo[2]]), np.array([-lo[0], hi[1], hi[2]])

    def skin(self, p):
        return self.inner.skin(p * np.array([-1.0, 1.0, 1.0]))[:, MIRROR]


# ---------------------------------------------------------------------------------------------
# The body.

def _torso_skin(p):
    """Spine chain by height; the upper sides (shoulder girdle) go to the collars, the lower
    buttocks and hips partly to the thighs."""
    y = p[:, 1]
    w = np.zeros((len(p), NUM_JOINTS))
    chain = [(0, None), (3, (-0.112, 0.05)), (6, (0.021, 0.04)), (9, (0.085, 0.035)),
             (12, (0.272, 0.025))]
    ramps = [np.ones(len(p))]
    for _, knot in chain[1:]:
        at, half = knot
        ramps.append(_smoothstep((y - at + half) / (2 * half)))
    ramps.append(np.zeros(len(p)))
    for i, (j, _) in enumerate(chain):
        w[:, j] = np.maximum(ramps[i] - ramps[i + 1], 0.0)
    side = _smoothstep((np.abs(p[:, 0]) - 0.06) / 0.09) * _smoothstep((y - 0.10) / 0.09)
    w *= (1.0 - side)[:, None]
    w[:, 13] += side * (p[:, 0] >= 0)
    w[:, 14] += side * (p[:, 0] < 0)
    # The lower buttocks and hips go partly with the thighs, as they do on people.
    hip = 0.65 * _smoothstep((-0.30 - y) / 0.12) * _smoothstep((np.abs(p[:, 0]) - 0.015) / 0.07)
    w *= (1.0 - hip)[:, None]
    w[:, 1] += hip * (p[:, 0] >= 0)
    w[:, 2] += hip * (p[:, 0] < 0)
    return w / w.sum(1, keepdims=True)


class Torso(Loft):
    def skin(self, p):
        return _torso_skin(p)


def _left_parts(J):
    """Primitives of the left limbs (arm, hand, leg, foot) and the left shoulder girdle."""
    up, side, fwd = (0, 1, 0), (1, 0, 0), (0, 0, 1)
    sh, el, wr, ha = J[16], J[18], J[20], J[22]
    hip, kn, an, ft = J[1], J[4], J[7], J[10]
    # Loft rows are (s, uc, half, wc, plus, minus): for the hand s = x, u = z, w = y.
    hand = [  # station x: zc, half-width (z), yc, top, bottom (y)
        (wr[0] - 0.012, -0.046, 0.027, 0.220, 0.018, 0.018),
        (wr[0] + 0.020, -0.050, 0.037, 0.217, 0.019, 0.017),
        (ha[0] - 0.010, -0.053, 0.043, 0.214, 0.017, 0.015),
        (ha[0] + 0.030, -0.054, 0.041, 0.211, 0.0135, 0.0125),
        (ha[0] + 0.070, -0.053, 0.036, 0.208, 0.0125, 0.0115),
        (FINGER_TIP[0] + 0.003, -0.052, 0.026, 0.206, 0.0105, 0.0095),
    ]
    foot = [  # station z: xc, half-width (x), yc, top, bottom (y)
        (-0.092, 0.089, 0.022, -1.138, 0.028, 0.032),
        (-0.070, 0.090, 0.031, -1.127, 0.042, 0.043),
        (-0.030, 0.093, 0.035, -1.115, 0.052, 0.055),
        (0.025, 0.101, 0.041, -1.124, 0.036, 0.046),
        (0.085, 0.112, 0.047, -1.142, 0.022, 0.028),
        (0.135, 0.119, 0.043, -1.150, 0.016, 0.020),
        (TOE_TIP[2] + 0.004, 0.124, 0.026, -1.156, 0.010, 0.014),
    ]
    thumb_base = np.array([wr[0] + 0.022, wr[1] - 0.010, wr[2] + 0.022])
    thumb_tip = np.array([ha[0] + 0.018, ha[1] - 0.014, ha[2] + 0.088])
    return {
        "girdle": RoundCone((0.045, 0.262, -0.030), (0.165, 0.236, -0.022), 0.050, 0.040,
                            joints=[9, 13, 16], knots=[(0.03, 0.03), (0.09, 0.05)],
                            name="shoulder girdle"),
        "deltoid": Ellipsoid((0.180, 0.226, -0.020), (0.062, 0.052, 0.055), joints=[13, 16],
                             knots=[(-0.05, 0.05)], axis=side, name="deltoid"),
        "upper_arm": RoundCone(sh, el, 0.047, 0.037, joints=[13, 16, 18],
                               knots=[(-0.04, 0.05), (np.linalg.norm(el - sh), 0.03)],
                               name="upper arm"),
        "forearm": RoundCone(el, wr, 0.037, 0.025, joints=[16, 18, 20],
                             knots=[(0.0, 0.03), (np.linalg.norm(wr - el), 0.02)],
                             squash=(0.85, 1.05), up=up, name="forearm"),
        "forearm_muscle": Ellipsoid((el[0] + 0.075, el[1] + 0.004, el[2] + 0.002),
                                    (0.085, 0.038, 0.042), joints=[16, 18],
                                    knots=[(-0.08, 0.03)], axis=side, name="forearm muscle"),
        "hand": Loft((0, 2, 1), hand, joints=[18, 20, 22],
                     knots=[(wr[0], 0.015), (ha[0], 0.015)], power=2.6, cap=0.008, name="hand"),
        "thumb": RoundCone(thumb_base, thumb_tip, 0.014, 0.0125, joints=[20], name="thumb"),
        "thigh": RoundCone((hip[0] + 0.014, hip[1] - 0.07, hip[2] - 0.008), kn, 0.080, 0.054,
                           joints=[0, 1, 4], knots=[(-0.05, 0.05), (0.31, 0.035)],
                           squash=(0.92, 0.95), up=fwd, name="thigh"),
        "shin": RoundCone(kn, an, 0.051, 0.034, joints=[1, 4, 7],
                          knots=[(0.0, 0.035), (np.linalg.norm(an - kn), 0.025)], name="shin"),
        "calf": Ellipsoid((kn[0] - 0.002, kn[1] - 0.135, kn[2] - 0.028), (0.048, 0.125, 0.050),
                          joints=[4], name="calf"),
        "knee_cap": Ellipsoid((kn[0], kn[1] + 0.008, kn[2] + 0.030), (0.030, 0.036, 0.020),
                              joints=[1, 4], knots=[(-0.005, 0.03)], axis=(0, -1, 0),
                              name="knee cap"),
        "foot": Loft((2, 0, 1), foot, joints=[7, 10], knots=[(ft[2], 0.02)], power=2.6,
                     cap=0.015, name="foot"),
    }


def _midline_parts(J):
    torso = [  # station y: xc, half-width (x), zc, front, back (z)
        (-0.430, 0.0, 0.150, 0.004, 0.070, 0.082),
        (-0.385, 0.0, 0.160, 0.006, 0.084, 0.106),
        (-0.300, 0.0, 0.166, 0.008, 0.097, 0.128),
        (-0.210, 0.0, 0.157, 0.010, 0.105, 0.108),
        (-0.120, 0.0, 0.143, 0.012, 0.104, 0.088),
        (-0.040, 0.0, 0.136, 0.010, 0.099, 0.082),
        (0.040, 0.0, 0.150, 0.006, 0.107, 0.095),
        (0.120, 0.0, 0.166, 0.002, 0.118, 0.108),
        (0.180, 0.0, 0.164, -0.004, 0.104, 0.104),
        (0.230, 0.0, 0.142, -0.012, 0.080, 0.086),
        (0.270, 0.0, 0.095, -0.020, 0.058, 0.068),
        (0.300, 0.0, 0.062, -0.025, 0.048, 0.055),
    ]
    return {
        "torso": Torso((1, 0, 2), torso, joints=[0], power=2.4, cap=0.035, name="torso"),
        "neck": RoundCone((0.0, 0.235, -0.032), (0.0, 0.395, 0.006), 0.058, 0.052,
                          joints=[9, 12, 15], knots=[(0.037, 0.03), (0.110, 0.025)],
                          name="neck"),
        "cranium": Ellipsoid((0.0, 0.425, 0.004), (0.077, 0.095, 0.098), joints=[15],
                             name="cranium"),
        "jaw": Ellipsoid((0.0, 0.362, 0.036), (0.060, 0.060, 0.068), joints=[15], name="jaw"),
        "chin": Ellipsoid((0.0, 0.318, 0.074), (0.026, 0.022, 0.026), joints=[15], name="chin"),
        "nose": Ellipsoid((0.0, 0.388, 0.104), (0.011, 0.022, 0.018), joints=[15], name="nose"),
        "ear": Ellipsoid((0.074, 0.398, -0.004), (0.012, 0.030, 0.019), joints=[15], name="ear"),
    }


class BodyShape:
    """The field of the whole body plus its primitives (for skinning)."""

    def __init__(self):
        self.joints = rest_joints()
        left = _left_parts(self.joints)
        mid = _midline_parts(self.joints)
        self.mid = mid
        self.left = left
        self.right = {k: Mirrored(v) for k, v in left.items()}
        ear_r = Mirrored(mid["ear"])
        self.primitives = ([mid[k] for k in ("torso", "neck", "cranium", "jaw", "chin", "nose",
                                              "ear")] + [ear_r]
                           + list(left.values()) + list(self.right.values()))
        self._ear_r = ear_r

    # The union is built in groups so that only the pieces that should grow together are
    # filleted: each limb is blended with the core but never with the other limbs.
    def _head(self, p):
        m = self.mid
        h = smin(m["cranium"].field(p), m["jaw"].field(p), 0.035)
        h = smin(h, m["chin"].field(p), 0.02)
        # Eye sockets: shallow smooth dents under the brow.
        for x in (0.032, -0.032):
            eye = np.linalg.norm(p - np.array([x, 0.412, 0.104]), axis=1) - 0.015
            h = smax(h, -eye, 0.012)
        h = smin(h, m["nose"].field(p), 0.012)
        h = smin(h, m["ear"].field(p), 0.01)
        return smin(h, self._ear_r.field(p), 0.01)

    def _core(self, p):
        core = smin(self.mid["torso"].field(p), self.mid["neck"].field(p), 0.03)
        core = smin(core, self._head(p), 0.025)
        core = smin(core, self.left["girdle"].field(p), 0.04)
        return smin(core, self.right["girdle"].field(p), 0.04)

    @staticmethod
    def _arm(parts, p):
        a = smin(parts["deltoid"].field(p), parts["upper_arm"].field(p), 0.03)
        a = smin(a, parts["forearm"].field(p), 0.025)
        a = smin(a, parts["forearm_muscle"].field(p), 0.025)
        hand = smin(parts["hand"].field(p), parts["thumb"].field(p), 0.025)
        return smin(a, hand, 0.015)

    @staticmethod
    def _leg(parts, p):
        g = smin(parts["thigh"].field(p), parts["shin"].field(p), 0.03)
        g = smin(g, parts["calf"].field(p), 0.035)
        g = smin(g, parts["knee_cap"].field(p), 0.02)
        return smin(g, parts["foot"].field(p), 0.03)

    def sdf(self, p):
        p = np.asarray(p, float)
        core = self._core(p)
        out = None
        for parts in (self.left, self.right):
            arm = smin(core, self._arm(parts, p), 0.03)
            leg = smin(core, self._leg(parts, p), 0.045)
            piece = np.minimum(arm, leg)
            out = piece if out is None else np.minimum(out, piece)
        return out

    def gradient(self, p, f=None, eps=1e-5):
        """Forward-difference gradient of the field (``f``: the field at p, if known)."""
        f = self.sdf(p) if f is None else f
        g = np.empty_like(p)
        for i in range(3):
            d = np.zeros(3)
            d[i] = eps
            g[:, i] = (self.sdf(p + d) - f) / eps
        return g

    def memberships(self, p, tau=0.012):
        """(N, P) soft assignment of points to primitives, from their own fields."""
        d = np.stack([prim.field(p) for prim in self.primitives], axis=1)
        z = -(d - d.min(1, keepdims=True)) / tau
        e = np.exp(z)
        return e / e.sum(1, keepdims=True)

    def skin(self, p, tau=0.012):
        m = self.memberships(p, tau)
        w = np.zeros((len(p), NUM_JOINTS))
        for i, prim in enumerate(self.primitives):
            w += m[:, i:i + 1] * prim.skin(p)
        return w / w.sum(1, keepdims=True)


# ---------------------------------------------------------------------------------------------
# Meshing.

def _resolve_ambiguous_faces(field, max_rounds=10):
    """Remove saddle faces from the sign pattern. A grid face whose inside corners sit on one
    diagonal and outside corners on the other would join four quads along one edge (a
    non-manifold edge, where a feature is thinner than a cell); flipping the sign of the corner
    nearest to the surface (smallest |field|) settles it with the least change of shape."""
    F = field.copy()
    for _ in range(max_rounds):
        inside = F < 0
        flips = []
        for axis in range(3):
            a, b = [x for x in range(3) if x != axis]

            def corner(da, db):
                sl = [slice(None)] * 3
                sl[a] = slice(da, inside.shape[a] - 1 + da)
                sl[b] = slice(db, inside.shape[b] - 1 + db)
                return tuple(sl)

            c00, c10, c01, c11 = (inside[corner(*d)] for d in ((0, 0), (1, 0), (0, 1), (1, 1)))
            saddle = (c00 == c11) & (c10 == c01) & (c00 != c10)
            if not saddle.any():
                continue
            idx = np.argwhere(saddle)
            best, best_val = None, None
            for da, db in ((0, 0), (1, 0), (0, 1), (1, 1)):
                node = idx.copy()
                node[:, a] += da
                node[:, b] += db
                val = np.abs(F[node[:, 0], node[:, 1], node[:, 2]])
                if best is None:
                    best, best_val = node, val
                else:
                    take = val < best_val
                    best[take], best_val[take] = node[take], val[take]
            flips.append(best)
        if not flips:
            break
        nodes = np.unique(np.concatenate(flips), axis=0)
        i, j, k = nodes.T
        F[i, j, k] = np.where(F[i, j, k] < 0, 1e-9, -1e-9)
    return F


def surface_nets(field, xs, ys, zs):
    """Mesh the zero level set of ``field`` sampled on the grid xs × ys × zs (1-D arrays).

    One vertex per grid cell the surface crosses (at the mean of the crossing points on the
    cell's edges) and one quad per crossed grid edge, joining the four cells around it and
    wound so that its normal points out of the negative (inside) region. Returns vertices (V, 3)
    and triangles (F, 3). The field must be positive on the grid's border.
    """
    F = _resolve_ambiguous_faces(field)
    inside = F < 0
    nx, ny, nz = F.shape
    corners = sum(inside[i:nx - 1 + i, j:ny - 1 + j, k:nz - 1 + k].astype(np.int8)
                  for i in (0, 1) for j in (0, 1) for k in (0, 1))
    active = (corners > 0) & (corners < 8)
    index = np.full(active.shape, -1, dtype=np.int64)
    index[active] = np.arange(active.sum())

    # Crossing points on the edges along each axis, accumulated into the cells around them.
    acc = np.zeros(active.shape + (3,))
    cnt = np.zeros(active.shape)
    coords = (xs, ys, zs)
    for axis in range(3):
        sl0 = [slice(None)] * 3
        sl1 = [slice(None)] * 3
        sl0[axis] = slice(0, -1)
        sl1[axis] = slice(1, None)
        f0, f1 = F[tuple(sl0)], F[tuple(sl1)]
        cross = (f0 < 0) != (f1 < 0)
        t = np.where(cross, f0 / np.where(cross, f0 - f1, 1.0), 0.0)
        grids = np.meshgrid(*coords, indexing="ij")
        pts = np.stack([g[tuple(sl0)] for g in grids], axis=-1)
        step = np.diff(coords[axis])
        shape = [1, 1, 1]
        shape[axis] = -1
        pts[..., axis] += t * step.reshape(shape)
        pts *= cross[..., None]
        # An edge along `axis` at (i, j, k) borders the cells whose other two indices are
        # (j-1 or j, k-1 or k).
        others = [a for a in range(3) if a != axis]
        for da in (0, 1):
            for db in (0, 1):
                src = [slice(None)] * 3
                n_a, n_b = active.shape[others[0]], active.shape[others[1]]
                src[others[0]] = slice(da, da + n_a)
                src[others[1]] = slice(db, db + n_b)
                acc += pts[tuple(src)]
                cnt += cross[tuple(src)]
    verts = acc[active] / cnt[active][:, None]

    quads = []
    for axis in range(3):
        a, b = [x for x in range(3) if x != axis]
        sl0 = [slice(None)] * 3
        sl1 = [slice(None)] * 3
        sl0[axis] = slice(0, -1)
        sl1[axis] = slice(1, None)
        i0 = inside[tuple(sl0)]
        cross = i0 != inside[tuple(sl1)]
        # Only interior edges (all four neighbouring cells exist).
        cross[tuple(slice(None) if d == axis else slice(0, 1) for d in range(3))] = False
        sel = [slice(None)] * 3
        sel[a] = slice(0, 1)
        cross[tuple(sel)] = False
        sel = [slice(None)] * 3
        sel[b] = slice(0, 1)
        cross[tuple(sel)] = False
        sel = [slice(None)] * 3
        sel[a] = slice(cross.shape[a] - 1, None)
        cross[tuple(sel)] = False
        sel = [slice(None)] * 3
        sel[b] = slice(cross.shape[b] - 1, None)
        cross[tuple(sel)] = False
        e = np.argwhere(cross)
        outward_pos = i0[cross]                  # inside at the low end: normal along +axis
        def cell(da, db):
            c = e.copy()
            c[:, a] -= da
            c[:, b] -= db
            return index[c[:, 0], c[:, 1], c[:, 2]]
        # Around +axis the cycle (a-,b-) (a+,b-) (a+,b+) (a-,b+) is counter-clockwise when the
        # axes (axis, a, b) are a cyclic permutation of (x, y, z).
        q = np.stack([cell(1, 1), cell(0, 1), cell(0, 0), cell(1, 0)], axis=1)
        if (axis, a, b) not in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):
            q = q[:, ::-1]
        q = np.where(outward_pos[:, None], q, q[:, ::-1])
        quads.append(q)
    quads = np.concatenate(quads)
    assert (quads >= 0).all()
    return verts, quads


def split_quads(verts, quads):
    """Two triangles per quad, cut along the shorter diagonal."""
    d02 = np.linalg.norm(verts[quads[:, 0]] - verts[quads[:, 2]], axis=1)
    d13 = np.linalg.norm(verts[quads[:, 1]] - verts[quads[:, 3]], axis=1)
    short02 = d02 <= d13
    t1 = np.where(short02[:, None], quads[:, [0, 1, 2]], quads[:, [0, 1, 3]])
    t2 = np.where(short02[:, None], quads[:, [0, 2, 3]], quads[:, [1, 2, 3]])
    return np.concatenate([t1, t2])


def vertex_normals(verts, faces):
    """Unit vertex normals: the area-weighted sum of the normals of the faces around."""
    fn = np.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]])
    idx = faces.ravel()
    n = np.stack([np.bincount(idx, np.repeat(fn[:, c], 3), minlength=len(verts))
                  for c in range(3)], axis=1)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def _neighbour_mean(verts, faces, values):
    """Mean of ``values`` (V, 3) over each vertex's edge neighbours (uniform Laplacian; an edge
    shared by two faces counts twice, uniformly)."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e = np.concatenate([e, e[:, ::-1]])
    cnt = np.bincount(e[:, 0], minlength=len(verts)).astype(float)
    acc = np.stack([np.bincount(e[:, 0], values[e[:, 1], c], minlength=len(verts))
                    for c in range(values.shape[1])], axis=1)
    return acc / np.maximum(cnt, 1)[:, None]


def _grid_points(xs, ys, zs):
    X, Y, Z = np.meshgrid(xs, ys, zs, indexing="ij")
    return np.stack([X.ravel(), Y.ravel(), Z.ravel()], axis=1)


def _narrow_band_field(sdf, xs, ys, zs, band):
    """The field on the grid, computed exactly only near the surface: first on every other
    node, interpolated (trilinear, node midpoints) to the full grid, then re-evaluated where the
    interpolated value is within ``band`` of zero. The field grows like distance, so farther
    nodes keep the right sign."""
    coarse = sdf(_grid_points(xs[::2], ys[::2], zs[::2])).reshape(
        len(xs[::2]), len(ys[::2]), len(zs[::2]))
    f = coarse
    for axis in range(3):
        shape = list(f.shape)
        shape[axis] = 2 * shape[axis] - 1
        up = np.empty(shape)
        even = [slice(None)] * 3
        odd = [slice(None)] * 3
        even[axis] = slice(0, None, 2)
        odd[axis] = slice(1, None, 2)
        up[tuple(even)] = f
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis] = slice(0, -1)
        hi[axis] = slice(1, None)
        up[tuple(odd)] = 0.5 * (f[tuple(lo)] + f[tuple(hi)])
        f = up
    near = np.abs(f) < band
    idx = np.nonzero(near)
    pts = np.stack([xs[idx[0]], ys[idx[1]], zs[idx[2]]], axis=1)
    f[idx] = sdf(pts)
    return f


def mesh_body(shape: BodyShape, step=0.017, project_iters=2, relax_iters=2):
    """Mesh the body field: surface nets on a grid symmetric about x = 0, then vertices are
    projected onto the zero set (Newton steps along the field gradient) and relaxed
    tangentially for evener triangles."""
    def nodes(lo, hi):  # an odd count, so that every other node forms the coarse grid
        n = int(np.ceil((hi - lo) / step)) + 1
        n += 1 - n % 2
        return lo + np.arange(n) * step

    xs = nodes(-0.92, 0.92)
    xs -= (xs[0] + xs[-1]) / 2.0                  # symmetric about x = 0
    ys = nodes(SOLE_Y - 0.04, 0.58)
    zs = nodes(-0.18, 0.22)
    field = _narrow_band_field(shape.sdf, xs, ys, zs, band=2.5 * step)
    verts, quads = surface_nets(field, xs, ys, zs)
    faces = split_quads(verts, quads)

    def project(v):
        for _ in range(project_iters):
            f = shape.sdf(v)
            g = shape.gradient(v, f)
            step_v = f[:, None] * g / np.maximum((g * g).sum(1, keepdims=True), 1e-8)
            # Never move a vertex by more than a cell in one step.
            norm = np.linalg.norm(step_v, axis=1, keepdims=True)
            step_v *= np.minimum(1.0, step / np.maximum(norm, 1e-12))
            v = v - step_v
        return v

    verts = project(verts)
    for _ in range(relax_iters):
        n = vertex_normals(verts, faces)
        lap = _neighbour_mean(verts, faces, verts) - verts
        lap -= (lap * n).sum(1, keepdims=True) * n
        verts = project(verts + 0.5 * lap)
    return verts, faces
