"""Time and peak memory of the k-reciprocal Jaccard distance and of clustering it (DBSCAN).

    python bench/bench_jaccard.py [--n 32621 --n-ids 1041 --dim 2048] [--no-faiss]

Defaults are MSMT17's training set (32,621 images, 1,041 identities); Market-1501's is
--n 12936 --n-ids 751. Prints one JSON line and appends it to bench/results/jaccard.jsonl.
Run it as its own process: peak memory is the process's high-water mark (ru_maxrss).
"""
import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.bench_rerank import max_rss_mb, reid_like_features  # noqa: E402
from bench.common import emit  # noqa: E402
from reid_eval import rerank  # noqa: E402
from reid_eval.cluster import dbscan  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "jaccard.jsonl"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=32621)
    parser.add_argument("--n-ids", type=int, default=1041)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--k1", type=int, default=30)
    parser.add_argument("--k2", type=int, default=6)
    parser.add_argument("--eps", type=float, default=0.6)
    parser.add_argument("--no-faiss", action="store_true", help="use the torch neighbour search")
    args = parser.parse_args()
    if args.no_faiss:
        rerank.faiss = None

    features = reid_like_features(args.n, args.dim, args.n_ids)
    baseline = max_rss_mb()
    load = os.getloadavg()[0]  # the machine is shared: other work slows the run
    start = time.perf_counter()
    dist = rerank.jaccard_distance(features, k1=args.k1, k2=args.k2)
    jaccard_seconds = time.perf_counter() - start
    jaccard_rss = max_rss_mb()
    start = time.perf_counter()
    clusters = dbscan(dist, eps=args.eps, min_samples=4)
    dbscan_seconds = time.perf_counter() - start
    record = {
        "bench": "jaccard", "n": args.n, "n_ids": args.n_ids, "dim": args.dim, "k1": args.k1,
        "k2": args.k2, "knn": "torch" if rerank.faiss is None else "faiss",
        "jaccard_seconds": round(jaccard_seconds, 2), "jaccard_peak_rss_mb": round(jaccard_rss),
        "dbscan_seconds": round(dbscan_seconds, 2), "peak_rss_mb": round(max_rss_mb()),
        "baseline_rss_mb": round(baseline), "pairs_per_row": round(dist.nnz / args.n, 1),
        "matrix_mb": round((dist.data.nbytes + dist.indices.nbytes + dist.indptr.nbytes) / 2**20),
        "eps": args.eps, "clusters": clusters.num_clusters, "outliers": clusters.num_outliers,
        "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "load_1min": round(load, 2),
        "machine": platform.processor() or platform.machine(),
    }
    emit(record, RESULTS)


if __name__ == "__main__":
    main()
