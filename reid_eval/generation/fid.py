"""Fréchet Inception Distance with pytorch-fid's InceptionV3 (pool3, 2048 features).

Weights follow the suite's rule for pretrained files: `True` uses the torch cache or pytorch-fid's
download, a path loads that file, and `False` keeps random weights — which only exercises the
code: such an FID is not comparable with any published figure.
"""
from __future__ import annotations

from typing import Iterable
from unittest import mock

import numpy as np
import scipy.linalg
import torch
import torchvision
from tqdm import tqdm
from pytorch_fid import inception as pytorch_fid_inception

from models.weights import WeightsError, read_state_dict, resolve_weights

INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_URL = pytorch_fid_inception.FID_WEIGHTS_URL


def fid_inception(weights=True, device: torch.device | str = "cpu") -> torch.nn.Module:
    """pytorch-fid's InceptionV3 returning pool3 features, in eval mode on `device`.

    Inputs are (B, 3, H, W) in [0, 1]; the network resizes them to 299x299 itself.
    """
    path = resolve_weights(weights, INCEPTION_FILE, INCEPTION_URL, "FID Inception")
    state = read_state_dict(path, "FID Inception") if path is not None else _random_state()
    # pytorch-fid's constructor only knows how to fetch its URL; hand it the state resolved here.
    with mock.patch.object(pytorch_fid_inception, "load_state_dict_from_url", lambda *a, **k: state):
        try:
            model = pytorch_fid_inception.InceptionV3([pytorch_fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
        except RuntimeError:  # load_state_dict: a file of another network
            raise WeightsError(f"FID Inception weight file {path} does not fit pytorch-fid's InceptionV3; "
                               f"use {INCEPTION_FILE} (from {INCEPTION_URL})") from None
    return model.eval().to(device)


def _random_state() -> dict:
    """Seeded random weights of the FID Inception (the same every call, so a random-weight FID
    is reproducible). torchvision's Inception with 1008 classes has exactly the FID variant's
    parameters; He-initialised convolutions keep the pool3 features near unit scale, where the
    default init shrinks them to ~1e-8."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008,
                                              init_weights=False)
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return net.state_dict()


@torch.no_grad()
def inception_features(model: torch.nn.Module, batches: Iterable[torch.Tensor]) -> np.ndarray:
    """(N, 2048) float64 pool3 features of image batches in [0, 1]."""
    device = next(model.parameters()).device
    feats = [model(b.to(device, torch.float32))[0].flatten(1).double().cpu()
             for b in tqdm(batches, desc="FID features", unit="batch", leave=False, mininterval=2.0)]
    return torch.cat(feats).numpy()


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of (N, D) features (N >= 2): the moments `frechet_distance` takes."""
    _check_size(features)
    return features.mean(0), np.cov(features, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance of N(mu1, sigma1) and N(mu2, sigma2), from the moments alone (pytorch-fid's
    `calculate_frechet_distance`). A singular covariance's zero eigenvalues come back as round-off
    whose square roots (~1e-8 each) add up; with the features at hand `fid` has no such error."""
    return _frechet(np.atleast_1d(mu1), _root(sigma1), np.atleast_1d(mu2), _root(sigma2))


def fid(features1: np.ndarray, features2: np.ndarray) -> float:
    """FID between two sets of (N, D) Inception features, from their centred factors: as exact for
    the singular covariances of fewer images than features as for full-rank ones."""
    return _frechet(features1.mean(0), _factor(features1), features2.mean(0), _factor(features2))


def _frechet(mu1, a, mu2, b) -> float:
    """|mu1 - mu2|² + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^½) for sigma1 = aᵀa, sigma2 = bᵀb.

    sigma1 sigma2 = aᵀ(a bᵀ b) has the nonzero eigenvalues of (a bᵀ)(a bᵀ)ᵀ, so the trace of its root
    is the nuclear norm of a bᵀ: singular values straight from an SVD, never square roots of
    round-off-sized eigenvalues, nor a general matrix square root (scipy's sqrtm takes a minute at
    2048 dimensions).
    """
    diff = mu1 - mu2
    nuclear_norm = np.linalg.svd(a @ b.T, compute_uv=False).sum()
    return float(diff @ diff + (a * a).sum() + (b * b).sum() - 2 * nuclear_norm)


def _factor(features: np.ndarray) -> np.ndarray:
    """R of the QR of the centred features / √(N - 1): RᵀR is their covariance, and R has min(N, D)
    rows, so the product of two factors is at most D x D however many images there are."""
    _check_size(features)
    centred = (features - features.mean(0)) / np.sqrt(len(features) - 1)
    return np.linalg.qr(centred, mode="r")


def _root(sigma) -> np.ndarray:
    """diag(√w) Vᵀ of a covariance's eigendecomposition V diag(w) Vᵀ: a factor of it."""
    w, v = scipy.linalg.eigh(np.atleast_2d(sigma))
    return np.sqrt(np.clip(w, 0, None))[:, None] * v.T  # round-off leaves tiny negative eigenvalues


def _check_size(features: np.ndarray) -> None:
    if len(features) < 2:
        raise ValueError(f"FID needs at least 2 images per set, got {len(features)}")
