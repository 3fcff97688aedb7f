"""re_ranking against a slow dense reference written from the paper's description."""
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from reid_eval import rerank
from reid_eval.rerank import re_ranking


# ---------------------------------------------------------------- dense reference (slow, plain)

def _reciprocal_set(rank, i, size):
    """Members j of i's first `size` neighbours that have i among their own first `size`."""
    return [j for j in rank[i, :size] if i in rank[j, :size]]


def _reference_weights(dist, rank, k1):
    n = len(dist)
    half = int(np.around(k1 / 2.0)) + 1
    weights = np.zeros((n, n))
    for i in range(n):
        base = _reciprocal_set(rank, i, k1 + 1)
        members = set(base)
        for candidate in base:
            sub = _reciprocal_set(rank, candidate, half)
            if len(set(sub) & set(base)) > 2.0 / 3.0 * len(sub):
                members |= set(sub)
        members = sorted(members)
        w = np.exp(-dist[i, members])
        weights[i, members] = w / w.sum()
    return weights


def dense_re_ranking(q, g, k1, k2, lam):
    """(Q, G) float64 re-ranked distances, and the most members any image's encoding has."""
    x = np.concatenate([q, g]).astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    dist = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    dist /= dist.max(axis=1, keepdims=True)
    rank = np.argsort(dist, axis=1, kind="stable")
    weights = _reference_weights(dist, rank, k1)
    if k2 > 1:
        weights = np.stack([weights[rank[i, :k2]].mean(axis=0) for i in range(len(x))])
    n_query = len(q)
    final = np.empty((n_query, len(g)))
    for i in range(n_query):
        for j in range(len(g)):
            m = np.minimum(weights[i], weights[n_query + j]).sum()
            jaccard = 1.0 - m / (2.0 - m)
            final[i, j] = jaccard * (1 - lam) + dist[i, n_query + j] * lam
    return final, np.count_nonzero(weights, axis=1).max()


