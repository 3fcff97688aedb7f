"""Query/gallery evaluation of an embedding function on a data set."""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import torch

from reid_data.dataloaders import test_loader
from .features import extract_features
from .metrics import evaluate_rank
from .rerank import re_ranking


class QueryGallery(NamedTuple):
    """The (Q, G) distances of a data set's query images to its gallery, with their ids."""
    distmat: np.ndarray
    q_pids: np.ndarray
    g_pids: np.ndarray
    q_camids: np.ndarray
    g_camids: np.ndarray


def query_gallery_distances(embed: Callable[[torch.Tensor], torch.Tensor], dataset, data_cfg,
                            device: torch.device, flip: bool = True, rerank: bool = False,
                            autocast_dtype: torch.dtype | None = None) -> QueryGallery:
    """The distances evaluation ranks by: squared distances of the unit features, or with `rerank`
    their k-reciprocal re-ranking."""
    qf, q_pids, q_cams = extract_features(embed, test_loader(dataset.query, data_cfg), device, flip,
                                          autocast_dtype, desc="query")
    gf, g_pids, g_cams = extract_features(embed, test_loader(dataset.gallery, data_cfg), device, flip,
                                          autocast_dtype, desc="gallery")
    if rerank:
        distmat = re_ranking(qf, gf)
    else:
        distmat = unit_distance(qf @ gf.T).numpy()
    return QueryGallery(distmat, q_pids, g_pids, q_cams, g_cams)


def unit_distance(cosine: torch.Tensor) -> torch.Tensor:
    """The distance evaluation ranks by, from the cosine similarities of unit features: their squared
    Euclidean distance, 2 − 2·cos (in [0, 4]; the order of 1 − cos)."""
    return (2.0 - 2.0 * cosine).clamp_(min=0.0)


def rank_metrics(distances: QueryGallery) -> dict[str, float]:
    """mAP, Rank-1/5/10 and mINP (fractions) of query/gallery distances."""
    result = evaluate_rank(*distances, max_rank=50)
    cmc = result["cmc"]
    return {"mAP": result["mAP"], "rank1": float(cmc[0]), "rank5": float(cmc[min(4, len(cmc) - 1)]),
            "rank10": float(cmc[min(9, len(cmc) - 1)]), "mINP": result["mINP"]}


def evaluate_embedding(embed: Callable[[torch.Tensor], torch.Tensor], dataset, data_cfg,
                       device: torch.device, flip: bool = True, rerank: bool = False,
                       autocast_dtype: torch.dtype | None = None) -> dict[str, float]:
    """mAP, Rank-1/5/10 and mINP (fractions) of `embed` on `dataset.query` against `dataset.gallery`."""
    return rank_metrics(query_gallery_distances(embed, dataset, data_cfg, device, flip, rerank, autocast_dtype))
