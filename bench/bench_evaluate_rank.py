"""Time and memory of reid_eval.metrics.evaluate_rank on a Market-1501-sized problem.

    python bench/bench_evaluate_rank.py

Prints one JSON line per figure and writes them to bench/results/evaluate_rank.jsonl.
Two distance matrices of Market's size (3,368 queries x 15,913 gallery, float32):
``features`` -- distances between synthetic embeddings of a fairly good model (751 pids with
the pid-0 distractors, 6 cameras, ~14 true matches per query); ``random`` -- uniform random
distances, the worst case for the algorithm (an untrained model: every query's farthest match
lies deep in the gallery). ``full_argsort`` times numpy's argsort of every row, the first step
of torchreid's evaluation, which evaluate_rank avoids.
Peak memory is measured in a fresh process that only loads the matrix and evaluates it.
"""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reid_eval.metrics import evaluate_rank  # noqa: E402

NUM_QUERY, NUM_GALLERY, NUM_IDS, NUM_CAMS = 3368, 15913, 750, 6
NUM_DISTRACTORS = 2793  # pid 0 gallery images, as in Market-1501
RESULTS = Path(__file__).resolve().parent / "results" / "evaluate_rank.jsonl"


def make_problem(kind, seed=0):
    """(distmat float32, q_pids, g_pids, q_camids, g_camids) of Market's size."""
    rng = np.random.default_rng(seed)
    q_pids = rng.integers(1, NUM_IDS + 1, NUM_QUERY)
    g_pids = np.concatenate([rng.integers(1, NUM_IDS + 1, NUM_GALLERY - NUM_DISTRACTORS),
                             np.zeros(NUM_DISTRACTORS, dtype=np.int64)])
    q_cams = rng.integers(0, NUM_CAMS, NUM_QUERY)
    g_cams = rng.integers(0, NUM_CAMS, NUM_GALLERY)
    if kind == "random":
        distmat = rng.random((NUM_QUERY, NUM_GALLERY), dtype=np.float32)
    else:
        distmat = _feature_distances(rng, q_pids, g_pids, q_cams, g_cams)
    return distmat, q_pids, g_pids, q_cams, g_cams


def _feature_distances(rng, q_pids, g_pids, q_cams, g_cams, dim=256):
    """Cosine distances of embeddings = identity centre + camera bias + noise."""
    centres = rng.standard_normal((NUM_IDS + 1 + NUM_DISTRACTORS, dim), dtype=np.float32)
    cam_bias = 0.6 * rng.standard_normal((NUM_CAMS, dim), dtype=np.float32)
    # distractors are all different people: give each its own centre
    g_identity = np.where(g_pids == 0, NUM_IDS + 1 + np.cumsum(g_pids == 0) - 1, g_pids)

    def embed(identity, cams):
        noise = 1.3 * rng.standard_normal((len(identity), dim), dtype=np.float32)
        feats = torch.from_numpy(centres[identity] + cam_bias[cams] + noise)
        return torch.nn.functional.normalize(feats, dim=1)

    return (1 - embed(q_pids, q_cams) @ embed(g_identity, g_cams).T).numpy()


def best_time(fn, repeats=3):
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def peak_extra_mb(problem):
    """Peak memory evaluate_rank adds on top of the loaded problem, in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "distmat.npy", problem[0])
        np.savez(Path(tmp) / "ids.npz", *problem[1:])
        out = subprocess.run([sys.executable, __file__, "--peak-in", tmp],
                             check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def _child_peak(folder):
    """Runs in the fresh process: its peak resident memory before and after one evaluation.

    Reads VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec.
    The .npy load reads straight into the array, so loading leaves no higher peak behind.
    """
    with np.load(Path(folder) / "ids.npz") as arrays:
        ids = [arrays[f"arr_{i}"] for i in range(4)]
    distmat = np.load(Path(folder) / "distmat.npy")
    before = _peak_rss_kib()
    evaluate_rank(distmat, *ids)
    print((_peak_rss_kib() - before) / 1024)


def _peak_rss_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


def main():
    lines = []
    for kind in ("features", "random"):
        problem = make_problem(kind)
        result = evaluate_rank(*problem)
        lines.append({"bench": "evaluate_rank", "distances": kind, "queries": NUM_QUERY,
                      "gallery": NUM_GALLERY, "threads": torch.get_num_threads(),
                      "seconds": round(best_time(lambda: evaluate_rank(*problem)), 4),
                      "peak_extra_mb": round(peak_extra_mb(problem), 1),
                      "distmat_mb": round(problem[0].nbytes / 2**20, 1),
                      "mAP": round(result["mAP"], 4), "rank1": round(float(result["cmc"][0]), 4),
                      "mINP": round(result["mINP"], 4)})
        print(json.dumps(lines[-1]), flush=True)
        if kind == "features":
            lines.append({"bench": "full_argsort", "distances": kind, "queries": NUM_QUERY,
                          "gallery": NUM_GALLERY, "seconds": round(
                              best_time(lambda: np.argsort(problem[0], axis=1)), 4)})
            print(json.dumps(lines[-1]), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("".join(json.dumps(line) + "\n" for line in lines))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--peak-in"]:
        _child_peak(sys.argv[2])
    else:
        main()
