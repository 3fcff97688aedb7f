"""k-reciprocal re-ranking (Zhong et al., CVPR 2017) and Jaccard distance without any N x N matrix.

The classic implementation builds dense N x N distance, rank and weight matrices over all
N = queries + gallery images (8 GB and a minute at Market-1501 size). Everything it reads is
local, though: each image's first k1+1 neighbours, each row's largest distance, and weights on
a few dozen images per row. So distances are streamed block by block into nearest-neighbour
lists, the weights live in a sparse matrix, and only the query x gallery result is dense.

`nearest_neighbours`, `k_reciprocal_weights` and `query_expansion` are the shared steps of any
k-reciprocal Jaccard distance; `re_ranking` combines them for query x gallery retrieval,
`jaccard_distance` for clustering one set of images (a sparse N x N result: two images whose
encodings share no member are at distance 1, and most pairs are).
"""
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from tqdm import tqdm

try:
    import faiss
except ImportError:  # optional: the torch search serves without it
    faiss = None

_BLOCK = 2048             # rows per distance block: a 2048 x 2048 float32 block is 16 MB
_ROW_CHUNK = 1024         # rows per vectorised neighbour-set chunk (a few MB of temporaries)
_GATHER_CHUNK = 2048      # image pairs whose features are gathered at once (stays in cache)
_QUERY_CHUNK = 256        # query rows whose Jaccard overlaps are dense at once (16 MB at Market,
                          # 33 MB at MSMT17 for jaccard_distance)
_PAIR_CHUNK = 1 << 20     # (query, gallery) min-terms accumulated at once (~40 MB)


def re_ranking(q_feat, g_feat, k1=20, k2=6, lambda_value=0.3):
    """k-reciprocal re-ranked distances between queries and gallery images.

    Args:
        q_feat: (Q, D) query features, numpy array or torch tensor (any device).
        g_feat: (G, D) gallery features.
        k1: neighbourhood size of the k-reciprocal sets.
        k2: neighbourhood size of the query expansion (1 turns it off).
        lambda_value: weight of the original distance against the Jaccard distance.

    Returns:
        (Q, G) float32 numpy array; smaller is more similar.
    """
    q, g = _as_features(q_feat, "q_feat"), _as_features(g_feat, "g_feat")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"q_feat has {q.shape[1]} dims but g_feat has {g.shape[1]}; "
                         "pass features from the same model.")
    if k1 < 1 or k2 < 1:
        raise ValueError(f"k1 and k2 must be at least 1, got k1={k1}, k2={k2}.")
    g = g.to(q.device)
    n_query = q.shape[0]
    features = torch.cat([q, g])
    features /= features.norm(dim=1, keepdim=True).clamp_(min=1e-12)  # in place: no second copy

    # The query x gallery similarities come out of the neighbour search for free; the final
    # distances are later written over them.
    sim_qg = torch.empty(n_query, g.shape[0])
    neighbours = nearest_neighbours(features, max(k1 + 1, k2),
                                    on_block=_query_gallery_keeper(sim_qg, n_query))
    weights = k_reciprocal_weights(features, neighbours, k1, row_scale=neighbours.max_dist)
    weights = query_expansion(weights, neighbours.index, k2)
    del features  # not needed any more; frees its memory for what follows

    query_weights, gallery_weights = weights[:n_query], weights[n_query:].tocsc()
    for s in tqdm(range(0, n_query, _QUERY_CHUNK), desc="re-ranking", unit="chunk", leave=False, mininterval=2.0,
                  disable=n_query <= _QUERY_CHUNK):
        rows = slice(s, min(s + _QUERY_CHUNK, n_query))
        overlap = _min_overlap(query_weights[rows], gallery_weights)
        _combine(sim_qg[rows], overlap, neighbours.max_dist[rows], lambda_value)
    return sim_qg.numpy()


