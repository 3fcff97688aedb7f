"""Time and memory of reid_eval.metrics.evaluate_rank against torchreid's Cython evaluate_cy,
on Market-1501-sized problems.

    python bench/bench_evaluate_rank.py

Prints one JSON line per figure and writes them to bench/results/evaluate_rank.jsonl.
Three distance matrices of Market's size and structure (3,368 queries x 15,913 gallery, float32;
750 identities plus 2,793 pid-0 distractors, 6 cameras, ~14 true matches per query) from one
generator: cosine distances of embeddings = separation x identity centre + camera bias + noise,
with separation 0 (``untrained``: identity carries nothing, matches spread over the whole
gallery), 0.85 (``half_trained``) and 1 (``trained``), and ``trained_hard_positive``: the trained
distances with one true match of every query moved to its row's largest distance.

torchreid's Cython build: its PyPI source lacks rank_cy.pyx; build it from the GitHub repository
(KaiyangZhou/deep-person-reid, torchreid/metrics/rank_cylib: `pip install cython`, then
`python setup.py build_ext --inplace` there, with empty torchreid/__init__.py and
torchreid/metrics/__init__.py) and put the folder holding torchreid/ on PYTHONPATH.

Per distribution: evaluate_rank's best time and the peak memory it adds (in a fresh process);
torchreid's ``evaluate_cy`` time on the same inputs and the speed-up, when torchreid with its
Cython build is importable (otherwise a line says so and only ``full_argsort`` -- numpy's
argsort of every row, the first step of torchreid's evaluation -- gives a yardstick); the
largest difference from torchreid's mAP and CMC (it has no mINP, accumulates in float32 and
orders tied distances by an unstable argsort); and the largest difference of all three metrics
from a float64 reference built on a stable argsort, over the first REFERENCE_QUERIES queries.
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

try:
    from torchreid.metrics.rank_cylib.rank_cy import evaluate_cy
except ImportError:
    evaluate_cy = None

NUM_QUERY, NUM_GALLERY, NUM_IDS, NUM_CAMS = 3368, 15913, 750, 6
NUM_DISTRACTORS = 2793  # pid 0 gallery images, as in Market-1501
SEPARATION = {"untrained": 0.0, "half_trained": 0.85, "trained": 1.0, "trained_hard_positive": 1.0}
REFERENCE_QUERIES = 300
RESULTS = Path(__file__).resolve().parent / "results" / "evaluate_rank.jsonl"


def make_problem(kind, seed=0):
    """(distmat float32, q_pids, g_pids, q_camids, g_camids) of Market's size and structure;
    the same identities and cameras for every kind, only the distances differ."""
    rng = np.random.default_rng(seed)
    q_pids = rng.integers(1, NUM_IDS + 1, NUM_QUERY)
    g_pids = np.concatenate([rng.integers(1, NUM_IDS + 1, NUM_GALLERY - NUM_DISTRACTORS),
                             np.zeros(NUM_DISTRACTORS, dtype=np.int64)])
    q_cams = rng.integers(0, NUM_CAMS, NUM_QUERY)
    g_cams = rng.integers(0, NUM_CAMS, NUM_GALLERY)
    distmat = _feature_distances(rng, SEPARATION[kind], q_pids, g_pids, q_cams, g_cams)
    if kind == "trained_hard_positive":
        _one_hard_positive_per_row(distmat, q_pids, g_pids, q_cams, g_cams, rng)
    return distmat, q_pids, g_pids, q_cams, g_cams


def _one_hard_positive_per_row(distmat, q_pids, g_pids, q_cams, g_cams, rng):
    """One valid true match of each query (another camera) moved to the row's largest distance: the case
    that defeats pruning by the farthest true match (the row must be ranked in full)."""
    for q in range(len(distmat)):
        valid = np.flatnonzero((g_pids == q_pids[q]) & (g_cams != q_cams[q]))
        if len(valid):
            distmat[q, rng.choice(valid)] = distmat[q].max()


def _feature_distances(rng, separation, q_pids, g_pids, q_cams, g_cams, dim=256):
    """Cosine distances of embeddings = separation x identity centre + camera bias + noise."""
    centres = rng.standard_normal((NUM_IDS + 1 + NUM_DISTRACTORS, dim), dtype=np.float32)
    cam_bias = 0.6 * rng.standard_normal((NUM_CAMS, dim), dtype=np.float32)
    # distractors are all different people: give each its own centre
    g_identity = np.where(g_pids == 0, NUM_IDS + 1 + np.cumsum(g_pids == 0) - 1, g_pids)

    def embed(identity, cams):
        noise = 1.3 * rng.standard_normal((len(identity), dim), dtype=np.float32)
        feats = torch.from_numpy(separation * centres[identity] + cam_bias[cams] + noise)
        return torch.nn.functional.normalize(feats, dim=1)

    return (1 - embed(q_pids, q_cams) @ embed(g_identity, g_cams).T).numpy()


def reference_metrics(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=50):
    """cmc, mAP, mINP in float64 from a stable argsort of each row (ties by gallery index)."""
    order = np.argsort(distmat, axis=1, kind="stable")
    pids, cams = g_pids[order], g_cams[order]
    kept = ~((pids == q_pids[:, None]) & (cams == q_cams[:, None]))
    curves, aps, inps = [], [], []
    for hit_row, kept_row in zip(pids == q_pids[:, None], kept):
        hits = np.flatnonzero(hit_row[kept_row])  # 0-based ranks of the true matches
        if len(hits):
            aps.append(np.mean(np.arange(1, len(hits) + 1) / (hits + 1)))
            inps.append(len(hits) / (hits[-1] + 1))
            curves.append(np.arange(max_rank) >= hits[0])
    return np.mean(curves, axis=0), np.mean(aps), np.mean(inps)


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

    def emit(line):
        lines.append(line)
        print(json.dumps(line), flush=True)

    if evaluate_cy is None:
        emit({"bench": "torchreid_evaluate_cy", "available": False,
              "note": "torchreid's Cython build is not importable (pip install torchreid, then "
                      "build torchreid/metrics/rank_cylib): no speed-up figures"})
    for kind in SEPARATION:
        problem = make_problem(kind)
        result = evaluate_rank(*problem)
        seconds = best_time(lambda: evaluate_rank(*problem))
        sample = [a[:REFERENCE_QUERIES] for a in (problem[0], problem[1], problem[3])]
        sampled = evaluate_rank(sample[0], sample[1], problem[2], sample[2], problem[4])
        cmc, mean_ap, mean_inp = reference_metrics(sample[0], sample[1], problem[2], sample[2],
                                                   problem[4])
        line = {"bench": "evaluate_rank", "distances": kind, "queries": NUM_QUERY,
                "gallery": NUM_GALLERY, "threads": torch.get_num_threads(),
                "seconds": round(seconds, 4), "peak_extra_mb": round(peak_extra_mb(problem), 1),
                "distmat_mb": round(problem[0].nbytes / 2**20, 1),
                "mAP": round(result["mAP"], 4), "rank1": round(float(result["cmc"][0]), 4),
                "mINP": round(result["mINP"], 4),
                "reference_max_diff": float(max(np.abs(sampled["cmc"] - cmc).max(),
                                                abs(sampled["mAP"] - mean_ap),
                                                abs(sampled["mINP"] - mean_inp)))}
        if evaluate_cy is not None:
            cy_cmc, cy_map = evaluate_cy(*problem, 50)
            cy_seconds = best_time(lambda: evaluate_cy(*problem, 50), repeats=2)
            line.update({"torchreid_cy_seconds": round(cy_seconds, 4),
                         "speedup": round(cy_seconds / seconds, 2),
                         "torchreid_max_diff": float(max(np.abs(result["cmc"] - cy_cmc).max(),
                                                         abs(result["mAP"] - cy_map)))})
        line["identical"] = line["reference_max_diff"] <= 1e-6 and line.get(
            "torchreid_max_diff", 0.0) <= 1e-6
        emit(line)
        if kind == "untrained":
            emit({"bench": "full_argsort", "distances": kind, "queries": NUM_QUERY,
                  "gallery": NUM_GALLERY, "seconds": round(
                      best_time(lambda: np.argsort(problem[0], axis=1)), 4)})
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("".join(json.dumps(line) + "\n" for line in lines))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--peak-in"]:
        _child_peak(sys.argv[2])
    else:
        main()