def clustered(n, dim, n_ids, noise, seed):
    """Features around identity centres, noisy enough that neighbourhoods overlap."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_ids, dim))
    labels = rng.integers(0, n_ids, size=n)
    scale = rng.uniform(0.5, 1.5, size=(n, 1)) * noise  # some images far noisier than others
    return (centres[labels] + scale * rng.normal(size=(n, dim))).astype(np.float32)


# ---------------------------------------------------------------- float32 error bounds

EPS32 = float(np.finfo(np.float32).eps)


def distance_tolerance(dim):
    """Bound on the float32 error of a squared distance 2 - 2 x·y of unit vectors: a dim-term dot
    product of terms summing to <= 1 in magnitude (<= dim/2 eps), doubled, and the last rounding."""
    return 2 * EPS32 * (dim + 2)


def jaccard_tolerance(dim, terms, k2):
    """Bound on the float32 error of a Jaccard (or re-ranked) distance. Each weight exp(-d)/sum
    inherits the distance's absolute error as a relative one, plus the roundings of its `terms`-term
    normalising sum and of the k2-term query-expansion mean; the overlap M sums <= `terms` such
    minima (<= 1 in all) and 1 - M / (2 - M) has slope <= 2 in M. The lambda part, d / max d, is
    no worse."""
    return 2 * (distance_tolerance(dim) + 2 * EPS32 * (terms + k2 + 2))


def assert_ranks_separated(x, k1, k2):
    """The data's neighbour sets are robust to float32: wherever a set of the first k1+1, half or
    k2 neighbours ends, the next neighbour is farther by more than two float32 distance errors, so
    no summation order (BLAS kernel, faiss) can change a set, and the tests' comparisons with the
    float64 reference hold on any CPU."""
    x = x.astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    dist = np.sort(((x[:, None] - x[None]) ** 2).sum(-1), axis=1)
    for m in {k1 + 1, int(np.around(k1 / 2.0)) + 1, k2}:
        if m < len(x):
            assert (dist[:, m] - dist[:, m - 1]).min() > 2 * distance_tolerance(x.shape[1])


# ---------------------------------------------------------------- tests

CASES = [  # (n_query, n_gallery, dim, n_ids, noise, k1, k2, lam)
    (20, 100, 16, 12, 0.7, 20, 6, 0.3),
    (15, 80, 8, 10, 0.8, 5, 1, 0.3),
    (30, 120, 12, 15, 0.6, 25, 3, 0.0),
    (25, 90, 10, 8, 0.9, 7, 6, 1.0),
    (10, 60, 6, 6, 1.0, 4, 2, 0.5),
    (40, 50, 16, 10, 0.7, 11, 30, 0.3),   # k2 > k1 + 1
    (3, 8, 4, 2, 1.0, 20, 6, 0.3),        # fewer images than k1 + 1
]


@pytest.fixture(params=["one_chunk", "many_chunks"])
def chunking(request, monkeypatch):
    """Tiny blocks and chunks so every streamed loop runs many times, across the query/gallery
    boundary too; the default sizes cover these small cases in one pass."""
    if request.param == "many_chunks":
        for name, size in [("_BLOCK", 16), ("_ROW_CHUNK", 7), ("_GATHER_CHUNK", 50),
                           ("_QUERY_CHUNK", 6), ("_PAIR_CHUNK", 300)]:
            monkeypatch.setattr(rerank, name, size)


@pytest.mark.parametrize("n_query,n_gallery,dim,n_ids,noise,k1,k2,lam", CASES)
def test_matches_dense_reference(chunking, n_query, n_gallery, dim, n_ids, noise, k1, k2, lam):
    x = clustered(n_query + n_gallery, dim, n_ids, noise, seed=n_query * 1000 + k1)
    q, g = x[:n_query], x[n_query:]
    assert_ranks_separated(x, k1, k2)
    got = re_ranking(q, g, k1=k1, k2=k2, lambda_value=lam)
    want, terms = dense_re_ranking(q, g, k1, k2, lam)
    assert got.dtype == np.float32 and got.shape == (n_query, n_gallery)
    np.testing.assert_allclose(got, want, rtol=0, atol=jaccard_tolerance(dim, terms, k2))


def test_nearest_neighbours_match_a_full_sort(monkeypatch):
    """The streamed upper-triangle search equals sorting full rows (blocks of 16 of 150)."""
    monkeypatch.setattr(rerank, "_BLOCK", 16)
    x = torch.nn.functional.normalize(torch.from_numpy(clustered(150, 8, 10, 0.8, seed=4)), dim=1)
    dist = torch.cdist(x.double(), x.double()) ** 2
    found = rerank.nearest_neighbours(x, 12)
    # the exact index comparison needs the first 12 distances of each row to be farther apart
    # than float32 can blur
    assert dist.sort(dim=1).values[:, :13].diff(dim=1).min() > 2 * distance_tolerance(8)
    np.testing.assert_array_equal(found.index, dist.argsort(dim=1)[:, :12])
    np.testing.assert_allclose(found.dist, dist.sort(dim=1).values[:, :12], rtol=0, atol=distance_tolerance(8))
    np.testing.assert_allclose(found.max_dist, dist.max(dim=1).values, rtol=0, atol=distance_tolerance(8))


@pytest.mark.parametrize("case", [c for c in CASES if c[5] >= 6 and c[0] + c[1] > 2 * c[5]])
def test_reference_data_exercises_expansion(case):
    """Reciprocal sets are partial and expansions add members (impossible below k1 = 6)."""
    n_query, n_gallery, dim, n_ids, noise, k1 = case[:6]
    x = clustered(n_query + n_gallery, dim, n_ids, noise, seed=n_query * 1000 + k1)
    x = x.astype(np.float64) / np.linalg.norm(x, axis=1, keepdims=True)
    dist = ((x[:, None] - x[None]) ** 2).sum(-1)
    rank = np.argsort(dist, axis=1, kind="stable")
    sizes = np.array([len(_reciprocal_set(rank, i, k1 + 1)) for i in range(len(x))])
    expanded = np.count_nonzero(_reference_weights(dist, rank, k1), axis=1)
    assert (sizes < k1 + 1).mean() > 0.5
    assert (expanded > sizes).mean() > 0.3


def test_accepts_torch_and_numpy_alike():
    x = clustered(60, 8, 6, 0.8, seed=1)
    from_numpy = re_ranking(x[:10], x[10:], k1=6, k2=3)
    from_torch = re_ranking(torch.from_numpy(x[:10]).double(), torch.from_numpy(x[10:]), k1=6, k2=3)
    # float32 -> float64 -> float32 is exact: the same float32 computation on the same values
    np.testing.assert_array_equal(from_numpy, from_torch)


def test_scale_invariant():
    x = clustered(60, 8, 6, 0.8, seed=2)
    assert_ranks_separated(x, 20, 6)
    # the scaled features round differently in float32: two float32 results, each within the
    # bound of the exact one (at most all 60 images in an encoding)
    np.testing.assert_allclose(re_ranking(x[:10], x[10:]), re_ranking(3 * x[:10], x[10:] / 7),
                               rtol=0, atol=2 * jaccard_tolerance(8, 60, 6))


@pytest.mark.parametrize("q_shape,g_shape", [((5,), (7, 4)), ((5, 4), (7, 3)), ((0, 4), (7, 4)),
                                             ((5, 4), (7, 4, 1))])
def test_rejects_bad_shapes(q_shape, g_shape):
    with pytest.raises(ValueError):
        re_ranking(np.ones(q_shape, np.float32), np.ones(g_shape, np.float32))


def test_rejects_bad_k():
    x = clustered(20, 4, 3, 1.0, seed=3)
    with pytest.raises(ValueError):
        re_ranking(x[:5], x[5:], k1=0)
    with pytest.raises(ValueError):
        re_ranking(x[:5], x[5:], k2=0)


def test_memory_stays_below_dense():
    """12,000 images: one dense N x N float32 matrix alone would take 576 MB."""
    script = textwrap.dedent("""
        import resource, numpy as np
        from reid_eval.rerank import re_ranking
        rng = np.random.default_rng(0)
        x = rng.normal(size=(12000, 4)).astype(np.float32)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out = re_ranking(x[:200], x[200:], k1=20, k2=6)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert out.shape == (200, 11800) and np.isfinite(out).all()
        print((after - before) // 1024)  # KiB on Linux
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True, cwd=Path(__file__).resolve().parents[1])
    assert int(result.stdout.strip()) < 300  # MB; about 100 measured
