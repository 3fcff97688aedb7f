"""Renders per second of the pure-PyTorch rasterizer on a full-detail body mesh.

    python bench/bench_render.py [--sizes 128x64 256x128] [--batch 32] [--seconds 3]
                                 [--modes rgb grey] [--camera perspective|weak]

Prints one JSON line per size and mode ("rgb": lit vertex colours, "grey": GCL's structure
image) and appends them to bench/results/render.jsonl. The mesh is the body model
(`mesh.body_model.load_body_model`) when it exists, else a procedural stand-in of the same
size and shape: a closed union of capsules 1.7 m tall (about 6.7k vertices, 13.4k faces).
Each batch shows the body at a different yaw per image through a camera that makes it fill
the person crop, as the synthetic world does. The figure is the median over repeated batches
(the machine is shared; `best_renders_per_s` is the fastest batch).
"""
import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import emit  # noqa: E402
from mesh.cameras import (Y_UP_TO_CAMERA, PerspectiveCamera, WeakPerspectiveCamera,  # noqa: E402
                          look_at)
from mesh.rasterizer import render  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "render.jsonl"


def capsule(p0, p1, radius, segments=24, rings=21):
    """A closed capsule mesh around the segment p0 → p1 (outward, counter-clockwise faces)."""
    p0, p1 = torch.as_tensor(p0, dtype=torch.float64), torch.as_tensor(p1, dtype=torch.float64)
    axis = p1 - p0
    length = axis.norm()
    a = axis / length
    helper = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    if abs(float(a @ helper)) > 0.9:
        helper = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    u = torch.linalg.cross(a, helper)
    u = u / u.norm()
    w = torch.linalg.cross(a, u)
    # rings spaced evenly along the profile (half circle, straight side, half circle), so that
    # faces are about equal in size as on a body mesh; the lower half sits on p0, the upper on p1
    arc = math.pi / 2 * radius
    profile = torch.linspace(0, 2 * arc + length, rings + 1, dtype=torch.float64)[1:-1]
    lat = torch.where(profile < arc, profile / radius - math.pi / 2,
                      torch.where(profile > arc + length,
                                  (profile - arc - length) / radius, torch.zeros_like(profile)))
    shift = (profile - arc).clamp(0, float(length))              # position along the side
    lon = torch.linspace(0, 2 * math.pi, segments + 1, dtype=torch.float64)[:-1]
    la, lo = torch.meshgrid(lat, lon, indexing="ij")
    ring = (torch.cos(la)[..., None] * (torch.cos(lo)[..., None] * u + torch.sin(lo)[..., None] * w)
            + torch.sin(la)[..., None] * a) * radius
    centre = p0 + shift[:, None, None] * a
    verts = torch.cat([(p0 - a * radius)[None], (ring + centre).reshape(-1, 3),
                       (p1 + a * radius)[None]])
    n_ring = rings - 1
    faces = []
    idx = lambda r, s: 1 + r * segments + s % segments  # noqa: E731
    for s in range(segments):
        faces.append((0, idx(0, s + 1), idx(0, s)))
        top = 1 + n_ring * segments
        faces.append((top, idx(n_ring - 1, s), idx(n_ring - 1, s + 1)))
        for r in range(n_ring - 1):
            faces.append((idx(r, s), idx(r, s + 1), idx(r + 1, s + 1)))
            faces.append((idx(r, s), idx(r + 1, s + 1), idx(r + 1, s)))
    return verts.float(), torch.tensor(faces, dtype=torch.long)


def capsule_body():
    """A 1.7 m person of 14 capsules (y up, facing +z, feet at y = -1.15): (V, 3), (F, 3)."""
    parts = [
        ((0, 0.42, 0), (0, 0.50, 0.01), 0.095),          # head
        ((0, 0.26, 0), (0, 0.36, 0), 0.055),             # neck
        ((0, -0.02, 0), (0, 0.20, 0), 0.15),             # chest
        ((0, -0.12, 0), (0, -0.04, 0), 0.14),            # pelvis
        ((-0.18, 0.20, 0), (-0.24, -0.08, 0), 0.05),     # upper arms
        ((0.18, 0.20, 0), (0.24, -0.08, 0), 0.05),
        ((-0.24, -0.08, 0), (-0.27, -0.34, 0.02), 0.04),  # forearms
        ((0.24, -0.08, 0), (0.27, -0.34, 0.02), 0.04),
        ((-0.09, -0.18, 0), (-0.10, -0.62, 0), 0.075),   # thighs
        ((0.09, -0.18, 0), (0.10, -0.62, 0), 0.075),
        ((-0.10, -0.62, 0), (-0.11, -1.06, -0.01), 0.055),  # shins
        ((0.10, -0.62, 0), (0.11, -1.06, -0.01), 0.055),
        ((-0.11, -1.12, -0.02), (-0.11, -1.12, 0.12), 0.035),  # feet
        ((0.11, -1.12, -0.02), (0.11, -1.12, 0.12), 0.035),
    ]
    verts, faces, offset = [], [], 0
    for p0, p1, r in parts:
        v, f = capsule(p0, p1, r)
        verts.append(v)
        faces.append(f + offset)
        offset += v.shape[0]
    return torch.cat(verts), torch.cat(faces)


