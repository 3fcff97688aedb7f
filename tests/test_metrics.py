"""evaluate_rank against a slow per-query reference written from the protocol's definition."""

import numpy as np
import pytest
import torch

from reid_eval import metrics
from reid_eval.metrics import evaluate_rank


def reference_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50):
    """One query at a time: stable sort, drop same-pid-same-camera and junk, read off the hits."""
    distmat = np.asarray(distmat, dtype=np.float64)
    cmc_len = min(max_rank, distmat.shape[1])
    curves, aps, inps = [], [], []
    for i in range(distmat.shape[0]):
        order = np.argsort(distmat[i], kind="stable")
        pids, cams = g_pids[order], g_camids[order]
        kept = (pids != -1) & ~((pids == q_pids[i]) & (cams == q_camids[i]))
        hits = np.flatnonzero(pids[kept] == q_pids[i])  # 0-based ranks of the true matches
        if len(hits) == 0:
            continue
        precisions = [(n + 1) / (rank + 1) for n, rank in enumerate(hits)]
        aps.append(np.mean(precisions))
        inps.append(len(hits) / (hits[-1] + 1))
        curves.append(np.arange(cmc_len) >= hits[0])
    return np.mean(curves, axis=0), np.mean(aps), np.mean(inps)


def random_problem(rng, integer_distances):
    num_q, num_g = rng.integers(1, 25), rng.integers(1, 50)
    num_pids, num_cams = rng.integers(1, 8), rng.integers(1, 4)
    q_pids = rng.integers(-1, num_pids, num_q)  # -1: junk, 0: distractor, others: people
    g_pids = rng.integers(-1, num_pids, num_g)
    q_cams, g_cams = rng.integers(0, num_cams, num_q), rng.integers(0, num_cams, num_g)
    if integer_distances:  # many ties
        distmat = rng.integers(0, 4, (num_q, num_g)).astype(np.float32)
    else:
        distmat = rng.standard_normal((num_q, num_g)).astype(np.float32)
    return distmat, q_pids, g_pids, q_cams, g_cams


# Both sides are float64 averages of <= ~700 rationals in [0, 1] (precisions, hit indicators), summed
# in different orders: <= 700 · 2^-53 ≈ 8e-14 apart; one misranked entry moves them by >~ 1e-8.
RANK_TOL = 1e-12


def assert_same(result, expected):
    cmc, mean_ap, mean_inp = expected
    np.testing.assert_allclose(result["cmc"], cmc, rtol=0, atol=RANK_TOL)
    assert result["mAP"] == pytest.approx(mean_ap, abs=RANK_TOL)
    assert result["mINP"] == pytest.approx(mean_inp, abs=RANK_TOL)


def tiny_problem():
    # gallery:      0        1       2        3         4        5
    g_pids = np.array([1, 2, 1, -1, 1, 0])
    g_cams = np.array([0, 1, 1, 1, 2, 1])
    q_pids, q_cams = np.array([1, 2, 3]), np.array([0, 0, 0])
    distmat = np.array([[0.1, 0.3, 0.3, 0.05, 0.5, 0.3],
                        [0.9, 0.1, 0.8, 0.70, 0.6, 0.1],
                        [0.1, 0.2, 0.3, 0.40, 0.5, 0.6]], dtype=np.float32)
    return distmat, q_pids, g_pids, q_cams, g_cams


def test_tiny_example_by_hand():
    # Query 0: gallery 0 (same pid, same camera) and 3 (junk) go; ties keep index order, so the
    # kept ranking is 1, 2*, 5, 4* -> hits at ranks 1 and 3: AP = (1/2 + 2/4) / 2, INP = 2/4.
    # Query 1: its only match (gallery 1) ties with gallery 5 and wins on index: AP = INP = 1.
    # Query 2: pid 3 is not in the gallery -> skipped.
    result = evaluate_rank(*tiny_problem(), max_rank=3)
    np.testing.assert_allclose(result["cmc"], [0.5, 1.0, 1.0], rtol=0, atol=RANK_TOL)
    assert result["mAP"] == pytest.approx(0.75, abs=RANK_TOL)
    assert result["mINP"] == pytest.approx(0.75, abs=RANK_TOL)
    assert isinstance(result["mAP"], float) and isinstance(result["mINP"], float)


