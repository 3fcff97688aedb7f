"""Re-ID ranking metrics (CMC, mAP, mINP) under the Market-1501 protocol.

`evaluate_rank` gives the numbers of torchreid's market evaluation without argsorting the
distance matrix. Only the ranks of the true matches matter, and a match's rank is the number
of kept gallery entries ordered before it. Per block of queries:

1. junk and same-pid same-camera entries become +inf, so they rank after every match;
2. each row's distances are sorted, values only (rows split among torch's intra-op threads):
   numpy's vectorised sort is several times faster than an argsort, and also faster than
   placing every entry among the row's few matches by binary search -- O(G log P), but its
   branches mispredict at nearly every step (measured: ~4x slower per entry than the sort);
3. a match's rank is the number of entries below its distance in its sorted row, plus, for a
   match that ties with other kept entries, those of them with a smaller gallery index.

The cost is the same whatever the model, and temporaries are bounded by the block.
"""

import functools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

# Entries of the distance matrix handled at once: bounds the temporaries (two float copies of
# the block, and about the same again while comparing tied matches with their rows).
_BLOCK_ELEMENTS = 1 << 20


def evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50):
    """CMC, mAP and mINP of a query x gallery distance matrix (Market-1501 protocol).

    For each query, gallery entries with its pid *and* its camera are removed, as are junk
    entries (pid -1); queries left with no true match are skipped. Gallery entries are ranked
    by ascending distance, ties broken by gallery index.

    Args:
        distmat: (num_query, num_gallery) numpy array or torch tensor of finite distances.
        q_pids, g_pids, q_camids, g_camids: 1-D integer identities and cameras.
        max_rank: length of the CMC curve (capped at the gallery size).

    Returns:
        dict with ``cmc`` (numpy float64 array, ``cmc[r]`` = fraction of valid queries with a
        true match in the top r+1), ``mAP`` and ``mINP`` (python floats in [0, 1]).

    Raises:
        ValueError: on malformed shapes, non-finite distances, or when no query identity
            appears in the gallery.
    """
    dist, q_pids, g_pids, q_cams, g_cams = _as_tensors(distmat, q_pids, g_pids, q_camids, g_camids)
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    num_q, num_g = dist.shape
    pair_q, pair_g, other_cam = _same_pid_pairs(q_pids, g_pids, q_cams, g_cams)
    hit_q, hit_g = pair_q[other_cam], pair_g[other_cam]
    if len(hit_q) == 0:
        raise ValueError("no query identity appears in the gallery (from another camera), "
                         "so no query can be evaluated; check the pids and camids")
    removed_q, removed_g = pair_q[~other_cam], pair_g[~other_cam]

    junk = torch.nonzero(g_pids == -1).view(-1).numpy()
    hit_q, hit_g, removed_q, removed_g = (t.numpy() for t in (hit_q, hit_g, removed_q, removed_g))
    positions = np.empty_like(hit_q)
    rows = max(1, _BLOCK_ELEMENTS // num_g)
    starts = np.arange(0, num_q + rows, rows)
    hit_bounds = np.searchsorted(hit_q, starts)  # pairs are sorted by query
    removed_bounds = np.searchsorted(removed_q, starts)
    # Two work arrays reused by every block: fresh ones would cost page faults each time.
    kept = np.empty((rows, num_g), _work_dtype(dist))
    ranked = np.empty_like(kept)
    threads = torch.get_num_threads()
    with ThreadPoolExecutor(threads) as pool:
        sort_rows = functools.partial(_sort_rows, pool=pool, threads=threads)
        for b, q0 in enumerate(range(0, num_q, rows)):
            block = kept[:min(rows, num_q - q0)]
            torch.from_numpy(block).copy_(dist[q0:q0 + rows])  # any dtype, layout or device
            _check_finite(block, q0)
            lo, hi = hit_bounds[b], hit_bounds[b + 1]
            if lo < hi:
                removed = slice(removed_bounds[b], removed_bounds[b + 1])
                positions[lo:hi] = _match_positions(
                    block, ranked[:len(block)], sort_rows, hit_q[lo:hi] - q0, hit_g[lo:hi],
                    removed_q[removed] - q0, removed_g[removed], junk)
    return _summarize(torch.from_numpy(hit_q), torch.from_numpy(positions), num_q, num_g,
                      min(max_rank, num_g))


def _as_tensors(distmat, q_pids, g_pids, q_camids, g_camids):
    """Checks shapes and returns torch views (no copy of a numpy distmat); the ids on the CPU,
    where the ranking runs."""
    dist = torch.as_tensor(distmat).detach()
    if dist.dim() != 2:
        raise ValueError("distmat must be 2-D (num_query, num_gallery), "
                         f"got shape {tuple(dist.shape)}")
    if dist.dtype == torch.bool or dist.is_complex():
        raise ValueError(f"distmat must hold real distances, got dtype {dist.dtype}")
    ids = []
    for name, values, size in (("q_pids", q_pids, dist.shape[0]), ("g_pids", g_pids, dist.shape[1]),
                               ("q_camids", q_camids, dist.shape[0]),
                               ("g_camids", g_camids, dist.shape[1])):
        values = torch.as_tensor(values, device="cpu").detach()
        if values.dim() != 1 or len(values) != size:
            raise ValueError(f"{name} must be 1-D of length {size} to match distmat of shape "
                             f"{tuple(dist.shape)}, got shape {tuple(values.shape)}")
        ids.append(values.long())
    return (dist, *ids)


def _work_dtype(dist):
    """float32, or float64 where float32 would not hold every distance exactly."""
    if dist.is_floating_point():
        return np.float64 if dist.dtype == torch.float64 else np.float32  # half types widen
    low, high = torch.aminmax(dist)
    return np.float32 if max(-int(low), int(high)) <= 2**24 else np.float64  # e.g. Hamming


def _check_finite(block, q0):
    """Rejects NaN and inf: one reduction, no temporary (min and max propagate NaN)."""
    if not bool(torch.isfinite(torch.stack(torch.aminmax(torch.from_numpy(block)))).all()):
        row = int((~np.isfinite(block)).any(1).nonzero()[0][0]) + q0
        raise ValueError(f"distmat has a NaN or infinite distance (query row {row}); "
                         "distances must be finite")


def _same_pid_pairs(q_pids, g_pids, q_cams, g_cams):
    """All (query, gallery) pairs with the same pid (not -1), sorted by query, and whether
    their cameras differ (a true match) or not (removed by the protocol).

    Grouping the gallery by pid finds them without touching the Q x G grid.
    """
    order = torch.argsort(g_pids, stable=True)
    sorted_pids = g_pids[order]
    first = torch.searchsorted(sorted_pids, q_pids)
    counts = torch.searchsorted(sorted_pids, q_pids, right=True) - first
    counts[q_pids == -1] = 0
    pair_q = torch.repeat_interleave(torch.arange(len(q_pids), device=q_pids.device), counts)
    group_start = torch.cumsum(counts, 0) - counts
    offset = torch.arange(len(pair_q), device=q_pids.device) - group_start[pair_q]
    pair_g = order[first[pair_q] + offset]
    return pair_q, pair_g, q_cams[pair_q] != g_cams[pair_g]


def _match_positions(kept, ranked, sort_rows, hit_r, hit_g, removed_r, removed_c, junk):
    """0-based rank of each true match among the kept gallery entries of its query row.

    Args:
        kept: (B, G) float distances of B queries, overwritten with +inf at the entries the
            protocol removes; ranked: (B, G) work array of the same dtype; sort_rows: sorts
            each row of an array in place; hit_r/hit_g: row in the block (ascending) and
            gallery index of each true match; removed_r/removed_c: same-pid same-camera
            entries; junk: indices of the pid -1 gallery entries.
    """
    num_rows, num_g = kept.shape
    hit_d = kept[hit_r, hit_g]
    kept[:, junk] = np.inf  # distances are finite: +inf goes after every match
    kept[removed_r, removed_c] = np.inf
    np.copyto(ranked, kept)
    sort_rows(ranked)
    # the matches' distances in a (B, most matches) grid, for one batched search of the rows
    per_row = np.bincount(hit_r, minlength=num_rows)
    slot = np.arange(len(hit_r)) - (np.cumsum(per_row) - per_row)[hit_r]
    grid = np.zeros((num_rows, per_row.max()), dtype=kept.dtype)
    grid[hit_r, slot] = hit_d
    below = torch.searchsorted(torch.from_numpy(ranked), torch.from_numpy(grid)).numpy()
    below = below[hit_r, slot]  # entries closer than the match: its rank, but for ties
    # Ties go by gallery index: the kept entries at a match's distance with a smaller index
    # rank before it too. ranked[r, below] is the match's distance; a tie repeats it next
    # (a match that is last in its row compares with itself: a false alarm, counted exactly).
    tied = np.flatnonzero(ranked[hit_r, np.minimum(below + 1, num_g - 1)] == hit_d)
    # Comparing each tied match with its row costs O(G), rare with float distances; one block
    # of them at a time bounds the temporaries.
    for start in range(0, len(tied), num_rows):
        chunk = tied[start:start + num_rows]
        t, e = np.nonzero(kept[hit_r[chunk]] == hit_d[chunk, None])
        below[chunk] += np.bincount(t[e < hit_g[chunk][t]], minlength=len(chunk))
    return below


def _sort_rows(a, pool, threads):
    """Sorts each row of `a` in place, groups of rows in parallel: numpy releases the GIL
    while it sorts."""
    list(pool.map(lambda rows: rows.sort(axis=1), np.array_split(a, min(threads, len(a)))))


def _summarize(hit_q, positions, num_q, num_g, cmc_len):
    """CMC / mAP / mINP from the 0-based rank positions of all true matches."""
    order = torch.argsort(hit_q * num_g + positions)  # by query, then by rank
    hit_q, positions = hit_q[order], positions[order].double()
    k = torch.bincount(hit_q, minlength=num_q)
    first = torch.cumsum(k, 0) - k
    nth = torch.arange(1, len(hit_q) + 1, device=hit_q.device) - first[hit_q]  # 1-based
    precision_sum = torch.zeros(num_q, dtype=torch.float64, device=hit_q.device)
    precision_sum.index_add_(0, hit_q, nth / (positions + 1))

    valid = k > 0
    k, first = k[valid], first[valid]
    average_precision = precision_sum[valid] / k
    inverse_negative_penalty = k / (positions[first + k - 1] + 1)
    first_hit = positions[first].long().clamp(max=cmc_len)
    cmc = torch.bincount(first_hit, minlength=cmc_len + 1)[:cmc_len].cumsum(0).double() / len(k)
    return {"cmc": cmc.cpu().numpy(),
            "mAP": float(average_precision.mean()),
            "mINP": float(inverse_negative_penalty.mean())}
