"""The synthetic world's generation rate and its colour-histogram baseline (no learning).

    python bench/bench_synthetic.py [--world DIR] [--ids N] [--cameras C] [--seed S]
                                    [--height H --width W] [--keep DIR]

Writes a world (the default `synthetic` world unless told otherwise) into a temporary folder,
or uses the existing world ``--world DIR``, and prints JSON lines, appended to
bench/results/synthetic.jsonl:

- ``synthetic_generation``: images, seconds and images per second of writing the world (only
  when this run wrote it), with the world's split counts;
- ``synthetic_histogram``: query/gallery mAP and rank-1 (Market protocol, `evaluate_rank`) of
  colour histograms: per image, joint histograms of horizontal stripes (RGB 8×8×8 or HSV
  16×4×4), optionally of the central half of the width only (less background), L1-normalised,
  compared by the Hellinger distance (L2 between square roots) or χ². Several variants are
  measured; ``best`` is the highest mAP among them. The world must keep it below 50%: colour
  alone must not solve it. With ``--masked``, also ``masked_oracle_mAP``: the same histograms
  over the person's pixels only (masks from the ground truth), i.e. colour with a perfect
  segmentation — a diagnostic of how distinct the clothes are, not a baseline.
"""
import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import emit  # noqa: E402
from reid_data.synthetic.dataset import SYNTHETIC  # noqa: E402
from reid_data.synthetic.writer import WorldConfig, write_world  # noqa: E402
from reid_eval.metrics import evaluate_rank  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "synthetic.jsonl"

VARIANTS = [  # (colour space, stripes, central half only, distance)
    ("rgb", 2, False, "hellinger"), ("rgb", 2, True, "hellinger"),
    ("hsv", 2, False, "hellinger"), ("hsv", 2, True, "hellinger"),
    ("hsv", 3, True, "hellinger"), ("hsv", 6, True, "hellinger"),
    ("rgb", 3, True, "chi2"), ("hsv", 3, True, "chi2"),
]