def jaccard_distance(features, k1=30, k2=6):
    """k-reciprocal Jaccard distances among N images, for clustering (Cluster Contrast, GCL).

    Each image is encoded by weights on its expanded k-reciprocal set (as in `re_ranking`, but
    with the Gaussian kernel exp(-d) of the squared distance, not normalised by the row's
    largest distance), averaged over its first k2 neighbours; the distance of images i, j is
    1 - M / (2 - M) with M = sum_k min(V[i, k], V[j, k]).

    Args:
        features: (N, D) numpy array or torch tensor; L2-normalised here (a copy).
        k1: neighbourhood size of the k-reciprocal sets (first k1+1 neighbours, the image
            itself included, as `re_ranking`; Cluster Contrast searches k1, one fewer).
        k2: neighbourhood size of the query expansion (1 turns it off).

    Returns:
        (N, N) float32 scipy.sparse.csr_matrix holding every pair at distance below 1, each row
        sorted nearest first, with the diagonal zeros stored explicitly. Absent pairs are at
        distance 1, so DBSCAN(metric="precomputed") with any eps below 1 on it is exact.
        Memory grows with N times the pairs per row -- the images whose encodings share a
        member, hundreds to a few thousand, most of them just below 1 -- not with N^2.
    """
    x = _as_features(features, "features")
    if k1 < 1 or k2 < 1:
        raise ValueError(f"k1 and k2 must be at least 1, got k1={k1}, k2={k2}.")
    x = torch.nn.functional.normalize(x, dim=1)  # a copy: the caller's array stays as it was
    n = x.shape[0]
    k = max(k1 + 1, k2)
    neighbours = _faiss_neighbours(x, k) if faiss is not None and x.device.type == "cpu" \
        else nearest_neighbours(x, k)
    weights = k_reciprocal_weights(x, neighbours, k1, row_scale=torch.ones(n))
    weights = query_expansion(weights, neighbours.index, k2)
    del x, neighbours
    return _sparse_jaccard(weights)


class Neighbours(NamedTuple):
    """Nearest-neighbour lists of N images (CPU tensors)."""
    index: torch.Tensor     # (N, k) int64, nearest first; the image itself comes first
    dist: torch.Tensor      # (N, k) float32 squared Euclidean distances to those neighbours
    max_dist: torch.Tensor  # (N,) float32 largest squared distance from each image, or None
                            # where the search does not see all distances (faiss)


def nearest_neighbours(features, k, on_block=None):
    """Each row's k nearest rows by squared Euclidean distance, and its largest distance.

    Only blocks of the upper triangle are computed; each serves both its rows and its
    columns, which halves the dominant matmul.

    Args:
        features: (N, D) L2-normalised float32 tensor.
        k: neighbours per row (clipped to N); the row itself comes first.
        on_block: optional callback(rows, cols, sim) seeing every computed block of cosine
            similarities (rows and cols are slices with rows.start <= cols.start).

    Returns:
        Neighbours with k columns.
    """
    n = features.shape[0]
    k = min(k, n)
    best_sim = features.new_full((n, k), -float("inf"))
    best_idx = torch.zeros((n, k), dtype=torch.long, device=features.device)
    min_sim = features.new_full((n,), float("inf"))
    for r0 in range(0, n, _BLOCK):
        rows = slice(r0, min(r0 + _BLOCK, n))
        for c0 in range(r0, n, _BLOCK):
            cols = slice(c0, min(c0 + _BLOCK, n))
            sim = features[rows] @ features[cols].T
            if r0 == c0:
                sim.fill_diagonal_(1.0)  # exact zero self-distance: each image ranks itself first
            _merge_top(best_sim, best_idx, rows, sim, c0)
            min_sim[rows] = torch.minimum(min_sim[rows], sim.amin(1))
            if r0 != c0:  # the mirror block; topk is twice as slow on its strided rows
                _merge_top(best_sim, best_idx, cols, sim.T.contiguous(), r0)
                min_sim[cols] = torch.minimum(min_sim[cols], sim.amin(0))
            if on_block is not None:
                on_block(rows, cols, sim)
    return Neighbours(best_idx.cpu(), _squared_distance(best_sim).cpu(),
                      _squared_distance(min_sim).cpu())


def _faiss_neighbours(features, k):
    """`nearest_neighbours` by faiss exhaustive inner-product search (without max_dist)."""
    n = features.shape[0]
    k = min(k, n)
    x = features.cpu().numpy()
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    sim, idx = (torch.from_numpy(a) for a in index.search(x, k))
    # Rounding can rank a near-duplicate above the image itself; put the image first, as the
    # torch search does, and keep the others in their order.
    me = torch.arange(n)[:, None]
    others = (idx == me).to(torch.int8).argsort(dim=1, stable=True)[:, :k - 1]
    index = torch.cat([me, idx.gather(1, others)], dim=1)
    dist = torch.cat([torch.zeros(n, 1), _squared_distance(sim.gather(1, others))], dim=1)
    return Neighbours(index, dist, None)


def k_reciprocal_weights(features, neighbours, k1, row_scale):
    """Sparse (N, N) float32 weights of each image's expanded k-reciprocal set.

    Row i holds exp(-dist(i, j) / row_scale[i]) over the set, normalised to sum 1.

    Args:
        features: (N, D) L2-normalised features.
        neighbours: `nearest_neighbours` result with at least k1+1 columns.
        k1: neighbourhood size of the reciprocal sets.
        row_scale: (N,) divisor of each row's squared distances.
    """
    n = features.shape[0]
    inside, out_rows, out_cols = _expanded_sets(neighbours.index, k1)
    # Most members are among the k1+1 neighbours, whose distances are known; the rest
    # (about 15% on re-ID features) are computed.
    in_rows, slot = inside.nonzero(as_tuple=True)
    rows = torch.cat([in_rows, out_rows])
    cols = torch.cat([neighbours.index[in_rows, slot], out_cols])
    dist = torch.cat([neighbours.dist[in_rows, slot],
                      _pair_distances(features, out_rows, out_cols)])
    weight = torch.exp(-dist / row_scale[rows])
    weight /= torch.zeros(n).index_add_(0, rows, weight)[rows]
    return sp.csr_matrix((weight.numpy(), (rows.numpy(), cols.numpy())), shape=(n, n))