def test_cmc_is_capped_at_gallery_size():
    result = evaluate_rank(*tiny_problem(), max_rank=50)
    assert result["cmc"].shape == (6,)
    np.testing.assert_allclose(result["cmc"], [0.5, 1, 1, 1, 1, 1], rtol=0, atol=RANK_TOL)


@pytest.mark.parametrize("integer_distances", [False, True])
def test_matches_reference_on_random_problems(integer_distances):
    rng = np.random.default_rng(7 + integer_distances)
    checked = 0
    for _ in range(100):
        problem = random_problem(rng, integer_distances)
        max_rank = int(rng.integers(1, 60))
        if not any(((problem[2] == p) & (problem[4] != c) & (p != -1)).any()
                   for p, c in zip(problem[1], problem[3])):
            continue  # no valid query: covered by the error test
        assert_same(evaluate_rank(*problem, max_rank=max_rank), reference_rank(*problem, max_rank))
        checked += 1
    assert checked > 50


def test_many_blocks_match_reference(monkeypatch):
    # Tiny blocks make every block boundary, the per-block bookkeeping and the chunks of tied
    # matches matter.
    monkeypatch.setattr(metrics, "_BLOCK_ELEMENTS", 3 * 97)
    rng = np.random.default_rng(3)
    num_q, num_g = 40, 97
    q_pids, g_pids = rng.integers(-1, 6, num_q), rng.integers(-1, 6, num_g)
    q_cams, g_cams = rng.integers(0, 3, num_q), rng.integers(0, 3, num_g)
    for distmat in (rng.standard_normal((num_q, num_g)), rng.integers(0, 3, (num_q, num_g))):
        problem = (distmat.astype(np.float32), q_pids, g_pids, q_cams, g_cams)
        assert_same(evaluate_rank(*problem, max_rank=10), reference_rank(*problem, 10))


def test_ties_go_by_gallery_index_among_kept_entries_only():
    # The match (gallery 3) ties with gallery 1 (kept, smaller index: before it), gallery 5
    # (kept, larger index: after it), gallery 0 (junk) and gallery 2 (same pid and camera):
    # only gallery 1 and the closer gallery 4 rank before it.
    distmat = np.array([[0.5, 0.5, 0.5, 0.5, 0.1, 0.5]], dtype=np.float32)
    problem = (distmat, np.array([7]), np.array([-1, 0, 7, 7, 0, 0]), np.array([0]),
               np.array([1, 1, 0, 1, 1, 1]))
    assert_same(evaluate_rank(*problem), reference_rank(*problem))
    assert evaluate_rank(*problem)["mAP"] == pytest.approx(1 / 3, abs=RANK_TOL)


def test_matches_last_in_their_rows():
    # The matches are gallery 2 and 3. Row 0: they tie with each other as the farthest entries
    # (index order: ranks 2, 3); row 1: gallery 3 is farthest with no tie (ranks 1, 3). The tie
    # check must not read past the end of a row.
    distmat = np.array([[0.1, 0.2, 0.9, 0.9], [0.3, 0.1, 0.2, 0.9]], dtype=np.float32)
    problem = (distmat, np.array([1, 1]), np.array([0, 0, 1, 1]), np.array([0, 0]),
               np.array([1, 1, 1, 1]))
    assert_same(evaluate_rank(*problem), reference_rank(*problem))
    assert evaluate_rank(*problem)["mAP"] == pytest.approx((1 / 3 + 2 / 4 + 1 / 2 + 2 / 4) / 4, abs=RANK_TOL)


@pytest.mark.parametrize("threads", [1, 3])
def test_market_like_problem_with_ties_matches_reference(threads, monkeypatch):
    # Many identities and cameras, rounded distances (ties between matches and other
    # entries), junk, distractors and queries whose identity is only in their own camera.
    monkeypatch.setattr(metrics, "_BLOCK_ELEMENTS", 16 * 600)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        rng = np.random.default_rng(5)
        num_q, num_g = 70, 600
        q_pids, g_pids = rng.integers(1, 40, num_q), rng.integers(-1, 40, num_g)
        q_cams, g_cams = rng.integers(0, 6, num_q), rng.integers(0, 6, num_g)
        distmat = np.round(rng.random((num_q, num_g)), 3).astype(np.float32)
        distmat -= 0.3 * (q_pids[:, None] == g_pids[None])
        problem = (distmat, q_pids, g_pids, q_cams, g_cams)
        assert_same(evaluate_rank(*problem, max_rank=700), reference_rank(*problem, 700))
    finally:
        torch.set_num_threads(previous)


