"""Re-ID ranking metrics (CMC, mAP, mINP) under the Market-1501 protocol.

`evaluate_rank` gives the numbers of torchreid's market evaluation without argsorting the
distance matrix. Only the ranks of the true matches matter, and a match's rank is the number
of kept gallery entries ordered before it. Per block of queries:

1. one compare finds, per query, the kept entries no farther than its farthest true match --
   the only entries that can rank before a match;
2. each such entry and each match gets one exact int64 key ordered by
   (query, distance, gallery index), the order a stable argsort gives, ties included;
3. the keys are sorted and each match's rank is where its key falls among them.

A good model leaves few candidates, so the work is about one pass over the matrix. A poor
one (an untrained model: matches spread over the whole gallery) makes nearly every entry a
candidate; such blocks sort whole rows of keys instead, which is cheaper than gathering them.
Temporaries are bounded by the block, never by the whole matrix.
"""

import numpy as np
import torch

# Entries of the distance matrix handled at once: bounds the temporaries (a few int64 per
# entry in the worst case) and keeps the composite keys below 2**63.
_BLOCK_ELEMENTS = 1 << 22
# Above this fraction of candidate entries, sorting whole rows is faster (measured on the
# Market-sized benchmark, bench/bench_evaluate_rank.py).
_DENSE_FRACTION = 0.5


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

    junk = torch.nonzero(g_pids == -1).view(-1)
    positions = torch.empty_like(hit_q)
    rows = max(1, _BLOCK_ELEMENTS // max(num_g, 1))
    starts = torch.arange(0, num_q + rows, rows, device=dist.device)
    hit_bounds = torch.searchsorted(hit_q, starts).tolist()  # pairs are sorted by query
    removed_bounds = torch.searchsorted(removed_q, starts).tolist()
    for b, q0 in enumerate(range(0, num_q, rows)):
        block = _float_block(dist[q0:q0 + rows], q0)
        lo, hi = hit_bounds[b], hit_bounds[b + 1]
        if lo < hi:
            removed = slice(removed_bounds[b], removed_bounds[b + 1])
            positions[lo:hi] = _match_positions(block, hit_q[lo:hi] - q0, hit_g[lo:hi],
                                                removed_q[removed] - q0, removed_g[removed], junk)
    return _summarize(hit_q, positions, num_q, num_g, min(max_rank, num_g))


def _as_tensors(distmat, q_pids, g_pids, q_camids, g_camids):
    """Checks shapes and returns torch views (no copy of a numpy distmat)."""
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
        values = torch.as_tensor(values, device=dist.device).detach()
        if values.dim() != 1 or len(values) != size:
            raise ValueError(f"{name} must be 1-D of length {size} to match distmat of shape "
                             f"{tuple(dist.shape)}, got shape {tuple(values.shape)}")
        ids.append(values.long())
    return (dist, *ids)


def _float_block(block, q0):
    """The block, row-major, as float32 or float64 holding exactly the same values; rejects
    NaN and inf."""
    block = block.contiguous()  # row sorts and flat views assume row-major (a no-op usually)
    if not block.is_floating_point():
        low, high = torch.aminmax(block)
        exact_in_float32 = max(-int(low), int(high)) <= 2**24  # e.g. Hamming distances
        return block.to(torch.float32 if exact_in_float32 else torch.float64)
    if block.dtype not in (torch.float32, torch.float64):
        block = block.float()  # half types widen exactly
    # One reduction, no temporary: min and max propagate NaN and expose +-inf.
    if not bool(torch.isfinite(torch.stack(torch.aminmax(block))).all()):
        row = int((~torch.isfinite(block)).any(1).nonzero()[0]) + q0
        raise ValueError(f"distmat has a NaN or infinite distance (query row {row}); "
                         "distances must be finite")
    return block


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


def _match_positions(block, hit_r, hit_g, removed_r, removed_c, junk):
    """0-based rank of each true match among the kept gallery entries of its query row.

    Args:
        block: (B, G) distances of B queries; hit_r/hit_g: row in the block and gallery index
            of each true match; removed_r/removed_c: same-pid same-camera entries; junk:
            indices of the pid -1 gallery entries.
    """
    num_rows, num_g = block.shape
    hit_d = block[hit_r, hit_g]
    # Only kept entries no farther than their row's farthest match can rank before a match.
    reach = torch.full((num_rows,), -torch.inf, dtype=block.dtype, device=block.device)
    reach.scatter_reduce_(0, hit_r, hit_d, "amax")
    before = block <= reach[:, None]
    before[removed_r, removed_c] = False
    before[:, junk] = False
    # Sorted keys of (row, distance, gallery index): a match's position is where its key
    # falls among them, less the keys of earlier rows.
    if torch.count_nonzero(before) < _DENSE_FRACTION * before.numel():  # a good model
        r, c = before.nonzero(as_tuple=True)
        value_keys = _order_keys(torch.cat([block[r, c], hit_d]))
        keys = _sorted(_compose(r, value_keys[:len(r)], c, num_g))
        hit_keys = _compose(hit_r, value_keys[len(r):], hit_g, num_g)
        per_row = torch.bincount(r, minlength=num_rows)
        row_start = torch.cumsum(per_row, 0) - per_row
    else:  # a poor model: sorting whole rows is cheaper than gathering the candidates
        r = torch.arange(num_rows, device=block.device)[:, None]
        c = torch.arange(num_g, device=block.device)
        # non-candidates become +inf: still inside their row, but after all its matches
        value_keys = _order_keys(torch.where(before, block, torch.inf))
        keys = _compose(r, value_keys, c, num_g)
        hit_keys = keys[hit_r, hit_g]
        keys = _sorted(keys).view(-1)
        row_start = r.view(-1) * num_g
    return torch.searchsorted(keys, hit_keys) - row_start[hit_r]


def _compose(rows, value_keys, cols, num_g):
    """One int64 per entry ordered by (row, value, col), for value_keys in [-2**31, 2**31)."""
    keys = value_keys.to(torch.int64, copy=True)
    return keys.add_(rows * 2**32 + 2**31).mul_(num_g).add_(cols)  # in place: no new memory


def _sorted(keys):
    """Keys sorted along the last dimension; on CPU numpy's SIMD sort, several times faster
    than torch's."""
    if keys.device.type != "cpu":
        return torch.sort(keys).values
    return torch.from_numpy(np.sort(keys.numpy(), axis=-1))


def _order_keys(values):
    """Integers in [-2**31, 2**31) with exactly the order, and the ties, of the values."""
    values = values + 0.0  # -0.0 becomes +0.0: they compare equal but differ in bits
    # Float bits are sign-magnitude: flipping the magnitude bits of negative numbers makes
    # them order like the integers they read as.
    if values.dtype == torch.float64:
        bits = values.view(torch.int64)
        bits ^= (bits >> 63) & 0x7FFF_FFFF_FFFF_FFFF
        # 64 bits do not fit a composite key: use dense ranks (slower, still exact)
        return torch.unique(bits, return_inverse=True)[1] - 2**31
    bits = values.view(torch.int32)
    bits ^= (bits >> 31) & 0x7FFF_FFFF
    return bits


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