def query_expansion(weights, index, k2):
    """Replace each row of `weights` by the mean of its first k2 neighbours' rows (itself first)."""
    n = weights.shape[0]
    k2 = min(k2, index.shape[1])
    neighbours = index[:, :k2].reshape(-1).numpy()
    mean = sp.csr_matrix((np.full(n * k2, 1.0 / k2, dtype=np.float32), neighbours,
                          np.arange(0, n * k2 + 1, k2)), shape=(n, n))
    return (mean @ weights).tocsr()


def _as_features(x, name):
    x = torch.as_tensor(x).detach()
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D (images, dims) array, "
                         f"got shape {tuple(x.shape)}.")
    return x.float()


def _squared_distance(sim):
    """Squared Euclidean distance of unit vectors from their cosine similarity."""
    return (2.0 - 2.0 * sim).clamp_(min=0.0)


def _merge_top(best_sim, best_idx, rows, sim, col0):
    """Fold the candidates of one block (columns from col0) into the running top-k of `rows`."""
    k = best_sim.shape[1]
    top = sim.topk(min(k, sim.shape[1]), dim=1)
    values = torch.cat([best_sim[rows], top.values], dim=1)
    indices = torch.cat([best_idx[rows], top.indices + col0], dim=1)
    keep = values.topk(k, dim=1)
    best_sim[rows] = keep.values
    best_idx[rows] = indices.gather(1, keep.indices)


def _query_gallery_keeper(out, n_query):
    """Block callback copying the query x gallery part of each block (and its mirror) into out."""
    def keep(rows, cols, sim):
        _copy_query_gallery(out, n_query, rows, cols, sim)
        if rows != cols:
            _copy_query_gallery(out, n_query, cols, rows, sim.T)
    return keep


def _copy_query_gallery(out, n_query, rows, cols, sim):
    row_end = min(rows.stop, n_query)
    col_start = max(cols.start, n_query)
    if row_end > rows.start and col_start < cols.stop:
        out[rows.start:row_end, col_start - n_query:cols.stop - n_query] = \
            sim[:row_end - rows.start, col_start - cols.start:].cpu()


def _reciprocal(index):
    """mask[i, p]: whether image index[i, p] has i among its own neighbours (row of index)."""
    mask = torch.empty(index.shape, dtype=torch.bool)
    for s in range(0, index.shape[0], _ROW_CHUNK):
        chunk = index[s:s + _ROW_CHUNK]
        me = torch.arange(s, s + chunk.shape[0])[:, None, None]
        mask[s:s + chunk.shape[0]] = (index[chunk] == me).any(-1)
    return mask


def _expanded_sets(index, k1):
    """Expanded k-reciprocal sets of all images.

    R(i) are the reciprocal members of i's first k1+1 neighbours; each candidate c in R(i)
    adds its own half-size set R_half(c) when more than 2/3 of R_half(c) lies in R(i).

    Returns:
        inside: (N, K) bool, which of the first K = k1+1 neighbour slots are members.
        out_rows, out_cols: the members that are not among those neighbours, as coordinates.
    """
    n = index.shape[0]
    full = index[:, :k1 + 1]
    half = index[:, :int(np.around(k1 / 2.0)) + 1]  # round half to even, as the original
    full_ok, half_ok = _reciprocal(full), _reciprocal(half)
    k, h = full.shape[1], half.shape[1]
    inside = torch.empty_like(full_ok)
    out_keys = []
    for s in range(0, n, _ROW_CHUNK):
        cand, cand_ok = full[s:s + _ROW_CHUNK], full_ok[s:s + _ROW_CHUNK]  # (c, K)
        c = cand.shape[0]
        sub, sub_ok = half[cand].view(c, k * h), half_ok[cand].view(c, k * h)  # R_half per slot
        slot, found = _find(cand, sub)
        in_base = (found & cand_ok.gather(1, slot) & sub_ok).view(c, k, h)
        accept = cand_ok & (in_base.sum(-1) > 2.0 / 3.0 * sub_ok.view(c, k, h).sum(-1))
        added = sub_ok & accept.repeat_interleave(h, dim=1)
        hits = torch.zeros(c, k, dtype=torch.int32).scatter_add_(1, slot, (added & found).int())
        inside[s:s + c] = cand_ok | (hits > 0)
        r, p = (added & ~found).nonzero(as_tuple=True)
        out_keys.append((r + s) * n + sub[r, p])
    keys = torch.unique(torch.cat(out_keys))  # several candidates may add the same image
    return inside, keys // n, keys % n


