"""jaccard_distance against a slow dense reference (Cluster Contrast's computation, written out)."""
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.cluster import DBSCAN

from reid_eval import rerank
from reid_eval.rerank import jaccard_distance
from test_rerank import (_reference_weights, assert_ranks_separated, chunking,  # noqa: F401 (chunking: fixture)
                         clustered, jaccard_tolerance)


def dense_jaccard(x, k1, k2):
    """Dense (N, N) float64 Jaccard distances: k-reciprocal weights with the Gaussian kernel
    exp(-d) of the squared distance, query expansion over k2 neighbours, 1 - M / (2 - M); and the
    most members any image's encoding has."""
    x = x.astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    dist = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    rank = np.argsort(dist, axis=1, kind="stable")
    weights = _reference_weights(dist, rank, k1)
    weights = np.stack([weights[rank[i, :k2]].mean(axis=0) for i in range(len(x))])
    n = len(x)
    out = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            m = np.minimum(weights[i], weights[j]).sum()
            out[i, j] = max(1.0 - m / (2.0 - m), 0.0)
    return out, np.count_nonzero(weights, axis=1).max()


def as_dense(dist):
    """The sparse result with absent pairs at distance 1."""
    out = np.ones(dist.shape)
    coo = dist.tocoo()
    out[coo.row, coo.col] = coo.data
    return out


@pytest.fixture(params=["faiss", "torch"])
def knn(request, monkeypatch):
    """Both nearest-neighbour searches: faiss when importable, torch top-k without it."""
    if request.param == "faiss" and rerank.faiss is None:
        pytest.skip("faiss is not installed")
    if request.param == "torch":
        monkeypatch.setattr(rerank, "faiss", None)


CASES = [  # (n, dim, n_ids, noise, k1, k2)
    (120, 16, 12, 0.7, 20, 6),     # clustered
    (100, 8, 10, 0.9, 7, 3),
    (90, 12, 1, 1.0, 30, 6),       # one blob: random features, no cluster structure
    (80, 6, 8, 0.8, 5, 1),         # no query expansion
    (60, 10, 6, 0.7, 11, 30),      # k2 > k1 + 1
    (9, 4, 2, 1.0, 30, 6),         # fewer images than k1 + 1
]


@pytest.mark.parametrize("n,dim,n_ids,noise,k1,k2", CASES)
def test_matches_dense_reference(knn, chunking, n, dim, n_ids, noise, k1, k2):
    x = clustered(n, dim, n_ids, noise, seed=n + k1)
    assert_ranks_separated(x, k1, k2)
    got = jaccard_distance(x, k1=k1, k2=k2)
    want, terms = dense_jaccard(x, k1, k2)
    tol = jaccard_tolerance(dim, terms, k2)
    assert isinstance(got, sp.csr_matrix) and got.shape == (n, n) and got.dtype == np.float32
    np.testing.assert_allclose(as_dense(got), want, rtol=0, atol=tol)
    assert (got.data < 1).all()
    stored = np.zeros((n, n), bool)
    coo = got.tocoo()
    stored[coo.row, coo.col] = True
    assert stored[want < 1 - tol].all()  # every pair below 1 is stored


def test_diagonal_stored_and_rows_nearest_first():
    x = clustered(70, 8, 7, 0.8, seed=5)
    dist = jaccard_distance(x, k1=10, k2=3)
    for i in range(dist.shape[0]):
        cols = dist.indices[dist.indptr[i]:dist.indptr[i + 1]]
        vals = dist.data[dist.indptr[i]:dist.indptr[i + 1]]
        assert i in cols and vals[list(cols).index(i)] == 0.0
        assert (np.diff(vals) >= 0).all()


def test_dbscan_on_sparse_equals_dbscan_on_dense(knn):
    x = clustered(150, 16, 10, 0.7, seed=7)
    assert_ranks_separated(x, 20, 6)
    sparse = jaccard_distance(x, k1=20, k2=6)
    dense, terms = dense_jaccard(x, 20, 6)
    for eps in (0.7, 0.5, 0.3):
        # no float64 distance within float32's error of eps, so both sides see the same neighbourhoods
        assert np.abs(dense - eps).min() > jaccard_tolerance(16, terms, 6)
        a = DBSCAN(eps=eps, min_samples=4, metric="precomputed").fit_predict(sparse)
        b = DBSCAN(eps=eps, min_samples=4, metric="precomputed").fit_predict(dense)
        np.testing.assert_array_equal(a, b)
    assert len(set(a) - {-1}) > 5 and (a == -1).sum() > 5  # real clusters and outliers


def test_faiss_puts_each_image_first():
    """Exact duplicates tie with the image itself; each row still starts with itself."""
    if rerank.faiss is None:
        pytest.skip("faiss is not installed")
    x = torch.nn.functional.normalize(torch.from_numpy(clustered(40, 8, 4, 0.8, seed=2)), dim=1)
    x = torch.cat([x, x[:10]])
    found = rerank._faiss_neighbours(x, 6)
    np.testing.assert_array_equal(found.index[:, 0], np.arange(50))
    assert found.dist[:, 0].eq(0).all()
    assert all(len(set(row.tolist())) == 6 for row in found.index)


def test_input_untouched_and_scale_invariant():
    x = clustered(50, 8, 5, 0.8, seed=3)
    before = x.copy()
    a = jaccard_distance(x, k1=8, k2=3)
    np.testing.assert_array_equal(x, before)
    b = jaccard_distance(torch.from_numpy(5 * x).double(), k1=8, k2=3)
    # 5x rounds differently in float32: two float32 results, each within the bound of the exact one
    # (at most all 50 images in an encoding)
    assert_ranks_separated(x, 8, 3)
    np.testing.assert_allclose(a.toarray(), b.toarray(), rtol=0, atol=2 * jaccard_tolerance(8, 50, 3))


@pytest.mark.parametrize("shape,k1,k2", [((5,), 3, 2), ((0, 4), 3, 2), ((5, 4), 0, 2),
                                         ((5, 4), 3, 0)])
def test_rejects_bad_input(shape, k1, k2):
    with pytest.raises(ValueError):
        jaccard_distance(np.ones(shape, np.float32), k1=k1, k2=k2)
