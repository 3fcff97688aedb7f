"""Plans a synthetic world and writes it as a Market-1501 data set with a ground-truth sidecar.

    from reid_data.synthetic import WorldConfig, write_world
    write_world("data/synthetic", WorldConfig(ids=400, seed=0))

Layout (what `reid_data`'s Market loader reads):

- ``bounding_box_train/``: every image of the training identities (half of them);
- ``query/``: of each test identity, one image per camera it appears in;
- ``bounding_box_test/``: the test identities' other images, distractors (pid 0000: people
  outside the benchmark, some dressed like a test identity) and junk (pid -1: bad boxes —
  shifted, too large, or cutting the person in half);
- file names ``PPPP_cCs1_FFFFFF_00.jpg``: pid from 0001, camera from 1, one sequence, frame
  numbers increasing along each camera's timeline (``-1_cC...`` for junk);
- ``ground_truth.json`` (world settings, cameras, identities' appearance, per-image record)
  and ``ground_truth.npz`` (per-image arrays: betas, pose, yaw, translation, camera R, t, K
  and crop box, in the order of the JSON's images).

How people are seen: each identity walks past 2 or more of the world's cameras; at each it
leaves a *track* of consecutive images (the same walking direction, with its phase advancing
and its position moving along the ground), as a detector over a video gives. Some tracks are
of a person standing. Every random choice comes from one numpy generator seeded by the
world's seed, and image formation is deterministic, so the same settings write byte-identical
files.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .body import standing_pose, walking_pose
from .identities import Appearance, near_duplicate, sample_identities, sample_identity
from .imaging import Imager, effective_resolution, to_uint8
from .scenes import FULL_H, FULL_W, PERSON_HEIGHT, CameraRig, image_look, project_full, \
    sample_rigs

FORMAT = "genreid-synthetic-world"
FORMAT_VERSION = 1
SPLIT_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
JUNK_KINDS = ("shifted", "upper_part", "lower_part", "too_large")


@dataclass
class WorldConfig:
    """What world to write. The defaults are the suite's `synthetic` data set."""
    ids: int = 500                  # benchmark identities (half train, half test)
    cameras: int = 6
    height: int = 128
    width: int = 64
    seed: int = 0
    min_images: int = 8             # images per identity
    max_images: int = 16
    duplicate_fraction: float = 0.2  # identities that copy another one's outfit but one detail
    distractors: float = 0.1        # distractor images (pid 0) per test gallery image
    junk: float = 0.05              # junk images (pid -1) per test gallery image
    standing: float = 0.1           # tracks of a standing person
    nuisance: float = 1.0           # cameras' departure from a perfect camera (0: none)
    backgrounds: str = "scene"      # "scene" (the cameras' views) | "plain" (flat grey)
    supersample: int = 2            # render at this multiple of the size, then downsample
    jpeg_quality: int = 92
    batch_size: int = 32

    def check(self) -> None:
        if self.ids < 2 or self.cameras < 2:
            raise ValueError("a world needs at least 2 identities and 2 cameras")
        if self.height < 16 or self.width < 8:
            raise ValueError(f"image size {self.height}x{self.width} is too small (at least 16x8)")
        if not 2 <= self.min_images <= self.max_images:
            raise ValueError("need 2 <= min_images <= max_images")
        if self.backgrounds not in ("scene", "plain"):
            raise ValueError(f"backgrounds must be 'scene' or 'plain', not {self.backgrounds!r}")
        if self.max_images < 4:
            raise ValueError("max_images must be at least 4 (two cameras, two images each)")


# ---------------------------------------------------------------------------------------------
# Planning.

