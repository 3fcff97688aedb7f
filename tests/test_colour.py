"""CIELAB conversion, CIEDE2000, Reinhard colour transfer and the masked mean ΔE00."""
import math

import pytest
import torch

from reid_eval.generation import ciede2000, lab_to_rgb, masked_mean_delta_e, reinhard_transfer, rgb_to_lab

# Sharma, Wu & Dalal (2005), Table 1: L1 a1 b1 L2 a2 b2 ΔE00.
SHARMA = [
    (50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425),
    (50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615),
    (50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412),
    (50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669),
    (50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461),
    (50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065),
    (50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492),
    (50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977),
    (50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030),
    (50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000),
    (60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644),
    (63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630),
    (61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731),
    (35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645),
    (22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373),
    (36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146),
    (90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441),
    (90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381),
    (6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377),
    (2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082),
]
# The table's ΔE00 is rounded to 4 decimals: the exact value lies within half a unit of the last
# digit; float64 arithmetic adds nothing visible at that scale.
TABLE_TOL = 0.5e-4 + 1e-9
# float32 has a 24-bit significand: one unit in the last place of a value in [0.5, 1) is 2^-24.
# Results computed in float64 and rounded once to float32 are off by at most half that (plus
# float64 error, orders of magnitude smaller), so one ulp at 1 bounds them for values in [0, 1].
F32_ULP_AT_1 = 2.0 ** -23
# A float32 Lab image carries a rounding error of at most 2^-24 relative: <= 100·2^-24 in L and
# <= 128·2^-24 in a, b (the sRGB gamut's extent). Through f (slopes 1/116, 1/500, 1/200) that is
# <= 1.5·2^-24; through f³ (slope <= 3 in the gamut, where f <= 1) and the white point (<= 1.09)
# <= 4.9·2^-24 in XYZ; through the inverse matrix (absolute row sums <= 5.28) and the sRGB
# companding (slope <= 12.92) <= 335·2^-24 in RGB, before the output's own rounding.
LAB32_ROUND_TRIP = 335 * 2.0 ** -24 + F32_ULP_AT_1


def test_ciede2000_matches_sharma_table():
    data = torch.tensor(SHARMA, dtype=torch.float64)
    lab1, lab2, expected = data[:, 0:3], data[:, 3:6], data[:, 6]
    assert len(SHARMA) == 34
    got = ciede2000(lab1, lab2)
    assert got.shape == (34,) and got.dtype == torch.float64
    # (pairs 10 and 14 are exactly antipodal in hue: |h1' - h2'| = 180 up to the last bits of atan2,
    # and the table's value is that of the <= 180 branch of eq. 14)
    assert (got - expected).abs().max() <= TABLE_TOL
    # the formula is symmetric in its arguments (the table lists pairs 7 and 8 both ways): swapping
    # only flips signs, so the float64 results agree to a few ulps of ΔE <= 32 (ulp 7e-15)
    assert torch.allclose(ciede2000(lab2, lab1), got, rtol=0, atol=1e-12)
    # image layout (..., 3, H, W): the 34 pairs as a 2 x 17 image, channels at dim -3 (the same
    # elementwise float64 ops on the same values: a few ulps at most)
    as_image = lambda lab: lab.T.reshape(1, 3, 2, 17)  # noqa: E731
    assert torch.allclose(ciede2000(as_image(lab1), as_image(lab2)), got.reshape(1, 2, 17), rtol=0, atol=1e-12)


def test_ciede2000_neutral_and_identical_colours():
    lab = torch.tensor([[50.0, 0.0, 0.0], [20.0, 0.0, 0.0], [70.0, 10.0, -3.0]], dtype=torch.float64)
    assert torch.equal(ciede2000(lab, lab), torch.zeros(3, dtype=torch.float64))
    # two neutral colours differ in lightness only: ΔE00 = |ΔL| / S_L (eq. 22 with ΔC = ΔH = 0)
    L_bar = 35.0
    s_l = 1 + 0.015 * (L_bar - 50) ** 2 / math.sqrt(20 + (L_bar - 50) ** 2)
    # float64, a value of 26 computed through a dozen roundings: ~1e-14; 1e-12 leaves margin
    assert ciede2000(lab[0], lab[1]).item() == pytest.approx(30 / s_l, abs=1e-12)


