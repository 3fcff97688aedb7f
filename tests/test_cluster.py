"""DBSCAN pseudo labels on sparse distances with known clusters."""
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.cluster import DBSCAN

from reid_eval.cluster import dbscan, eps_from_rho
from reid_eval.rerank import jaccard_distance
from test_rerank import clustered


def group_distances(groups, within, n, between=()):
    """Sparse (n, n) distances: `within[g]` inside each group, stored zero diagonal, given
    (i, j, d) pairs between groups; every other pair absent (at 1)."""
    pairs = [(i, i, 0.0) for i in range(n)]
    pairs += [(i, j, d) for members, d in zip(groups, within)
              for i in members for j in members if i != j]
    pairs += [p for i, j, d in between for p in ((i, j, d), (j, i, d))]
    rows, cols, vals = zip(*pairs)
    return sp.csr_matrix((np.array(vals, np.float32), (rows, cols)), shape=(n, n))


# images 0-4 at 0.2 of each other, 5-8 at 0.3, 9-10 a pair at 0.1 (too few for min_samples=4),
# 11 alone; 4 and 5 at 0.8 (beyond eps: the groups stay apart)
DIST = group_distances([range(0, 5), range(5, 9), range(9, 11)], [0.2, 0.3, 0.1], 12,
                       between=[(4, 5, 0.8)])


def test_known_clusters_outliers_dropped():
    result = dbscan(DIST, eps=0.5, min_samples=4)
    np.testing.assert_array_equal(result.labels, [0] * 5 + [1] * 4 + [-1] * 3)
    np.testing.assert_array_equal(result.counts, [5, 4])
    assert (result.num_clusters, result.num_outliers, result.eps) == (2, 3, 0.5)


def test_known_clusters_outliers_as_singletons():
    result = dbscan(DIST, eps=0.5, min_samples=4, outliers="singletons")
    np.testing.assert_array_equal(result.labels, [0] * 5 + [1] * 4 + [2, 3, 4])
    np.testing.assert_array_equal(result.counts, [5, 4, 1, 1, 1])
    assert (result.num_clusters, result.num_outliers) == (2, 3)


def test_radius_and_min_samples():
    assert dbscan(DIST, eps=0.25, min_samples=4).num_clusters == 1   # 5-8 at 0.3 fall apart
    assert dbscan(DIST, eps=0.9, min_samples=4).num_clusters == 1    # 4-5 joins the groups
    np.testing.assert_array_equal(dbscan(DIST, eps=0.5, min_samples=2).counts, [5, 4, 2])


def test_no_cluster_at_all():
    result = dbscan(DIST, eps=0.05, min_samples=4, outliers="singletons")
    np.testing.assert_array_equal(result.labels, np.arange(12))
    assert result.num_clusters == 0 and result.num_outliers == 12


def test_identities_recovered_from_features():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(8), 12)
    x = rng.normal(size=(8, 32))[labels] + 0.3 * rng.normal(size=(96, 32))
    result = dbscan(jaccard_distance(x, k1=10, k2=4), eps=0.6)
    assert result.num_clusters == 8 and result.num_outliers == 0
    same = labels[:, None] == labels[None, :]
    np.testing.assert_array_equal(result.labels[:, None] == result.labels[None, :], same)


def test_same_labels_as_dbscan_on_the_whole_matrix():
    """Only pairs within eps reach DBSCAN; the clusters are those of the whole matrix."""
    dist = jaccard_distance(clustered(150, 16, 10, 0.7, seed=7), k1=20, k2=6)
    for eps in (0.3, 0.5, 0.7):
        want = DBSCAN(eps=eps, min_samples=4, metric="precomputed").fit_predict(dist)
        np.testing.assert_array_equal(dbscan(dist, eps=eps).labels, want)


def dense_eps(dense, rho):
    """What SpCL / GCL compute on the dense matrix."""
    upper = np.triu(dense, 1)
    upper = np.sort(upper[np.nonzero(upper)], axis=None)
    return upper[:np.round(rho * upper.size).astype(int)].mean()


def test_eps_from_rho_by_hand():
    # upper pairs of 5 images: 0.1, 0.2, 0.4 stored, one stored 0 (not counted), 6 absent (1);
    # a lower-triangle entry is ignored
    dist = sp.csr_matrix((np.array([0, 0, 0, 0, 0, 0.1, 0.2, 0.0, 0.4, 0.05], np.float32),
                          ([0, 1, 2, 3, 4, 0, 0, 1, 2, 4], [0, 1, 2, 3, 4, 1, 2, 3, 4, 0])),
                         shape=(5, 5))
    dense = np.ones((5, 5))
    coo = dist.tocoo()
    dense[coo.row, coo.col] = coo.data
    for rho, want in [(0.34, (0.1 + 0.2 + 0.4) / 3),   # round(3.06) = 3 of 9
                      (0.5, (0.7 + 1.0) / 4),          # round(4.5) = 4: one absent pair at 1
                      (0.99, (0.7 + 6.0) / 9)]:
        # the stored distances are 0.1 etc. rounded to float32 (2^-24 relative), then averaged in float64
        assert eps_from_rho(dist, rho) == pytest.approx(want, rel=2.0 ** -23)
        # the same float64 values averaged in another order: a few float64 ulps
        assert eps_from_rho(dist, rho) == pytest.approx(dense_eps(dense, rho), rel=1e-14)


def test_eps_from_rho_matches_dense_on_jaccard():
    dist = jaccard_distance(clustered(120, 16, 12, 0.7, seed=1), k1=20, k2=6)
    dense = np.ones((120, 120))
    coo = dist.tocoo()
    dense[coo.row, coo.col] = coo.data
    # both average the same positive float64 values (the float32 distances, exactly) in different
    # orders: relative error <= pairs · 2^-53 on each side
    rel = 2 * (120 * 119 // 2) * 2.0 ** -53
    for rho in (1.6e-3, 0.02, 0.2):
        assert eps_from_rho(dist, rho) == pytest.approx(dense_eps(dense, rho), rel=rel)
    result = dbscan(dist, rho=0.02)
    assert result.eps == pytest.approx(dense_eps(dense, 0.02), rel=rel)


@pytest.mark.parametrize("kwargs", [dict(eps=1.0), dict(eps=0.0), dict(eps=0.5, rho=0.1), dict(),
                                    dict(eps=0.5, outliers="keep"), dict(rho=1e-4), dict(rho=1.5)])
def test_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        dbscan(DIST, **kwargs)


def test_rejects_dense_distances():
    with pytest.raises(ValueError, match="sparse"):
        dbscan(DIST.toarray(), eps=0.5)
