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
    feats = [model(b.to(device, torch.float32))[0].flatten(1).double().cpu() for b in batches]
    return torch.cat(feats).numpy()


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of (N, D) features (N >= 2)."""
    if len(features) < 2:
        raise ValueError(f"FID needs at least 2 images per set, got {len(features)}")
    return features.mean(0), np.cov(features, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, factor1: np.ndarray | None = None) -> float:
    """Fréchet distance of N(mu1, sigma1) and N(mu2, sigma2):
    |mu1 - mu2|² + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^½).

    With A any factor of sigma1 (AᵀA = sigma1), sigma1 sigma2 has the nonzero eigenvalues of the
    symmetric PSD matrix A sigma2 Aᵀ, so the trace is the sum of their square roots: one
    symmetric eigensolve, exact for the singular covariances of fewer images than features,
    where a general matrix square root (scipy's sqrtm) takes a minute at 2048 dimensions and
    warns that its result may be inaccurate. `factor1` defaults to sigma1's own square root.
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if factor1 is None:
        w, v = scipy.linalg.eigh(sigma1)
        factor1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    eigenvalues = scipy.linalg.eigvalsh(factor1 @ sigma2 @ factor1.T)
    trace_sqrt = np.sqrt(np.clip(eigenvalues, 0, None)).sum()  # round-off leaves tiny negatives
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)


def fid(features1: np.ndarray, features2: np.ndarray) -> float:
    """FID between two sets of (N, D) Inception features."""
    if len(features1) > len(features2):  # the distance is symmetric; factor the smaller set
        features1, features2 = features2, features1
    (mu1, sigma1), (mu2, sigma2) = statistics(features1), statistics(features2)
    n, d = features1.shape
    # Fewer images than features: the centred features are a thinner factor than sigma1's root.
    factor1 = (features1 - mu1) / np.sqrt(n - 1) if n < d else None
    return frechet_distance(mu1, sigma1, mu2, sigma2, factor1)
