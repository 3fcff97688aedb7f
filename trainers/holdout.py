"""Held-out training identities: the only labels an unsupervised run may look at, and only to
pick its best epoch. The test set's query and gallery are never read for that choice.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from reid_data import Sample


class HeldOut(NamedTuple):
    """A mini query/gallery split (what `evaluate_embedding` reads), empty when none is held out."""
    query: list[Sample]
    gallery: list[Sample]


def split_identities(train: list[Sample], num_ids: int, seed: int) -> tuple[list[Sample], HeldOut]:
    """Takes `num_ids` identities (drawn with `seed`) out of `train`.

    Returns the remaining training images and the held-out images as query/gallery: the first
    image (by path) of each held-out identity in each camera is a query, the others are gallery
    images, so every query has matches from the identity's other cameras.
    """
    if num_ids == 0:
        return list(train), HeldOut([], [])
    pids = sorted({s.pid for s in train})
    if not 0 < num_ids < len(pids) - 1:
        raise ValueError(f"cluster.holdout_ids is {num_ids} but the training set has {len(pids)} "
                         f"identities; hold out between 1 and {len(pids) - 2}")
    held = set(np.random.default_rng(seed).choice(pids, num_ids, replace=False).tolist())
    rest, query, gallery, seen = [], [], [], set()
    for s in sorted(train, key=lambda s: s.path):
        if s.pid not in held:
            rest.append(s)
        elif (s.pid, s.camid) in seen:
            gallery.append(s)
        else:
            seen.add((s.pid, s.camid))
            query.append(s)
    return rest, HeldOut(query, gallery)
