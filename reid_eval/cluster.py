"""Pseudo labels: DBSCAN on a sparse precomputed distance matrix (`rerank.jaccard_distance`).

In the sparse matrix an absent pair is at distance 1 and a stored zero is a real zero, so
radius neighbourhoods for any eps below 1 are exact. DBSCAN is handed only the pairs within
eps: the same clusters, without its copy of the whole matrix (most stored pairs of a Jaccard
matrix lie just below 1).
"""
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import DBSCAN


@dataclass(frozen=True)
class Clusters:
    """DBSCAN's result as training labels."""
    labels: np.ndarray   # (N,) int64; -1 marks an outlier when outliers are dropped
    counts: np.ndarray   # (L,) int64 images per label 0..L-1
    num_clusters: int    # DBSCAN's clusters: labels 0..num_clusters-1; any above are singletons
    num_outliers: int    # images DBSCAN left out (dropped or made singletons)
    eps: float           # the radius used


def dbscan(dist, eps=None, rho=None, min_samples=4, outliers="drop"):
    """Cluster images from their sparse pairwise distances.

    Args:
        dist: (N, N) scipy.sparse matrix of distances in [0, 1], absent pairs at 1 (as
            `jaccard_distance` returns).
        eps: DBSCAN radius in (0, 1); or
        rho: quantile from which the radius is derived (see `eps_from_rho`); give exactly one.
        min_samples: neighbours (the image itself included) that make an image a core point.
        outliers: "drop" leaves them at label -1 (Cluster Contrast, HHCL); "singletons" gives
            each its own fresh label after the clusters (SpCL, GCL keep un-clustered instances).
    """
    _check_distances(dist)
    if (eps is None) == (rho is None):
        raise ValueError("give exactly one of eps (a fixed radius) and rho (a quantile).")
    if outliers not in ("drop", "singletons"):
        raise ValueError(f"outliers must be 'drop' or 'singletons', got {outliers!r}.")
    if eps is None:
        eps = eps_from_rho(dist, rho)
    if not 0.0 < eps < 1.0:
        raise ValueError(f"eps must lie in (0, 1) (pairs absent from the sparse matrix are at "
                         f"distance 1), got {eps}.")
    labels = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit_predict(
        _within(dist.tocsr(), eps)).astype(np.int64)
    num_clusters = int(labels.max()) + 1
    outlier = labels < 0
    if outliers == "singletons":
        labels[outlier] = num_clusters + np.arange(int(outlier.sum()))
    counts = np.bincount(labels[labels >= 0], minlength=num_clusters)
    return Clusters(labels, counts, num_clusters, int(outlier.sum()), float(eps))


def eps_from_rho(dist, rho):
    """DBSCAN radius from the rho quantile of the pairwise distances, as SpCL and GCL set it.

    Over the strictly upper triangle (i < j) of the matrix, the non-zero distances (absent
    pairs count, at 1; stored zeros do not) are sorted, and eps is the mean of the smallest
    round(rho * count) of them -- what those methods compute on the dense matrix.
    """
    _check_distances(dist)
    if not 0.0 < rho < 1.0:
        raise ValueError(f"rho must lie in (0, 1), got {rho}.")
    n = dist.shape[0]
    upper = sp.triu(dist, k=1).tocoo().data
    positive = np.sort(upper[upper > 0])
    count = n * (n - 1) // 2 - int((upper == 0).sum())
    take = int(np.round(rho * count))
    if take == 0:
        raise ValueError(f"rho={rho} selects no pair among {count}; raise rho.")
    smallest = positive[:take]
    return float((smallest.sum(dtype=np.float64) + (take - len(smallest))) / take)


def _within(dist, eps):
    """The CSR matrix of the stored pairs at distance <= eps (DBSCAN's neighbour test)."""
    keep = dist.data <= eps
    indptr = np.concatenate([[0], np.cumsum(keep, dtype=dist.indptr.dtype)])[dist.indptr]
    return sp.csr_matrix((dist.data[keep], dist.indices[keep], indptr), shape=dist.shape)


def _check_distances(dist):
    if not sp.issparse(dist) or dist.ndim != 2 or dist.shape[0] != dist.shape[1]:
        raise ValueError("dist must be a square scipy.sparse matrix of distances (absent pairs "
                         "at 1), as reid_eval.rerank.jaccard_distance returns.")