def histograms(paths, space, stripes, central, size=(128, 64)):
    """(N, stripes * bins) L1-normalised joint colour histograms per horizontal stripe."""
    feats = []
    for p in paths:
        img = Image.open(p).convert("RGB").resize((size[1], size[0]), Image.BILINEAR)
        if space == "hsv":
            a = np.asarray(img.convert("HSV"), dtype=np.int64)
            q = (a[..., 0] * 16 // 256) * 16 + (a[..., 1] * 4 // 256) * 4 + a[..., 2] * 4 // 256
            bins = 256
        else:
            a = np.asarray(img, dtype=np.int64) // 32
            q = a[..., 0] * 64 + a[..., 1] * 8 + a[..., 2]
            bins = 512
        if central:
            w = q.shape[1]
            q = q[:, w // 4: w - w // 4]
        rows = np.array_split(np.arange(q.shape[0]), stripes)
        h = [np.bincount(q[r].ravel(), minlength=bins).astype(np.float64) for r in rows]
        h = np.concatenate([x / max(x.sum(), 1) for x in h])
        feats.append(h)
    return torch.as_tensor(np.stack(feats), dtype=torch.float32)


def masked_histograms(folder, samples, stripes=2):
    """RGB 8×8×8 histograms of the person's pixels only (masks from the ground truth): what
    colour alone gives with a perfect segmentation (a diagnostic, not a baseline)."""
    from reid_data.synthetic.ground_truth import load_ground_truth
    gt = load_ground_truth(folder)
    names = [os.path.basename(s.path) for s in samples]
    feats = []
    for s in range(0, len(names), 64):
        _, masks = gt.render(names[s:s + 64])
        for sample, mask in zip(samples[s:s + 64], masks):
            a = np.asarray(Image.open(sample.path).convert("RGB"), dtype=np.int64) // 32
            q = a[..., 0] * 64 + a[..., 1] * 8 + a[..., 2]
            keep = mask[0].numpy() > 0.5
            h = []
            for rows in np.array_split(np.arange(q.shape[0]), stripes):
                x = np.bincount(q[rows][keep[rows]], minlength=512).astype(np.float64)
                h.append(x / max(x.sum(), 1))
            feats.append(np.concatenate(h))
    return torch.as_tensor(np.stack(feats), dtype=torch.float32)


def distances(q, g, kind):
    if kind == "hellinger":
        return torch.cdist(q.sqrt(), g.sqrt())
    out = torch.empty(len(q), len(g))
    for s in range(0, len(q), 64):       # χ²: sum (a - b)^2 / (a + b)
        a = q[s:s + 64, None, :]
        out[s:s + 64] = ((a - g[None]) ** 2 / (a + g[None] + 1e-10)).sum(-1)
    return out


def histogram_baseline(folder):
    data = SYNTHETIC(str(folder))
    results = []
    for space, stripes, central, dist in VARIANTS:
        q = histograms([s.path for s in data.query], space, stripes, central)
        g = histograms([s.path for s in data.gallery], space, stripes, central)
        r = evaluate_rank(distances(q, g, dist), [s.pid for s in data.query],
                          [s.pid for s in data.gallery], [s.camid for s in data.query],
                          [s.camid for s in data.gallery])
        results.append({"space": space, "stripes": stripes, "central": central,
                        "distance": dist, "mAP": round(100 * r["mAP"], 2),
                        "rank1": round(100 * float(r["cmc"][0]), 2)})
    return data, results


def main():
    d = WorldConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--world", type=Path, help="an existing world to measure (no writing)")
    parser.add_argument("--keep", type=Path, help="write the world here instead of a temp dir")
    parser.add_argument("--ids", type=int, default=d.ids)
    parser.add_argument("--cameras", type=int, default=d.cameras)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--height", type=int, default=d.height)
    parser.add_argument("--width", type=int, default=d.width)
    parser.add_argument("--masked", action="store_true",
                        help="also the diagnostic: histograms of the person's pixels only")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON lines file to append to")
    args = parser.parse_args()
    common = {"threads": torch.get_num_threads(), "cpus": os.cpu_count(),
              "machine": platform.processor() or platform.machine(), "torch": torch.__version__}

    with tempfile.TemporaryDirectory(prefix="synthetic-bench-") as tmp:
        folder = args.world
        if folder is None:
            folder = args.keep or Path(tmp) / "world"
            cfg = WorldConfig(ids=args.ids, cameras=args.cameras, seed=args.seed,
                              height=args.height, width=args.width)
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            summary = write_world(folder, cfg, progress=False)
            wall = time.perf_counter() - t0
            emit({"bench": "synthetic_generation", "ids": cfg.ids, "cameras": cfg.cameras,
                  "height": cfg.height, "width": cfg.width, "seed": cfg.seed,
                  "images": summary["images"], "seconds": round(wall, 2),
                  "images_per_s": round(summary["images"] / wall, 1),
                  **{k: summary[k] for k in ("train", "query", "gallery", "distractors",
                                             "junk")},
                  "load_1min": round(load, 2), **common}, args.out)
        data, results = histogram_baseline(folder)
        best = max(results, key=lambda r: r["mAP"])
        extra = {}
        if args.masked:
            q = masked_histograms(folder, data.query)
            g = masked_histograms(folder, data.gallery)
            r = evaluate_rank(distances(q, g, "hellinger"), [s.pid for s in data.query],
                              [s.pid for s in data.gallery], [s.camid for s in data.query],
                              [s.camid for s in data.gallery])
            extra = {"masked_oracle_mAP": round(100 * r["mAP"], 2),
                     "masked_oracle_rank1": round(100 * float(r["cmc"][0]), 2)}
        emit({"bench": "synthetic_histogram", "world": str(args.world or "default"),
              "query": len(data.query), "gallery": len(data.gallery),
              "best_mAP": best["mAP"], "best_rank1": best["rank1"],
              "best": {k: best[k] for k in ("space", "stripes", "central", "distance")},
              **extra, "variants": results, **common}, args.out)


if __name__ == "__main__":
    main()