class _Planner:
    def __init__(self, cfg: WorldConfig):
        self.cfg = cfg
        self.rng = np.random.default_rng([cfg.seed, 7919])
        self.rigs = sample_rigs(self.rng, cfg.cameras, cfg.nuisance, cfg.backgrounds)
        self.identities: list[dict] = []        # {"pid", "role", "split", "appearance"}
        self.records: list[dict] = []
        self.timeline = [0.0] * cfg.cameras     # seconds, per camera
        self.tracks = 0

    # -- people
    def plan(self):
        cfg, rng = self.cfg, self.rng
        people = sample_identities(rng, cfg.ids, cfg.duplicate_fraction)
        pids = rng.permutation(cfg.ids) + 1
        train = np.zeros(cfg.ids, bool)
        train[rng.choice(cfg.ids, cfg.ids // 2, replace=False)] = True
        for i, app in enumerate(people):
            self.identities.append({"pid": int(pids[i]), "role": "benchmark",
                                    "split": "train" if train[i] else "test",
                                    "appearance": app})
        order = rng.permutation(cfg.ids)   # people pass the cameras in random order
        for i in order:
            self._identity_tracks(int(i))
        test_gallery = sum(r["split"] == "gallery" for r in self.records)
        # at least one of each when asked for any, as in Market's gallery
        self._distractors(max(1, round(cfg.distractors * test_gallery)) if cfg.distractors else 0)
        self._junk(max(1, round(cfg.junk * test_gallery)) if cfg.junk else 0)
        self._frames()
        return self.rigs, self.identities, self.records

    def _identity_tracks(self, index: int):
        cfg, rng = self.cfg, self.rng
        ident = self.identities[index]
        n = int(rng.integers(cfg.min_images, cfg.max_images + 1))
        k_max = min(cfg.cameras, n // 2)
        k = int(rng.integers(2, k_max + 1)) if k_max > 2 else 2
        cams = rng.choice(cfg.cameras, k, replace=False)
        counts = np.full(k, 2) + np.bincount(rng.integers(0, k, n - 2 * k), minlength=k)
        start = float(rng.uniform(0, 30))
        for cam, m in zip(cams, counts):
            recs = self._track(index, int(cam), int(m), start)
            start += float(rng.uniform(20, 120))      # walking on to the next camera
            split = "train"
            if ident["split"] == "test":
                q = int(rng.integers(len(recs)))
                for j, r in enumerate(recs):
                    r["split"] = "query" if j == q else "gallery"
            else:
                for r in recs:
                    r["split"] = split

    def _distractors(self, count: int):
        """People outside the benchmark, one short track each; half of them dressed like a
        test identity (a near duplicate)."""
        rng = self.rng
        tests = [i for i, d in enumerate(self.identities) if d["split"] == "test"]
        while count > 0:
            fresh = sample_identity(rng)
            if tests and rng.random() < 0.5:
                j = int(rng.choice(tests))
                fresh = near_duplicate(rng, self.identities[j]["appearance"], j, fresh)
            self.identities.append({"pid": 0, "role": "distractor", "split": "gallery",
                                    "appearance": fresh})
            m = min(count, int(rng.integers(1, 4)))
            for r in self._track(len(self.identities) - 1, int(rng.integers(self.cfg.cameras)),
                                 m, float(rng.uniform(0, 3600))):
                r["split"] = "gallery"
            count -= m

    def _junk(self, count: int):
        """Bad detections of anyone (pid -1)."""
        rng = self.rng
        for _ in range(count):
            index = int(rng.integers(len(self.identities)))
            (r,) = self._track(index, int(rng.integers(self.cfg.cameras)), 1,
                               float(rng.uniform(0, 3600)))
            r["split"] = "gallery"
            r["pid"] = -1
            r["crop_params"]["bad"] = str(rng.choice(JUNK_KINDS))

    # -- images
    def _track(self, index: int, camid: int, m: int, start: float) -> list[dict]:
        """``m`` consecutive images of identity ``index`` passing camera ``camid``. The track
        draws from its own generator and each image from its own (seeded by the world's seed
        and the track's / image's number)."""
        seed = self.cfg.seed
        rng, rig = np.random.default_rng([seed, 1, self.tracks]), self.rigs[camid]
        self.tracks += 1
        app: Appearance = self.identities[index]["appearance"]
        standing = rng.random() < self.cfg.standing
        yaw = float(rng.uniform(-math.pi, math.pi)) if standing else \
            float(rng.choice(rig.paths) + rng.normal(0, 0.35))
        phase = float(rng.uniform(0, 2 * math.pi))
        dphase = float(rng.uniform(0.7, 2.3))
        gx, gz = _place(rng, rig)
        t = max(start, self.timeline[camid]) + float(rng.uniform(0.5, 5))
        recs = []
        for k in range(m):
            img = np.random.default_rng([seed, 2, len(self.records) + k])
            if k:
                step = 0.0 if standing else float(img.uniform(0.4, 1.2))
                gx, gz = gx + step * math.sin(yaw), gz + step * math.cos(yaw)
                if not _in_view(rig, gx, gz):
                    gx, gz = _place(img, rig)
                t += float(img.uniform(0.3, 1.5))
            image_yaw = yaw + float(img.normal(0, 0.1))
            if standing:
                pose = standing_pose(img)
            else:
                pose = walking_pose(phase + k * dphase + float(img.normal(0, 0.2)),
                                    stride=app.stride, arm_swing=app.arm_swing,
                                    arm_down=app.arm_down,
                                    head_turn=float(img.normal(0, 0.15)))
            recs.append({
                "pid": self.identities[index]["pid"], "camid": camid, "identity": index,
                "time": t, "kind": "stand" if standing else "walk", "yaw": image_yaw,
                "pose": pose, "ground": [gx, gz],
                "crop_params": {"top": float(img.uniform(0.02, 0.12)),
                                "bottom": float(img.uniform(0.01, 0.07)),
                                "shift": float(img.normal(0, 0.05)),
                                "bad": None, "bad_amount": float(img.uniform(0, 1))},
                "look": image_look(img, rig),
            })
        self.timeline[camid] = max(self.timeline[camid], t)
        self.records.extend(recs)
        return recs

    def _frames(self):
        """Frame numbers (25 fps) increasing along each camera's timeline, unique per camera,
        and the file names."""
        for camid in range(self.cfg.cameras):
            recs = sorted((r for r in self.records if r["camid"] == camid),
                          key=lambda r: r["time"])
            last = 0
            for r in recs:
                last = max(last + 1, int(round(r["time"] * 25)))
                r["frame"] = last
        for r in self.records:
            pid = f"{r['pid']:04d}" if r["pid"] >= 0 else "-1"
            r["name"] = f"{pid}_c{r['camid'] + 1}s1_{r['frame']:06d}_00.jpg"


def _distance_range(rig: CameraRig):
    lo, hi = rig.person_px
    return rig.focal * PERSON_HEIGHT / hi, rig.focal * PERSON_HEIGHT / lo


def _in_view(rig: CameraRig, gx: float, gz: float) -> bool:
    d = -gz
    dmin, dmax = _distance_range(rig)
    if not dmin * 0.9 <= d <= dmax * 1.1:
        return False
    uv = project_full(rig, np.array([[gx, 0.0, gz], [gx, 1.85, gz]]))
    return (0.06 * FULL_W < uv[0, 0] < 0.94 * FULL_W and uv[0, 1] < FULL_H - 4
            and uv[1, 1] > 4)


def _place(rng, rig: CameraRig):
    """A ground position where the whole person is in the rig's view at a distance that
    gives a person height within the rig's range."""
    dmin, dmax = _distance_range(rig)
    for _ in range(100):
        d = float(rng.uniform(dmin, dmax))
        u = float(rng.uniform(0.12, 0.88))
        gx = (u - 0.5) * FULL_W / rig.focal * d
        if _in_view(rig, gx, -d):
            return gx, -d
    # a steep, close camera: move back until the feet are in the frame
    d = dmax
    while not _in_view(rig, 0.0, -d) and d < 200:
        d *= 1.1
    return 0.0, -d


def crop_box(box, params: dict) -> list:
    """A detector-like 2:1 box (x0, y0, w, h) around the person box (x0, y0, x1, y1): margins
    above and below, a small horizontal shift; junk boxes are badly placed on purpose."""
    x0, y0, x1, y1 = box
    bh = y1 - y0
    cx = (x0 + x1) / 2
    top = y0 - params["top"] * bh
    h = bh * (1 + params["top"] + params["bottom"])
    a = params["bad_amount"]
    bad = params.get("bad")
    if bad == "upper_part":
        top, h = y0 - 0.03 * bh, bh * (0.4 + 0.2 * a)
    elif bad == "lower_part":
        top, h = y0 + bh * (0.45 + 0.15 * a), bh * (0.5 + 0.2 * a)
    elif bad == "too_large":
        h2 = h * (2.0 + a)
        top, h = top - (h2 - h) * (0.3 + 0.4 * a), h2
    w = h / 2
    cx += params["shift"] * w
    if bad == "shifted":
        cx += (0.45 + 0.35 * a) * w * (1 if params["shift"] >= 0 else -1)
    return [float(cx - w / 2), float(top), float(w), float(h)]


# ---------------------------------------------------------------------------------------------
# Writing.

def write_world(out, cfg: WorldConfig | None = None, progress: bool = True) -> dict:
    """Writes the world ``cfg`` into the folder ``out`` (created; must be empty or absent).
    Returns a summary (counts, seconds, images per second)."""
    from tqdm import tqdm

    cfg = cfg or WorldConfig()
    cfg.check()
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; pass an empty or new folder")
    start = time.perf_counter()
    rigs, identities, records = _Planner(cfg).plan()
    imager = Imager(rigs, cfg.height, cfg.width, cfg.supersample)
    for sub in SPLIT_FOLDERS.values():
        (out / sub).mkdir(parents=True, exist_ok=True)
    arrays = {k: [] for k in ("betas", "pose", "yaw", "transl", "R", "t", "K", "crop")}
    bar = tqdm(total=len(records), desc="synthetic world", unit="img", disable=not progress,
               dynamic_ncols=True)
    for s in range(0, len(records), cfg.batch_size):
        batch = records[s:s + cfg.batch_size]
        apps = [identities[r["identity"]]["appearance"] for r in batch]
        verts, transl = imager.pose(apps, batch)
        boxes = imager.full_frame_boxes(verts, batch)
        for r, box in zip(batch, boxes):
            r["crop"] = crop_box(box, r["crop_params"])
            r["res"] = round(effective_resolution(r["crop"][3], rigs[r["camid"]]), 4)
        images, _ = imager.form(apps, batch, verts)
        pixels = to_uint8(images)
        for r, px, tr in zip(batch, pixels, transl.numpy()):
            path = out / SPLIT_FOLDERS[r["split"]] / r["name"]
            Image.fromarray(px).save(path, format="JPEG", quality=cfg.jpeg_quality)
            R, t = imager.extrinsics(r)
            f, (cx, cy) = imager.intrinsics(r)
            arrays["betas"].append(identities[r["identity"]]["appearance"].betas)
            arrays["pose"].append(r["pose"])
            arrays["yaw"].append(r["yaw"])
            arrays["transl"].append(tr)
            arrays["R"].append(R)
            arrays["t"].append(t)
            arrays["K"].append([[f, 0, cx], [0, f, cy], [0, 0, 1]])
            arrays["crop"].append(r["crop"])
        bar.update(len(batch))
    bar.close()
    seconds = time.perf_counter() - start
    _write_ground_truth(out, cfg, rigs, identities, records, arrays)
    summary = {"images": len(records), "seconds": round(seconds, 2),
               "images_per_s": round(len(records) / max(seconds, 1e-9), 1)}
    for split in SPLIT_FOLDERS:
        summary[split] = sum(r["split"] == split for r in records)
    summary["distractors"] = sum(r["pid"] == 0 for r in records)
    summary["junk"] = sum(r["pid"] == -1 for r in records)
    return summary


def _json_record(r: dict) -> dict:
    keep = ("name", "split", "pid", "camid", "frame", "identity", "kind", "yaw", "ground",
            "crop", "res", "look", "crop_params")
    out = {k: r[k] for k in keep}
    out["yaw"] = float(r["yaw"])
    return out


def _write_ground_truth(out: Path, cfg, rigs, identities, records, arrays):
    doc = {
        "format": FORMAT, "version": FORMAT_VERSION,
        "config": dataclasses.asdict(cfg),
        "full_frame": [FULL_W, FULL_H],
        "conventions": "world metres, y up; the person stands at the origin (feet at y=0, "
                       "body centre at x=z=0), turned by `yaw` about the vertical; pose row 0 "
                       "(global orientation) is zero; camera frame x right, y down, z forward: "
                       "x_cam = R x + t, pixel = K x_cam / z on the H x W crop",
        "cameras": [dataclasses.asdict(r) for r in rigs],
        "identities": [{"index": i, "pid": d["pid"], "role": d["role"], "split": d["split"],
                        "appearance": dataclasses.asdict(d["appearance"])}
                       for i, d in enumerate(identities)],
        "images": [_json_record(r) for r in records],
    }
    np.savez_compressed(
        out / "ground_truth.npz", names=np.array([r["name"] for r in records]),
        **{k: np.asarray(v, np.float32) for k, v in arrays.items()})
    (out / "ground_truth.json").write_text(json.dumps(doc, separators=(",", ":")))


def generate(folder, cfg: WorldConfig | None = None, progress: bool = True) -> dict:
    """Writes a world into ``folder`` atomically (a temporary sibling folder renamed at the
    end), so that concurrent processes (DDP ranks) and interrupted runs never leave a
    half-written data set. An empty ``folder`` is replaced; if another process finishes first,
    its (identical) copy is kept."""
    folder = os.path.abspath(folder)
    parent = os.path.dirname(folder)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".synthetic-", dir=parent)
    try:
        summary = write_world(tmp, cfg, progress)
        if os.path.isdir(folder) and not os.listdir(folder):
            os.rmdir(folder)
        os.rename(tmp, folder)
        return summary
    except OSError:
        if not (os.path.isdir(folder) and os.listdir(folder)):
            raise
        return {}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