def _find(keys, values):
    """Per row, where each of `values` sits in `keys` (distinct per row), and whether it does."""
    sorted_keys, order = keys.sort(dim=1)
    pos = torch.searchsorted(sorted_keys, values).clamp_(max=keys.shape[1] - 1)
    found = sorted_keys.gather(1, pos) == values
    return order.gather(1, pos), found


def _pair_distances(features, rows, cols):
    """Squared distances of the image pairs (rows[p], cols[p]), by gathering their features."""
    sim = torch.empty(rows.shape[0])
    device = features.device
    for s in range(0, rows.shape[0], _GATHER_CHUNK):
        a = features[rows[s:s + _GATHER_CHUNK].to(device)]
        b = features[cols[s:s + _GATHER_CHUNK].to(device)]
        sim[s:s + _GATHER_CHUNK] = torch.linalg.vecdot(a, b).cpu()
    return _squared_distance(sim)


def _min_overlap(weights_a, weights_b):
    """Dense (A, B) float32 tensor of sum_k min(weights_a[a, k], weights_b[b, k]).

    Only k where both rows are non-zero contribute, so for every column k each non-zero of
    weights_a is paired with every non-zero of weights_b in that column. weights_b is CSC.
    """
    a, b = weights_a.tocsc(), weights_b
    n_b = b.shape[0]
    out = torch.zeros(a.shape[0] * n_b)
    column = np.repeat(np.arange(a.shape[1]), np.diff(a.indptr))  # column of each a non-zero
    pairs = np.diff(b.indptr)[column]                              # partners of each a non-zero
    ends = np.cumsum(pairs)
    bounds = np.searchsorted(ends, np.arange(_PAIR_CHUNK, int(pairs.sum()), _PAIR_CHUNK),
                             side="right")
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(pairs)]):
        count = pairs[lo:hi]
        entry = np.repeat(np.arange(lo, hi), count)
        offset = np.arange(entry.shape[0]) - np.repeat(np.cumsum(count) - count, count)
        partner = np.repeat(b.indptr[column[lo:hi]], count) + offset
        value = np.minimum(a.data[entry], b.data[partner])
        flat = a.indices[entry].astype(np.int64) * n_b + b.indices[partner]
        out.index_add_(0, torch.from_numpy(flat), torch.from_numpy(value))
    return out.view(a.shape[0], n_b)


def _sparse_jaccard(weights):
    """CSR matrix of the Jaccard distances below 1 between all rows of `weights`, nearest first.

    Rows are done in chunks whose overlaps with all rows are dense for a moment; a pair's
    distance is below 1 exactly where the two encodings share a column (M > 0).
    """
    n = weights.shape[0]
    columns = weights.tocsc()
    counts, cols, values = [], [], []
    for s in tqdm(range(0, n, _QUERY_CHUNK), desc="Jaccard distances", unit="chunk", leave=False, mininterval=2.0,
                  disable=n <= _QUERY_CHUNK):
        overlap = _min_overlap(weights[s:s + _QUERY_CHUNK], columns)
        overlap[torch.arange(overlap.shape[0]), torch.arange(s, s + overlap.shape[0])] = 1.0
        row, col = overlap.nonzero(as_tuple=True)
        dist = _jaccard(overlap[row, col]).clamp_(min=0.0)  # self: exactly 0
        keep = dist < 1.0  # M rounded to below float precision gives 1, which is absent
        row, col, dist = row[keep], col[keep], dist[keep]
        order = np.lexsort((dist.numpy(), row.numpy()))  # by row, nearest first
        counts.append(torch.bincount(row, minlength=overlap.shape[0]).numpy())
        cols.append(col.numpy()[order].astype(np.int32))
        values.append(dist.numpy()[order])
    indptr = np.concatenate([[0], np.cumsum(np.concatenate(counts))])
    return sp.csr_matrix((np.concatenate(values), np.concatenate(cols), indptr), shape=(n, n))


def _jaccard(overlap):
    """Jaccard distance 1 - M / (2 - M) from the min-overlap M, in place."""
    return overlap.div_(2.0 - overlap).neg_().add_(1.0)


def _combine(sim, overlap, max_dist, lambda_value):
    """Overwrite sim with (1 - lambda) * Jaccard distance + lambda * row-normalised distance."""
    dist = sim.mul_(-2.0).add_(2.0).clamp_(min=0.0)  # squared distance, as _squared_distance
    dist /= max_dist[:, None]
    dist.mul_(lambda_value).add_(_jaccard(overlap), alpha=1.0 - lambda_value)
