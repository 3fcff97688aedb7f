"""One query's gallery in the order `evaluate_rank` ranks it, as a list a figure can draw.

The metric never sorts indices (see metrics.py); this spells its order out for one row: distances
ascending, ties by gallery index, with the entries the protocol removes (junk, pid -1, and the
query's identity seen by the query's camera) left in place but flagged, and ranks counting only the
entries kept.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from reid_data.records import JUNK_PID


@dataclass(frozen=True)
class RankedGallery:
    """Parallel arrays over the gallery in ranked order."""
    index: np.ndarray     # gallery indices
    distance: np.ndarray  # float64
    kept: np.ndarray      # False where the metric removes the entry
    match: np.ndarray     # a kept entry of the query's identity
    rank: np.ndarray      # 1-based among the kept entries; 0 where removed

    def head(self, top: int) -> RankedGallery:
        """The entries up to the `top`-th kept one, the removed ones among them included."""
        end = int(np.searchsorted(np.cumsum(self.kept), top)) + 1
        return RankedGallery(*(getattr(self, f)[:end] for f in ("index", "distance", "kept", "match", "rank")))


def ranked_gallery(distances, q_pid: int, q_camid: int, g_pids, g_camids) -> RankedGallery:
    """The gallery of one query (`distances`: its row of the distance matrix) as `evaluate_rank`
    orders it."""
    row = torch.as_tensor(distances).detach().cpu().double().numpy()  # exact for every dtype the metric takes
    if row.ndim != 1 or not np.isfinite(row).all():
        raise ValueError(f"distances must be one finite row, got shape {row.shape}")
    index = np.argsort(row, kind="stable")  # ties stay in gallery order
    pids, camids = np.asarray(g_pids)[index], np.asarray(g_camids)[index]
    kept = (pids != JUNK_PID) & ~((pids == q_pid) & (camids == q_camid))
    return RankedGallery(index, row[index], kept, kept & (pids == q_pid), np.where(kept, np.cumsum(kept), 0))
