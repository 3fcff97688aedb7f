"""Where the people are seen: fixed cameras with their own view, light and image quality.

Each camera of a world (`CameraRig`) is a fixed surveillance camera: mounted at a height,
tilted down by a pitch, with a focal length in pixels of a 1280 × 720 **full frame**. Its
background is one static image of that full frame (`panorama`), ray-cast from the rig's
geometry: a ground plane (asphalt, tiles, paving, grass, an indoor floor) with a real
perspective, a wall or building facade at some distance (bricks, panels, windows, shop fronts,
hedges, plain paint), sky above the facade when it is low enough, and objects standing on the
ground (poles, bins, planters, benches, signs). A person walking through the view is placed
on the same ground, so the person's box cuts the matching part of the background.

The rig also fixes the light (a key light fixed in the world, so it is fixed in the camera's
frame; an ambient light with a tint; a fill), and the camera's image quality: its effective
sensor resolution (distant people are upsampled from few pixels), blur, colour cast
(per-channel gains), saturation, contrast, brightness, noise, the strength of the shadows
under people, and how often people are occluded. Per image, small jitters on top
(`image_look`).

Everything is drawn from numpy generators seeded by the caller: the same seed gives the same
rigs and the same backgrounds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

FULL_W, FULL_H = 1280, 720          # every camera's full frame (pixels)
PERSON_HEIGHT = 1.7                 # for choosing distances (metres)


@dataclass
class CameraRig:
    index: int                      # 0-based camera id
    kind: str                       # "outdoor" | "indoor"
    height: float                   # camera height (m)
    pitch: float                    # downward tilt (radians)
    focal: float                    # full-frame focal length (pixels)
    person_px: list                 # [min, max] person height in full-frame pixels
    res_factor: float               # effective sensor resolution (1 = sharp at 1280 × 720)
    blur: float                     # gaussian sigma (pixels of a 128-high crop)
    gains: list                     # colour cast: RGB gains
    saturation: float
    contrast: float
    brightness: float
    noise: float                    # pixel noise sigma (0-1 scale)
    ambient: float
    ambient_tint: list              # RGB tint of the ambient light
    key_dir: list                   # key light direction (camera frame, toward the light)
    key: float                      # key light intensity
    fill: float
    shadow: float                   # darkening under a person's feet (0-1)
    occlusion: float                # probability that an image is occluded
    paths: list                     # main walking directions (yaw, radians) seen by the camera
    background: dict = field(default_factory=dict)

    def rotation(self) -> np.ndarray:
        return rig_rotation(self.pitch)

    def eye(self) -> np.ndarray:
        return np.array([0.0, self.height, 0.0])


def rig_rotation(pitch: float) -> np.ndarray:
    """World → camera rotation of a rig (OpenCV camera frame): the camera looks along world
    -z tilted down by ``pitch``; its rows are the camera's x (right), y (down) and z (forward)
    axes in world coordinates."""
    c, s = math.cos(pitch), math.sin(pitch)
    return np.array([[1.0, 0.0, 0.0], [0.0, -c, s], [0.0, -s, -c]])


def sample_rigs(rng: np.random.Generator, count: int, nuisance: float = 1.0,
                backgrounds: str = "scene") -> list[CameraRig]:
    """``count`` cameras that differ visibly: indoor and outdoor views, heights, palettes,
    light and image quality.

    ``nuisance`` scales how far each camera's image quality departs from a perfect camera
    (colour cast, saturation, contrast, brightness, blur, noise, resolution loss, ambient
    tint, occlusion rate): 0 = every camera renders faithfully, 1 = the default world. The
    random draws are the same for any value. ``backgrounds="plain"`` replaces the scenes by a
    flat grey (a diagnostic: what the background costs)."""
    k = float(nuisance)
    near = lambda x: 1.0 + k * (x - 1.0)  # noqa: E731
    rigs = []
    kinds = ["outdoor", "indoor"] * count
    rng.shuffle(kinds)
    for i in range(count):
        kind = kinds[i]
        indoor = kind == "indoor"
        height = rng.uniform(2.4, 3.4) if indoor else rng.uniform(3.0, 6.0)
        pitch = math.radians(rng.uniform(8, 18) if indoor else rng.uniform(10, 22))
        focal = rng.uniform(800, 1150)
        lo = rng.uniform(110, 190)
        person_px = [float(lo), float(lo * rng.uniform(1.5, 2.4))]
        farthest = focal * PERSON_HEIGHT / lo
        # key light: from above, somewhat to a side; direction in the camera frame
        az = rng.uniform(-math.pi, math.pi)
        el = math.radians(rng.uniform(25, 70))
        world_dir = np.array([math.cos(el) * math.sin(az), math.sin(el),
                              math.cos(el) * math.cos(az)])
        cam_dir = rig_rotation(pitch) @ world_dir
        gains = np.exp(rng.normal(0.0, 0.05, 3))
        gains /= gains.mean()
        main = rng.uniform(-math.pi, math.pi)
        paths = [float(main), float(main + math.pi)]
        if rng.random() < 0.6:
            paths += [float(main + math.pi / 2), float(main - math.pi / 2)]
        rigs.append(CameraRig(
            index=i, kind=kind, height=round(float(height), 3), pitch=round(float(pitch), 4),
            focal=round(float(focal), 1), person_px=[round(p, 1) for p in person_px],
            res_factor=round(near(float(rng.choice([1.0, 0.8, 0.6, 0.45],
                                                   p=[0.35, 0.3, 0.2, 0.15]))), 3),
            blur=round(k * float(rng.uniform(0.0, 0.9)), 3),
            gains=[round(near(float(g)), 4) for g in gains],
            saturation=round(near(float(rng.uniform(0.75, 1.1))), 3),
            contrast=round(near(float(rng.uniform(0.85, 1.1))), 3),
            brightness=round(near(float(rng.uniform(0.88, 1.12))), 3),
            noise=round(k * float(rng.uniform(0.005, 0.025)), 4),
            ambient=round(float(rng.uniform(0.45, 0.65) if indoor else rng.uniform(0.3, 0.5)), 3),
            ambient_tint=[round(near(float(t)), 3) for t in np.exp(rng.normal(0, 0.04, 3))],
            key_dir=[round(float(d), 4) for d in cam_dir],
            key=round(float(rng.uniform(0.25, 0.45) if indoor else rng.uniform(0.4, 0.75)), 3),
            fill=round(float(rng.uniform(0.05, 0.2)), 3),
            shadow=round(float(rng.uniform(0.15, 0.3) if indoor else rng.uniform(0.25, 0.55)), 3),
            occlusion=round(k * float(rng.uniform(0.03, 0.12)), 3),
            paths=[round(p, 4) for p in paths],
            background={**_sample_background(rng, kind, farthest),
                        "plain": backgrounds == "plain"},
        ))
    return rigs


# ---------------------------------------------------------------------------------------------
# Backgrounds.

WALLS = ("bricks", "panels", "windows", "shopfront", "plain", "hedge")
GROUNDS = ("asphalt", "tiles", "paving", "grass", "floor")
# base colours of surfaces (jittered per camera)
WALL_COLORS = [(0.55, 0.30, 0.22), (0.62, 0.42, 0.32), (0.60, 0.60, 0.58), (0.78, 0.74, 0.66),
               (0.88, 0.87, 0.84), (0.45, 0.46, 0.48), (0.70, 0.62, 0.48), (0.55, 0.62, 0.66),
               (0.66, 0.72, 0.62), (0.30, 0.32, 0.36)]
GROUND_COLORS = {"asphalt": [(0.32, 0.32, 0.33), (0.42, 0.42, 0.41), (0.25, 0.26, 0.27)],
                 "tiles": [(0.66, 0.64, 0.60), (0.55, 0.55, 0.55), (0.72, 0.68, 0.58)],
                 "paving": [(0.55, 0.40, 0.34), (0.58, 0.56, 0.52), (0.48, 0.46, 0.44)],
                 "grass": [(0.30, 0.40, 0.20), (0.34, 0.42, 0.25)],
                 "floor": [(0.78, 0.77, 0.74), (0.70, 0.66, 0.58), (0.60, 0.60, 0.62),
                           (0.52, 0.40, 0.30)]}
OBJECT_COLORS = [(0.15, 0.15, 0.16), (0.35, 0.36, 0.38), (0.55, 0.55, 0.55), (0.20, 0.30, 0.22),
                 (0.50, 0.35, 0.22), (0.25, 0.30, 0.45), (0.70, 0.65, 0.55), (0.60, 0.20, 0.15)]


def _shade(rng, rgb, val=0.12, sat=0.2, hue=0.02):
    import colorsys
    h, s, v = colorsys.rgb_to_hsv(*rgb)
    h = (h + rng.uniform(-hue, hue)) % 1
    s = min(1.0, s * rng.uniform(1 - sat, 1 + sat))
    v = min(1.0, v * rng.uniform(1 - val, 1 + val))
    return [round(float(c), 3) for c in colorsys.hsv_to_rgb(h, s, v)]


def _sample_background(rng, kind, farthest) -> dict:
    indoor = kind == "indoor"
    wall = str(rng.choice(["panels", "plain", "windows", "shopfront"] if indoor else WALLS))
    ground = str(rng.choice(["floor", "tiles"] if indoor else ["asphalt", "tiles", "paving",
                                                              "grass", "asphalt"]))
    pick = lambda pal: pal[int(rng.integers(len(pal)))]  # noqa: E731
    return {
        "seed": int(rng.integers(2 ** 31)),
        "wall": wall, "ground": ground,
        "wall_distance": round(float(farthest + (rng.uniform(1, 6) if indoor
                                                 else rng.uniform(2, 15))), 2),
        "wall_height": round(float(rng.uniform(3, 4) if indoor else rng.uniform(5, 25)), 2),
        "wall_color": _shade(rng, pick(WALL_COLORS)),
        "wall_color2": _shade(rng, pick(WALL_COLORS), val=0.4),
        "ground_color": _shade(rng, pick(GROUND_COLORS[ground])),
        "ground_color2": _shade(rng, pick(GROUND_COLORS["paving" if ground == "grass"
                                                        else ground]), val=0.3),
        # outdoors the sky, indoors the ceiling
        "sky": _shade(rng, (0.86, 0.86, 0.83), val=0.08) if indoor else
        _shade(rng, (0.62, 0.74, 0.88) if rng.random() < 0.6 else (0.80, 0.82, 0.84)),
        "object_colors": [_shade(rng, pick(OBJECT_COLORS), val=0.3) for _ in range(4)],
        "tile": round(float(rng.uniform(0.4, 1.2)), 3),
        "objects": int(rng.integers(1, 6)),
        "saturation": round(float(rng.uniform(0.4, 0.7)), 3),   # scenes are muted
        "indoor": indoor,
    }


def _value_noise(rng, shape, cells):
    """Smooth noise in [-1, 1] of ``shape`` with about ``cells`` cells along the width."""
    h, w = shape
    gh, gw = max(2, int(cells * h / w) + 2), int(cells) + 2
    grid = torch.as_tensor(rng.uniform(-1, 1, (1, 1, gh, gw)), dtype=torch.float32)
    return F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False)[0, 0].numpy()


def panorama(rig: CameraRig, scale: float) -> np.ndarray:
    """(3, h, w) float32 background of the rig's full frame at ``scale`` × 1280 × 720."""
    bg = rig.background
    rng = np.random.default_rng(bg["seed"])
    h, w = max(8, round(FULL_H * scale)), max(8, round(FULL_W * scale))
    if bg.get("plain"):
        return np.full((3, h, w), 0.5, np.float32)
    f = rig.focal * w / FULL_W
    u = (np.arange(w) + 0.5 - w / 2) / f
    v = (np.arange(h) + 0.5 - h / 2) / f
    uu, vv = np.meshgrid(u, v)
    R = rig.rotation()
    rays = np.stack([uu, vv, np.ones_like(uu)], -1) @ R          # world directions (h, w, 3)
    eye = rig.eye()
    img = np.zeros((h, w, 3))

    # distances along the rays to the ground (y = 0) and to the wall (z = -D)
    with np.errstate(divide="ignore", invalid="ignore"):
        s_ground = np.where(rays[..., 1] < -1e-6, -eye[1] / rays[..., 1], np.inf)
        s_wall = np.where(rays[..., 2] < -1e-6, -bg["wall_distance"] / rays[..., 2], np.inf)
    wall_y = eye[1] + s_wall * rays[..., 1]
    on_ground = s_ground < s_wall
    on_wall = ~on_ground & (wall_y < bg["wall_height"]) & np.isfinite(s_wall)
    sky = ~on_ground & ~on_wall

    s_ground = np.where(np.isfinite(s_ground), s_ground, 1e4)
    s_wall = np.where(np.isfinite(s_wall), s_wall, 1e4)
    gx = eye[0] + s_ground * rays[..., 0]
    gz = eye[2] + s_ground * rays[..., 2]
    wx = eye[0] + s_wall * rays[..., 0]
    wy = wall_y

    # sky: a vertical gradient
    sky_col = np.asarray(bg["sky"])
    grad = np.clip(0.85 + 0.3 * (np.arange(h) / h), 0, 1.2)[:, None, None]
    img[sky] = (sky_col * grad * np.ones((h, w, 1)))[sky]

    # wall
    wc, wc2 = np.asarray(bg["wall_color"]), np.asarray(bg["wall_color2"])
    kind = bg["wall"]
    shade = np.ones((h, w))
    col = np.broadcast_to(wc, (h, w, 3)).copy()
    if kind == "bricks":
        row = np.floor(wy / 0.075)
        xs = wx / 0.22 + 0.5 * (row % 2)
        mortar = (np.abs(wy / 0.075 - np.round(wy / 0.075)) < 0.09) | \
            (np.abs(xs - np.round(xs)) < 0.04)
        tone = 0.85 + 0.3 * np.abs(np.sin(row * 12.9898 + np.floor(xs) * 78.233) * 43758.5453 % 1)
        col = col * tone[..., None]
        col[mortar] = 0.6 * col[mortar] + 0.4 * 0.75
    elif kind == "panels":
        pw = rng.uniform(0.8, 2.0)
        col[(np.floor(wx / pw) % 2) == 1] *= 0.85
        col[np.abs(wx / pw - np.round(wx / pw)) < 0.015] *= 0.6
        col[(wy > 0) & (wy < 0.12)] = wc2                     # skirting
    elif kind in ("windows", "shopfront"):
        px, py = rng.uniform(1.8, 3.5), rng.uniform(2.8, 3.6)
        fx, fy = (wx / px) % 1, (wy / py) % 1
        win = (fx > 0.2) & (fx < 0.8) & (fy > 0.3) & (fy < 0.85) & (wy > py)
        glass = wc2 * 0.6 + 0.1 * np.clip(1 - fy, 0, 1)[..., None]
        col[win] = glass[win]
        if kind == "shopfront":
            sw = rng.uniform(3, 7)
            shop = np.floor(wx / sw)
            hue = np.abs(np.sin(shop * 12.9898) * 43758.5453) % 1
            sign_col = np.stack([0.3 + 0.6 * hue, 0.3 + 0.6 * ((hue * 3) % 1),
                                 0.3 + 0.6 * ((hue * 7) % 1)], -1)
            front = (wy < 2.6) & ((wx / sw) % 1 > 0.08) & ((wx / sw) % 1 < 0.92)
            col[front & (wy > 0.3)] = (wc2 * 0.5 + 0.25)
            sign = (wy > 2.6) & (wy < 3.2)
            col[sign] = sign_col[sign]
    elif kind == "hedge":
        n = _value_noise(rng, (h, w), 60)
        col = np.asarray([0.12, 0.3, 0.1]) * (1 + 0.35 * n)[..., None] * (wc.mean() + 0.5)
        col[wy > 1.8] = sky_col * 0.9 if not bg["indoor"] else wc
    shade *= 1 + 0.12 * _value_noise(rng, (h, w), 6)
    shade *= 1 - 0.15 * np.clip(wy / max(bg["wall_height"], 1e-3), 0, 1)
    img[on_wall] = (col * shade[..., None])[on_wall]

    # ground
    gc, gc2 = np.asarray(bg["ground_color"]), np.asarray(bg["ground_color2"])
    kind = bg["ground"]
    col = np.broadcast_to(gc, (h, w, 3)).copy()
    t = bg["tile"]
    if kind in ("tiles", "floor"):
        line = (np.abs(gx / t - np.round(gx / t)) < 0.03) | (np.abs(gz / t - np.round(gz / t)) < 0.03)
        check = ((np.floor(gx / t) + np.floor(gz / t)) % 2 == 1)
        col[check] *= 0.93
        col[line] = 0.7 * col[line] + 0.3 * gc2
    elif kind == "paving":
        row = np.floor(gz / 0.2)
        xs = gx / 0.4 + 0.5 * (row % 2)
        joint = (np.abs(gz / 0.2 - np.round(gz / 0.2)) < 0.06) | (np.abs(xs - np.round(xs)) < 0.03)
        col[joint] = 0.6 * col[joint]
    elif kind == "asphalt":
        stripe = (np.abs(gx - rng.uniform(-3, 3)) < 0.06) & ((gz % 3.0) < 1.5)
        col[stripe] = 0.85
    elif kind == "grass":
        path = np.abs(gx - rng.uniform(-2, 2)) < rng.uniform(1.0, 2.0)
        col[path] = gc2
    grain = _value_noise(rng, (h, w), 200) * 0.06 + _value_noise(rng, (h, w), 12) * 0.08
    col = col * (1 + grain)[..., None]
    if bg["indoor"]:                                         # glossy floor: wall reflected
        col = col * (0.9 + 0.1 * np.clip(-gz / bg["wall_distance"], 0, 1))[..., None]
    img[on_ground] = col[on_ground]

    # objects standing on the ground, far to near
    objects = []
    for _ in range(bg["objects"]):
        kind = rng.choice(["pole", "bin", "planter", "bench", "sign", "pillar"])
        z = -rng.uniform(4, bg["wall_distance"] - 0.5)
        x = rng.uniform(-0.8, 0.8) * (-z) * FULL_W / (2 * rig.focal)
        size = {"pole": (0.1, rng.uniform(2.5, 4.5)), "bin": (0.5, 0.9),
                "planter": (rng.uniform(0.8, 1.6), rng.uniform(0.6, 1.1)),
                "bench": (rng.uniform(1.2, 2.0), 0.5), "sign": (0.08, 2.5),
                "pillar": (rng.uniform(0.4, 0.7), bg["wall_height"] if bg["indoor"] else 4.0)}[kind]
        color = np.array([0.15, 0.35, 0.12]) * rng.uniform(0.7, 1.3) if kind == "planter" \
            else np.asarray(bg["object_colors"][int(rng.integers(len(bg["object_colors"])))])
        objects.append((z, x, kind, size, color))
    for z, x, kind, (ow, oh), color in sorted(objects, key=lambda o: o[0]):
        _draw_object(img, rig, scale, x, z, ow, oh, color, kind)

    grey = img.mean(-1, keepdims=True)
    img = grey + (img - grey) * bg.get("saturation", 1.0)
    # soft vignetting
    yy, xx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    img *= (1 - 0.12 * (xx ** 2 + yy ** 2))[..., None]
    return np.clip(img, 0, 1).astype(np.float32).transpose(2, 0, 1).copy()