def test_signed_zeros_and_negative_distances_tie_correctly():
    # -0.0 == 0.0, so the hit at gallery 2 ranks after gallery 0 and 1 whatever the sign.
    distmat = np.array([[0.0, -0.0, 0.0, -1.0, 2.0]], dtype=np.float32)
    problem = (distmat, np.array([1]), np.array([0, 0, 1, 0, 1]), np.array([0]), np.array([1] * 5))
    assert_same(evaluate_rank(*problem), reference_rank(*problem))
    assert evaluate_rank(*problem)["mAP"] == pytest.approx((1 / 4 + 2 / 5) / 2, abs=RANK_TOL)


def test_torch_numpy_and_dtypes_agree():
    rng = np.random.default_rng(11)
    distmat, q_pids, g_pids, q_cams, g_cams = random_problem(rng, integer_distances=True)
    g_pids[0], g_cams[0], q_pids[0], q_cams[0] = 1, 1, 1, 0  # at least one valid query
    expected = reference_rank(distmat, q_pids, g_pids, q_cams, g_cams)
    ids = (q_pids, g_pids, q_cams, g_cams)
    torch_ids = tuple(torch.from_numpy(a) for a in ids)
    for d in (distmat, distmat.astype(np.float64), distmat.astype(np.int32),
              torch.from_numpy(distmat), torch.from_numpy(distmat).half(),
              torch.from_numpy(distmat.T.copy()).T,  # not contiguous
              torch.from_numpy(distmat).double().requires_grad_()):
        assert_same(evaluate_rank(d, *ids), expected)
        assert_same(evaluate_rank(d, *torch_ids), expected)


@pytest.mark.parametrize("distances", [[1.0 + 2e-12, 1.0 + 1e-12, 1.0],
                                       [2**40 + 2, 2**40 + 1, 2**40]])
def test_values_beyond_float32_resolution_keep_their_order(distances):
    # float32 would tie all three and rank the match (gallery 0) first.
    problem = (np.array([distances]), np.array([1]), np.array([1, 0, 0]), np.array([0]),
               np.array([1, 1, 1]))
    assert evaluate_rank(*problem)["mAP"] == pytest.approx(1 / 3, abs=RANK_TOL)


def test_input_is_not_modified():
    distmat, *ids = tiny_problem()
    before = distmat.copy()
    evaluate_rank(distmat, *ids)
    np.testing.assert_array_equal(distmat, before)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_rejects_non_finite_distances(bad):
    distmat, *ids = tiny_problem()
    distmat[2, 4] = bad
    with pytest.raises(ValueError, match="NaN or infinite.*row 2"):
        evaluate_rank(distmat, *ids)


def test_rejects_bad_shapes():
    distmat, q_pids, g_pids, q_cams, g_cams = tiny_problem()
    with pytest.raises(ValueError, match="distmat must be 2-D"):
        evaluate_rank(distmat[0], q_pids, g_pids, q_cams, g_cams)
    with pytest.raises(ValueError, match="q_pids must be 1-D of length 3"):
        evaluate_rank(distmat, q_pids[:2], g_pids, q_cams, g_cams)
    with pytest.raises(ValueError, match="g_camids must be 1-D of length 6"):
        evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams[None])
    with pytest.raises(ValueError, match="max_rank"):
        evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=0)


def test_rejects_when_no_query_can_be_evaluated():
    distmat, q_pids, g_pids, q_cams, g_cams = tiny_problem()
    with pytest.raises(ValueError, match="no query identity appears in the gallery"):
        evaluate_rank(distmat, q_pids + 10, g_pids, q_cams, g_cams)
    # the only same-pid entries share the query's camera, or are junk
    with pytest.raises(ValueError, match="no query identity appears in the gallery"):
        evaluate_rank(distmat[:1], np.array([-1]), g_pids, q_cams[:1], g_cams)
