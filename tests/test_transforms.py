import numpy as np
import pytest
import torch

from reid_data.transforms import MEAN, STD, BatchAugment, denormalize, load_resized, normalize


def batch(b=6, h=16, w=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (b, 3, h, w), generator=g, dtype=torch.uint8)


def test_identity_when_everything_is_off():
    x = batch()
    out = BatchAugment(flip=0, pad=0, erasing=0)(x)
    assert torch.equal(out, normalize(x))  # the same elementwise ops on the same values
    # float32 round trip of values in [0, 1]: /255, -m, /s, *s, +m, each rounding by <= 2^-24
    # (relative to values <= 1): <= 5·2^-24 against the rounded x / 255
    assert torch.allclose(denormalize(out), x.float() / 255, rtol=0, atol=8 * 2.0 ** -24)


def test_pad_crop_is_a_shifted_window_of_the_padded_image():
    x = batch(b=32)
    out = BatchAugment(flip=0, pad=3, erasing=0, seed=1)(x)
    padded = torch.nn.functional.pad(normalize(x), (3, 3, 3, 3), value=0.0)
    # zero padding happens before normalisation: black, as torchvision pads a PIL image
    black = ((0 - torch.tensor(MEAN)) / torch.tensor(STD)).view(1, 3, 1, 1)
    padded = torch.where(torch.nn.functional.pad(torch.ones(1, 1, 16, 8), (3, 3, 3, 3)) > 0, padded, black)
    shifts = set()
    # cropping moves uint8 values, and normalize's elementwise IEEE ops (each correctly rounded)
    # give each value the same float wherever it sits: the window is equal bit for bit
    for i in range(len(x)):
        found = [(dy, dx) for dy in range(7) for dx in range(7)
                 if torch.equal(out[i], padded[i, :, dy:dy + 16, dx:dx + 8])]
        assert found, f"sample {i} is not a crop of its padded image"
        shifts.add(found[0])
    assert len(shifts) > 5  # offsets really vary


def test_flip_mirrors_a_share_of_the_batch():
    x = batch(b=200)
    out = BatchAugment(flip=0.5, pad=0, erasing=0, seed=2)(x)
    ref = normalize(x)
    # flipping moves values and normalize is elementwise: equal bit for bit
    flipped = [torch.equal(o, r.flip(2)) for o, r in zip(out, ref)]
    same = [torch.equal(o, r) for o, r in zip(out, ref)]
    assert all(f or s for f, s in zip(flipped, same))
    assert 60 < sum(flipped) < 140


def test_random_erasing_boxes():
    x = torch.full((400, 3, 64, 32), 255, dtype=torch.uint8)  # white: erased pixels (0) stand out
    out = BatchAugment(flip=0, pad=0, erasing=0.5, seed=3)(x)
    erased = (out == 0).all(1)  # (B, H, W)
    fractions = erased.float().mean((1, 2))
    hit = fractions > 0
    assert 150 < hit.sum() < 250
    assert fractions[hit].min() >= 0.015 and fractions[hit].max() <= 0.45
    for mask in erased[hit][:50]:  # every erased region is one axis-aligned box
        rows, cols = mask.any(1).nonzero(), mask.any(0).nonzero()
        box = mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert box.all()


def test_same_seed_same_batch_and_state_resumes():
    a, b = BatchAugment(seed=5), BatchAugment(seed=5)
    x = batch(b=8)
    assert torch.equal(a(x), b(x))
    state = a.state_dict()
    first = a(x)
    b.load_state_dict(state)
    assert torch.equal(b(x), first)
    assert not torch.equal(a(x), first)


def test_load_resized(tmp_path):
    from PIL import Image
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 20, 3), dtype=np.uint8))
    img.save(tmp_path / "a.png")
    t = load_resized(str(tmp_path / "a.png"), 16, 8)
    assert t.shape == (3, 16, 8) and t.dtype == torch.uint8
    same = load_resized(str(tmp_path / "a.png"), 40, 20)
    assert torch.equal(same, torch.from_numpy(np.array(img)).permute(2, 0, 1))


def test_unreadable_image_names_the_file(tmp_path):
    from reid_data import ImageReadError
    bad = tmp_path / "0001_c1s1_000001_00.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(ImageReadError, match="0001_c1s1_000001_00.jpg"):
        load_resized(str(bad), 16, 8)