def project_full(rig: CameraRig, points: np.ndarray) -> np.ndarray:
    """World points (N, 3) → full-frame pixels (N, 2) of the rig."""
    pc = (points - rig.eye()) @ rig.rotation().T
    return rig.focal * pc[:, :2] / pc[:, 2:3] + np.array([FULL_W / 2, FULL_H / 2])


def _draw_object(img, rig, scale, x, z, ow, oh, color, kind):
    h, w = img.shape[:2]
    base = project_full(rig, np.array([[x - ow / 2, 0, z], [x + ow / 2, 0, z], [x, oh, z]])) * scale
    u0, u1 = int(round(base[0, 0])), int(round(base[1, 0]))
    v1, v0 = int(round(base[0, 1])), int(round(base[2, 1]))
    u0, u1 = max(u0, 0), min(max(u1, u0 + 1), w)
    v0, v1 = max(v0, 0), min(v1, h)
    if u1 <= u0 or v1 <= v0:
        return
    ramp = np.linspace(1.1, 0.8, u1 - u0)[None, :, None]      # lit from one side
    if kind == "sign":
        img[v0:v1, u0:u1] = color * ramp
        bw = int(round(6 * (u1 - u0)))
        bv1 = v0 + max(1, (v1 - v0) // 4)
        img[v0:bv1, max(0, u0 - bw):min(w, u1 + bw)] = np.clip(color * 1.4 + 0.2, 0, 1)
    elif kind == "bench":
        img[v0:v1, u0:u1] = color * ramp * 0.6
        img[v0:v0 + max(1, (v1 - v0) // 3), u0:u1] = color * ramp
    else:
        img[v0:v1, u0:u1] = color * ramp


# ---------------------------------------------------------------------------------------------
# Per-image looks, occluders and degradations.

def image_look(rng: np.random.Generator, rig: CameraRig) -> dict:
    """Per-image jitter of the rig's light and image quality, and an occluder (or none)."""
    occluder = None
    if rng.random() < rig.occlusion:
        occluder = sample_occluder(rng)
    return {
        "exposure": round(float(np.exp(rng.normal(0, 0.08))), 4),
        "key": round(float(rig.key * rng.uniform(0.85, 1.15)), 4),
        "blur": round(float(max(0.0, rig.blur + rng.normal(0, 0.15))), 4),
        "noise_seed": int(rng.integers(2 ** 31)),
        "occluder": occluder,
    }


def sample_occluder(rng) -> dict:
    from .identities import cloth_color
    kind = str(rng.choice(["low", "pole", "person"], p=[0.4, 0.25, 0.35]))
    if kind == "person":        # another person's clothes
        color, color2 = cloth_color(rng, "upper"), cloth_color(rng, "lower")
    else:
        color = _shade(rng, OBJECT_COLORS[int(rng.integers(len(OBJECT_COLORS)))], val=0.3)
        color2 = _shade(rng, OBJECT_COLORS[int(rng.integers(len(OBJECT_COLORS)))], val=0.3)
    if kind == "low":          # a bench, car, railing or bin in front of the legs
        return {"kind": kind, "top": round(float(rng.uniform(0.55, 0.85)), 3),
                "x0": round(float(rng.uniform(-0.3, 0.4)), 3),
                "x1": round(float(rng.uniform(0.6, 1.3)), 3), "color": color, "color2": color2}
    if kind == "pole":
        return {"kind": kind, "x": round(float(rng.uniform(0.1, 0.9)), 3),
                "width": round(float(rng.uniform(0.08, 0.18)), 3), "color": color, "color2": color2}
    return {"kind": kind, "side": int(rng.integers(2)),                 # another person
            "width": round(float(rng.uniform(0.25, 0.45)), 3),
            "top": round(float(rng.uniform(0.05, 0.3)), 3),
            "split": round(float(rng.uniform(0.45, 0.6)), 3), "color": color, "color2": color2}


def occluder_layer(occ: dict, height: int, width: int):
    """(rgb (3, H, W), alpha (1, H, W)) float32 of an occluder in crop coordinates."""
    y = (torch.arange(height, dtype=torch.float32) + 0.5) / height
    x = (torch.arange(width, dtype=torch.float32) + 0.5) / width
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    c1 = torch.tensor(occ["color"]).view(3, 1, 1)
    c2 = torch.tensor(occ["color2"]).view(3, 1, 1)
    if occ["kind"] == "low":
        alpha = (yy > occ["top"]) & (xx > occ["x0"]) & (xx < occ["x1"])
        rgb = c1 * (1.15 - 0.35 * (yy - occ["top"]) / max(1e-3, 1 - occ["top"]))
        rgb = torch.where((yy - occ["top"] < 0.04), c2 * 1.1, rgb)
    elif occ["kind"] == "pole":
        d = (xx - occ["x"]) / (occ["width"] / 2)
        alpha = d.abs() < 1
        rgb = c1 * (1.1 - 0.35 * (d + 1) / 2)
    else:
        # a nearer person's shoulder and side: a rounded slab at one side of the box
        edge = occ["width"] if occ["side"] == 0 else 1 - occ["width"]
        inside = (xx < edge) if occ["side"] == 0 else (xx > edge)
        dy = (yy - occ["top"]).clamp(min=0)
        shoulder = (yy > occ["top"]) & (((xx - edge).abs() / 0.15) ** 2 + 1 > 1 - dy * 8)
        alpha = inside & shoulder
        rgb = torch.where(yy < occ["split"], c1, c2) * (1 + 0.1 * torch.cos(xx * 9))
    return rgb.clamp(0, 1).expand(3, height, width).contiguous(), alpha[None].float()


def gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """(C, H, W) blurred by a separable gaussian of ``sigma`` pixels (reflect padding)."""
    if sigma < 0.2:
        return img
    r = max(1, int(math.ceil(2.5 * sigma)))
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float32) / sigma) ** 2)
    k = (k / k.sum()).to(img.dtype)
    c = img.shape[0]
    x = F.pad(img[None], (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    x = F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return x[0]


def resample(img: torch.Tensor, factor: float) -> torch.Tensor:
    """(C, H, W) seen through a sensor ``factor`` times as fine: area-downsampled, then
    upsampled back (bilinear)."""
    if factor >= 0.97:
        return img
    c, h, w = img.shape
    small = F.interpolate(img[None], size=(max(2, round(h * factor)), max(2, round(w * factor))),
                          mode="bilinear", antialias=True, align_corners=False)
    return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)[0]


def color_pipeline(img: torch.Tensor, rig: CameraRig, exposure: float) -> torch.Tensor:
    """The camera's colour response on (3, H, W): gains, saturation, contrast, brightness."""
    gains = torch.tensor(rig.gains, dtype=img.dtype).view(3, 1, 1)
    x = img * gains * (rig.brightness * exposure)
    grey = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])[None]
    x = grey + (x - grey) * rig.saturation
    x = 0.5 + (x - 0.5) * rig.contrast
    return x.clamp(0, 1)