def body_mesh():
    """(vertices (V, 3), faces (F, 3), source name): the body with its arms lowered to the
    sides (a person crop shows a standing or walking person, not a T-pose)."""
    try:
        from mesh.body_model import load_body_model  # lands with the body model
    except ImportError:
        v, f = capsule_body()
        return v, f, "capsules"
    model = load_body_model()
    pose = torch.zeros(1, 69)
    pose[0, 15 * 3 + 2] = -1.2              # left shoulder (joint 16): arm down, about z
    pose[0, 16 * 3 + 2] = 1.2               # right shoulder (joint 17)
    with torch.no_grad():
        v = model(body_pose=pose).vertices[0]
    f = torch.as_tensor(model.faces.astype("int64"))
    return v.float(), f, "body_model"


def scene(verts, batch, height, width, camera="perspective", seed=0):
    """Per-image yaw and colours, and a camera that makes the body fill an H × W crop."""
    gen = torch.Generator().manual_seed(seed)
    centre = (verts.amax(0) + verts.amin(0)) / 2
    tall = float(verts[:, 1].amax() - verts[:, 1].amin())
    yaw = torch.rand(batch, generator=gen) * 2 * math.pi
    c, s = torch.cos(yaw), torch.sin(yaw)
    rot = torch.zeros(batch, 3, 3)
    rot[:, 0, 0], rot[:, 0, 2], rot[:, 1, 1], rot[:, 2, 0], rot[:, 2, 2] = c, s, 1, -s, c
    v = (verts - centre) @ rot.transpose(1, 2)
    colors = torch.rand(batch, 1, 3, generator=gen) * 0.8 + 0.1
    colors = (colors + 0.1 * torch.rand(1, verts.shape[0], 3, generator=gen)).clamp(0, 1)
    if camera == "weak":       # HMR's (s, tx, ty): the body spans 85% of the crop height
        scale = 0.85 * 2 * height / max(height, width) / tall
        return v, WeakPerspectiveCamera(torch.tensor([scale, 0.0, 0.0]), R=Y_UP_TO_CAMERA), colors
    distance = 5.0
    focal = 0.85 * height * distance / tall
    R, t = look_at((0.0, 0.0, distance), (0.0, 0.0, 0.0))
    return v, PerspectiveCamera(focal=focal, R=R, t=t), colors


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["128x64", "256x128"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--modes", nargs="+", default=["rgb", "grey"])
    parser.add_argument("--camera", choices=["perspective", "weak"], default="perspective")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON lines file to append to")
    args = parser.parse_args()

    verts, faces, source = body_mesh()
    for size in args.sizes:
        height, width = (int(x) for x in size.lower().split("x"))
        v, camera, colors = scene(verts, args.batch, height, width, args.camera)
        for mode in args.modes:
            kwargs = dict(colors=colors, mode=mode)
            out = render(v, faces, camera, height, width, **kwargs)  # warm-up
            coverage = float(out.mask.mean())
            load = os.getloadavg()[0]
            times, start = [], time.perf_counter()
            while time.perf_counter() - start < args.seconds or len(times) < 5:
                t0 = time.perf_counter()
                render(v, faces, camera, height, width, **kwargs)
                times.append(time.perf_counter() - t0)
            times.sort()
            record = {
                "bench": "render", "height": height, "width": width,
                "vertices": verts.shape[0], "faces": faces.shape[0], "mesh": source,
                "batch": args.batch, "mode": mode, "camera": args.camera,
                # the machine is shared: the median batch is the figure, the best shows the noise
                "renders_per_s": round(args.batch / times[len(times) // 2], 1),
                "best_renders_per_s": round(args.batch / times[0], 1), "calls": len(times),
                "coverage": round(coverage, 3), "threads": torch.get_num_threads(),
                "cpus": os.cpu_count(), "load_1min": round(load, 2),
                "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
            }
            emit(record, args.out)


if __name__ == "__main__":
    main()