def test_rgb_to_lab_known_values():
    rgb = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]).T.reshape(3, 1, 3)
    lab = rgb_to_lab(rgb)[:, 0].T
    assert lab.dtype == torch.float32 and lab.shape == (3, 3)
    # white maps to (100, 0, 0) up to float64 error; the float32 output rounds that to <= 1 ulp at 100
    assert torch.allclose(lab[0], torch.tensor([100.0, 0.0, 0.0]), rtol=0, atol=100 * F32_ULP_AT_1)
    assert torch.equal(lab[1], torch.zeros(3))
    # the reference is rounded to 4 decimals (<= 0.5e-4) and the output to float32 (<= 2^-24 · 128)
    assert torch.allclose(lab[2], torch.tensor([53.2408, 80.0925, 67.2032]), rtol=0, atol=0.5e-4 + 128 * 2.0 ** -24)


def test_lab_round_trip():
    torch.manual_seed(0)
    x = torch.rand(2, 4, 3, 9, 7)
    x[0, 0, :, 0, :3] = torch.tensor([0.0, 1.0, 0.02])   # black, white, a grey on the linear segment
    lab = rgb_to_lab(x)
    # L <= 100 up to float64 error, which rounding to float32 cannot lift above one ulp at 100
    assert lab.shape == x.shape and lab[..., 0, :, :].min() >= 0 and lab[..., 0, :, :].max() <= 100 * (1 + F32_ULP_AT_1)
    assert (lab_to_rgb(lab) - x).abs().max() <= LAB32_ROUND_TRIP
    # float64 throughout: the propagation above with float64's unit roundoff, 335·2^-53 = 4e-14 per
    # rounding of the Lab values, and 1e-12 leaves room for the couple of dozen roundings on the way
    assert (lab_to_rgb(rgb_to_lab(x.double())) - x.double()).abs().max() <= 1e-12
    # out-of-gamut Lab is clamped, not NaN
    far = lab_to_rgb(torch.tensor([[[[50.0]], [[300.0]], [[-300.0]]]]))
    assert torch.isfinite(far).all() and far.min() >= 0 and far.max() <= 1


def lab_stats(rgb, mask=None):
    """Per-image, per-channel Lab mean and population std over the mask's pixels: (B, 3) each."""
    lab = rgb_to_lab(rgb)
    means, stds = [], []
    for k in range(len(rgb)):
        pixels = lab[k].flatten(1) if mask is None else lab[k][:, mask[k, 0]]
        means.append(pixels.mean(1))
        stds.append(pixels.std(1, correction=0))
    return torch.stack(means), torch.stack(stds)


def mild_images(seed, tint):
    """(2, 3, 12, 10) float64 RGB images of small variation about a tinted grey, far from the gamut's
    edges so that a transfer between two of them needs no clamping."""
    g = torch.Generator().manual_seed(seed)
    base = torch.tensor(tint, dtype=torch.float64).view(1, 3, 1, 1)
    return base + 0.08 * torch.rand(2, 3, 12, 10, generator=g, dtype=torch.float64)


# float64 throughout: the output's Lab values (<= 100) go Lab -> RGB -> Lab once more, whose round
# trip is off by <= ~335·2^-53 = 4e-14 in RGB (see above) times a Lab-per-RGB slope <= ~1e3 for these
# mid-range colours; means and stds over <= 120 pixels do not enlarge that: ~4e-11, so 1e-10.
REINHARD64 = 1e-10


