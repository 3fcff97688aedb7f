"""Generation metrics against independent computations and closed forms: SSIM, FID, LPIPS diversity."""
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg
import torch
import torchvision
from pytorch_fid.fid_score import calculate_frechet_distance

from models.weights import WeightsError
from reid_eval.generation import (ALEXNET_FILE, INCEPTION_FILE, LPIPSDistance, fid, fid_inception,
                                  frechet_distance, inception_features, pairwise_diversity, ssim, statistics)
from reid_eval.generation.ssim import masked_ssim

C1, C2 = 0.01 ** 2, 0.03 ** 2
EPS = np.finfo(np.float64).eps
EPS32 = float(np.finfo(np.float32).eps)
# ssim computes in float64 on the CPU: E[x²] - E[x]² over 121 weights loses ~121·eps64 of values
# <= 1, divided by at least C2 = 9e-4: ~1e-11; the result is then rounded to float32, <= 2^-25 for
# values of magnitude < 1. So one float32 ulp at 1 bounds the difference from any float64 value.
SSIM_TOL = EPS32


def slow_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM of one (C, H, W) pair straight from the definition: a weighted window at every
    position where the 11x11 window fits, per channel."""
    offsets = np.arange(11) - 5
    g = np.exp(-offsets ** 2 / (2 * 1.5 ** 2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    values = []
    for c in range(x.shape[0]):
        for i in range(x.shape[1] - 10):
            for j in range(x.shape[2] - 10):
                a, b = x[c, i:i + 11, j:j + 11], y[c, i:i + 11, j:j + 11]
                ma, mb = (w * a).sum(), (w * b).sum()
                va, vb = (w * (a - ma) ** 2).sum(), (w * (b - mb) ** 2).sum()
                cov = (w * (a - ma) * (b - mb)).sum()
                values.append((2 * ma * mb + C1) * (2 * cov + C2) / ((ma ** 2 + mb ** 2 + C1) * (va + vb + C2)))
    return float(np.mean(values))


def test_ssim_matches_the_definition_per_pixel():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 14)
    y = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    y[1] = torch.rand(3, 16, 14)  # an unrelated image too
    ours = ssim(x, y)
    assert ours.shape == (2,)
    for k in range(2):
        assert ours[k].item() == pytest.approx(slow_ssim(x[k].double().numpy(), y[k].double().numpy()), abs=SSIM_TOL)


def test_masked_ssim_averages_the_windows_centred_in_the_mask():
    """Against the definition: the windows whose centre pixel is in the mask, averaged over channels."""
    torch.manual_seed(1)
    x = torch.rand(2, 3, 16, 14)
    y = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    mask = torch.zeros(2, 1, 16, 14, dtype=torch.bool)
    mask[0, 0, 4:12, 3:9] = True
    mask[1, 0, 0:5, :] = True  # rows 0-4 only: no whole window is centred there
    ours = masked_ssim(x, y, mask)
    offsets = np.arange(11) - 5
    g = np.exp(-offsets ** 2 / (2 * 1.5 ** 2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    a, b = x[0].double().numpy(), y[0].double().numpy()
    values = []
    for i in range(5, 11):  # centre rows 4..11 that have a whole window: 5..10
        for j in range(5, 9):  # centre columns 3..8 with a whole window: 5..8
            per_channel = []
            for c in range(3):
                pa, pb = a[c, i - 5:i + 6, j - 5:j + 6], b[c, i - 5:i + 6, j - 5:j + 6]
                ma, mb = (w * pa).sum(), (w * pb).sum()
                va, vb = (w * (pa - ma) ** 2).sum(), (w * (pb - mb) ** 2).sum()
                cov = (w * (pa - ma) * (pb - mb)).sum()
                per_channel.append((2 * ma * mb + C1) * (2 * cov + C2) / ((ma ** 2 + mb ** 2 + C1) * (va + vb + C2)))
            values.append(np.mean(per_channel))
    assert ours[0].item() == pytest.approx(np.mean(values), abs=SSIM_TOL)
    assert torch.isnan(ours[1])  # no window centre in the mask
    whole = torch.ones(2, 1, 16, 14, dtype=torch.bool)
    assert torch.allclose(masked_ssim(x, y, whole), ssim(x, y), rtol=0, atol=SSIM_TOL)


def test_ssim_known_properties():
    torch.manual_seed(0)
    x = torch.rand(3, 3, 32, 16)
    assert torch.allclose(ssim(x, x), torch.ones(3), rtol=0, atol=SSIM_TOL)
    noisy = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    noisier = (x + 0.3 * torch.randn_like(x)).clamp(0, 1)
    assert torch.allclose(ssim(x, noisy), ssim(noisy, x), rtol=0, atol=SSIM_TOL)
    assert (ssim(x, noisier) < ssim(x, noisy)).all() and (ssim(x, noisy) < 1).all()
    # flat images: only the luminance term is left, (2ab + C1) / (a² + b² + C1)
    a, b = 0.3, 0.7
    flat = ssim(torch.full((1, 3, 12, 12), a), torch.full((1, 3, 12, 12), b))
    a, b = float(np.float32(a)), float(np.float32(b))  # the values the images hold
    # float64 arithmetic (the variances cancel to ~eps64, against C2), then one float32 rounding
    assert flat.item() == pytest.approx((2 * a * b + C1) / (a * a + b * b + C1), rel=EPS32)
    with pytest.raises(ValueError, match="smaller than"):
        ssim(torch.rand(1, 3, 8, 32), torch.rand(1, 3, 8, 32))


def random_covariance(rng, d):
    m = rng.normal(size=(d, d))
    return m @ m.T / d + 0.1 * np.eye(d)


def sqrtm_frechet(mu1, s1, mu2, s2):
    """The textbook formula with a general matrix square root."""
    return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1 + s2 - 2 * np.real(scipy.linalg.sqrtm(s1 @ s2))))


# The Fréchet terms are float64 sums of about N·D products, each step backward stable (eigh, QR,
# SVD): their round-off is ~N·D·eps ≈ 1e-13 of the traces at these sizes, whatever BLAS kernel runs;
# 1e-11 leaves a hundredfold margin.
ROUND_OFF = 1e-11


@pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")  # inside pytorch-fid
def test_frechet_distance_closed_forms():
    rng = np.random.default_rng(0)
    d = 8
    mu, sigma = rng.normal(size=d), random_covariance(rng, d)
    scale = np.trace(sigma)  # the size of the terms that cancel
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0, abs=ROUND_OFF * scale)
    shift = rng.normal(size=d)
    assert frechet_distance(mu, sigma, mu + shift, sigma) == pytest.approx(shift @ shift, abs=ROUND_OFF * scale)
    a, b = rng.uniform(0.1, 2, d), rng.uniform(0.1, 2, d)  # diagonal: sum of (sqrt a - sqrt b)²
    assert frechet_distance(mu, np.diag(a), mu, np.diag(b)) == pytest.approx(((a ** .5 - b ** .5) ** 2).sum(),
                                                                             abs=ROUND_OFF * (a + b).sum())
    mu2, sigma2 = rng.normal(size=d), random_covariance(rng, d)
    # scipy's sqrtm (Schur) is accurate to about cond(sigma sigma2)·eps; both are well conditioned here
    assert np.linalg.cond(sigma @ sigma2) < 1e4
    expected = sqrtm_frechet(mu, sigma, mu2, sigma2)
    assert frechet_distance(mu, sigma, mu2, sigma2) == pytest.approx(expected, rel=1e-9)
    assert calculate_frechet_distance(mu, sigma, mu2, sigma2) == pytest.approx(expected, rel=1e-9)


@pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")  # inside pytorch-fid
def test_fid_equals_pytorch_fid_with_more_images_than_features():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(50, 6)), rng.normal(size=(53, 6)) * 1.5 + 0.2
    (mu1, sigma1), (mu2, sigma2) = statistics(x), statistics(y)
    assert np.linalg.cond(sigma1 @ sigma2) < 10  # where pytorch-fid's sqrtm is accurate (~cond·eps)
    expected = calculate_frechet_distance(mu1, sigma1, mu2, sigma2)
    assert fid(x, y) == pytest.approx(expected, abs=ROUND_OFF * (np.trace(sigma1) + np.trace(sigma2)))


def test_fid_of_feature_sets_including_fewer_images_than_features():
    rng = np.random.default_rng(1)
    for n, d in ((50, 6), (7, 40)):  # full-rank and singular covariances
        x, y = rng.normal(size=(n, d)), rng.normal(size=(n + 3, d)) * 1.5 + 0.2
        (_, sigma1), (_, sigma2) = statistics(x), statistics(y)
        scale = np.trace(sigma1) + np.trace(sigma2)  # the size of the terms that cancel
        assert fid(x, x) == pytest.approx(0, abs=ROUND_OFF * scale)
        shift = rng.normal(size=d)
        assert fid(x, x + shift) == pytest.approx(shift @ shift, abs=ROUND_OFF * scale)  # only the mean moves
        # independent: tr((S1 S2)^½) is the nuclear norm of B Aᵀ for centred features A, B
        a, b = (x - x.mean(0)) / np.sqrt(len(x) - 1), (y - y.mean(0)) / np.sqrt(len(y) - 1)
        dmu = x.mean(0) - y.mean(0)
        reference = dmu @ dmu + (a * a).sum() + (b * b).sum() - 2 * np.linalg.norm(b @ a.T, "nuc")
        assert fid(x, y) == pytest.approx(reference, abs=ROUND_OFF * scale)
        assert fid(y, x) == pytest.approx(reference, abs=ROUND_OFF * scale)
        # from the moments alone, each of a singular covariance's zero eigenvalues comes back as
        # round-off ~eps·scale, its square root as √eps·scale: d of them at most
        assert frechet_distance(*statistics(x), *statistics(y)) == pytest.approx(reference,
                                                                                 abs=d * np.sqrt(EPS) * scale)
    with pytest.raises(ValueError, match="at least 2"):
        fid(x[:1], y)


@pytest.mark.parametrize("kernel", ["Haswell", "Nehalem"])  # AVX2 and SSE kernels: any x86-64 CPU runs them
def test_frechet_terms_hold_with_other_blas_kernels(kernel):
    """numpy's OpenBLAS picks its kernels (and so the last digits) by CPU: run the Fréchet tests with
    others forced, so every machine checks more than its own."""
    env = {**os.environ, "OPENBLAS_CORETYPE": kernel}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
                          "-k", "frechet_distance_closed_forms or fid_equals or fewer_images_than"],
                         env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:]


@pytest.fixture(scope="module")
def random_inception():
    return fid_inception(False)


def test_fid_inception_topology_random_and_from_a_file(random_inception, tmp_path):
    torch.manual_seed(0)
    images = torch.rand(2, 3, 64, 32)
    feats = inception_features(random_inception, [images[:1], images[1:]])
    assert feats.shape == (2, 2048) and feats.dtype == np.float64 and np.isfinite(feats).all()
    assert not np.allclose(feats[0], feats[1])
    # seeded: reproducible (the same batches: a batch of 2 may run other conv kernels, so only
    # equal within float32 round-off)
    assert np.array_equal(inception_features(fid_inception(False), [images[:1], images[1:]]), feats)
    # pytorch-fid's file holds the bare network's parameters, as torchvision's 1008-class Inception names them
    state = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008,
                                            init_weights=False).state_dict()
    path = tmp_path / INCEPTION_FILE
    torch.save(state, path)
    from_file = fid_inception(str(path))
    assert torch.equal(from_file.blocks[0][0].conv.weight, state["Conv2d_1a_3x3.conv.weight"])
    assert torch.equal(from_file.blocks[3][2].branch_pool.conv.weight, state["Mixed_7c.branch_pool.conv.weight"])
    torch.save(random_inception.state_dict(), path)  # some other layout
    with pytest.raises(WeightsError, match="does not fit pytorch-fid's InceptionV3"):
        fid_inception(str(path))


def test_missing_weights_are_one_sentence_naming_the_file(monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    for build, name in ((fid_inception, INCEPTION_FILE), (LPIPSDistance, ALEXNET_FILE)):
        with pytest.raises(WeightsError) as err:
            build(True)
        message = str(err.value)
        assert name in message and str(tmp_path / "hub" / "checkpoints") in message and "\n" not in message
    with pytest.raises(WeightsError, match="does not exist"):
        fid_inception(str(tmp_path / "nowhere.pth"))


def test_lpips_distance_random_backbone_and_backbone_file(tmp_path):
    torch.manual_seed(0)
    x, y = torch.rand(2, 3, 64, 32), torch.rand(2, 3, 64, 32)
    rand = LPIPSDistance(False)
    assert not rand.pretrained_backbone
    # 0 when both stacks of features run the same kernels; any round-off δ (~1e-5 relative) between
    # them enters squared, δ² ~ 1e-10
    assert torch.allclose(rand(x, x), torch.zeros(2), rtol=0, atol=1e-6)
    assert (rand(x, y) > 0).all()
    assert torch.equal(LPIPSDistance(False)(x, y), rand(x, y))  # seeded: the same every run
    alexnet = torchvision.models.alexnet(weights=None)
    path = tmp_path / ALEXNET_FILE
    torch.save(alexnet.state_dict(), path)
    loaded = LPIPSDistance(str(path))
    assert loaded.pretrained_backbone
    assert torch.equal(getattr(loaded.lpips.net.slice2, "3").weight, alexnet.features[3].weight)
    torch.save({"conv.weight": torch.zeros(1)}, path)
    with pytest.raises(WeightsError, match="not torchvision's AlexNet"):
        LPIPSDistance(str(path))


def test_pairwise_diversity_is_the_mean_over_pairs_within_groups():
    torch.manual_seed(0)
    distance = LPIPSDistance(False)
    groups = torch.rand(2, 3, 3, 64, 32)
    pairs = [distance(groups[g, i:i + 1], groups[g, j:j + 1]).item()
             for g in range(2) for i in range(3) for j in range(i + 1, 3)]
    # batches of 4 against batches of 1: other conv kernels, other float32 summation orders. Each
    # layer's K-term dot products (K = C_in·kh·kw) err by ~sqrt(K)·eps32 relative, and the layers'
    # errors add: relative error ~ eps32·Σ sqrt(K) (~2.5e-5), on each side.
    convs = [m for m in distance.lpips.net.modules() if isinstance(m, torch.nn.Conv2d)]
    rel = 2 * EPS32 * sum((m.in_channels * m.kernel_size[0] * m.kernel_size[1]) ** 0.5 for m in convs)
    assert pairwise_diversity(distance, groups, batch_size=4) == pytest.approx(np.mean(pairs), rel=rel)
    same = groups[:, :1].expand(2, 4, 3, 64, 32)
    # identical images: 0, or round-off squared (see the test above)
    assert pairwise_diversity(distance, same) == pytest.approx(0, abs=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        pairwise_diversity(distance, groups[:, :1])