def test_reinhard_transfer_moves_the_statistics():
    source, target = mild_images(0, (0.35, 0.45, 0.5)), mild_images(1, (0.55, 0.45, 0.35))
    out = reinhard_transfer(source, target)
    assert out.shape == source.shape and out.dtype == torch.float64
    assert out.min() > 0 and out.max() < 1   # no clamping, so the Lab statistics are exact
    (mean_o, std_o), (mean_t, std_t) = lab_stats(out), lab_stats(target)
    assert torch.allclose(mean_o, mean_t, rtol=0, atol=REINHARD64) and torch.allclose(std_o, std_t, rtol=0, atol=REINHARD64)


def test_reinhard_transfer_masked_statistics():
    source, target = mild_images(2, (0.4, 0.4, 0.5)), mild_images(3, (0.5, 0.4, 0.4))
    g = torch.Generator().manual_seed(4)
    mask_s, mask_t = (torch.rand(2, 2, 1, 12, 10, generator=g) < 0.4).unbind(0)
    out = reinhard_transfer(source, target, mask_s, mask_t.float())   # bool and 0/1 masks alike
    assert out.min() > 0 and out.max() < 1
    (mean_o, std_o), (mean_t, std_t) = lab_stats(out, mask_s), lab_stats(target, mask_t)
    assert torch.allclose(mean_o, mean_t, rtol=0, atol=REINHARD64) and torch.allclose(std_o, std_t, rtol=0, atol=REINHARD64)
    # the masks matter: the unmasked statistics of the output are not the target's masked ones
    assert not torch.allclose(lab_stats(out)[0], mean_t, rtol=0, atol=1e-3)
    # an empty source mask leaves its image without statistics
    empty = mask_s.clone()
    empty[1] = False
    out = reinhard_transfer(source, target, empty, mask_t)
    assert torch.isfinite(out[0]).all() and torch.isnan(out[1]).all()


def test_reinhard_transfer_of_an_image_to_itself_is_the_image():
    torch.manual_seed(0)
    x = torch.rand(3, 3, 8, 6)
    out = reinhard_transfer(x, x)
    assert out.dtype == torch.float32 and (out - x).abs().max() <= F32_ULP_AT_1


def test_masked_mean_delta_e():
    torch.manual_seed(0)
    a, b = torch.rand(3, 3, 5, 4), torch.rand(3, 3, 5, 4)
    mask = torch.rand(3, 1, 5, 4) < 0.5
    mask[0, 0, 0, 0] = True
    mask[2] = False
    assert torch.equal(masked_mean_delta_e(a, a, mask)[:2], torch.zeros(2))
    got = masked_mean_delta_e(a, b, mask)
    assert got.shape == (3,) and got.dtype == torch.float32 and torch.isnan(got[2]) and not torch.isnan(got[:2]).any()
    lab_a, lab_b = rgb_to_lab(a.double()), rgb_to_lab(b.double())
    for k in range(2):
        values = [ciede2000(lab_a[k, :, i, j], lab_b[k, :, i, j]).item()
                  for i in range(5) for j in range(4) if mask[k, 0, i, j]]
        # the same float64 values summed in another order, then rounded once to float32
        assert got[k].item() == pytest.approx(sum(values) / len(values), rel=2.0 ** -23, abs=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    torch.manual_seed(0)
    a, b = torch.rand(2, 3, 16, 8), torch.rand(2, 3, 16, 8)
    mask = torch.rand(2, 1, 16, 8) < 0.5
    cuda = [f(*(t.cuda() for t in args)).cpu() for f, args in
            [(rgb_to_lab, (a,)), (reinhard_transfer, (a, b)), (masked_mean_delta_e, (a, b, mask))]]
    cpu = [rgb_to_lab(a), reinhard_transfer(a, b), masked_mean_delta_e(a, b, mask)]
    # float64 on both devices, so the math libraries' last-bit differences vanish in the final float32
    # rounding but for one ulp (2^-23 relative); atol for values near 0, e.g. a* = 500·(fx - fy)
    for x, y in zip(cuda, cpu):
        assert torch.allclose(x, y, rtol=2.0 ** -22, atol=1e-6)
