"""The synthetic world: Market layout through the real loaders, ground truth, determinism,
re-rendering at another yaw, the CLI and the registry."""
import json
import os
import re
from dataclasses import asdict

import numpy as np
import pytest
import torch
from PIL import Image

import reid_data.synthetic  # noqa: F401  (registers `synthetic`)
from reid_data import DATASETS, build_dataset
from reid_data.synthetic import dataset as synthetic_dataset
from configs.errors import UserError
from reid_data.synthetic.__main__ import main as cli_main
from reid_data.synthetic.ground_truth import load_ground_truth, render_ground_truth
from reid_data.synthetic.identities import DETAILS, GARMENT_FIELDS, dressed, near_duplicate, sample_identity
from reid_data.synthetic.writer import SPLIT_FOLDERS, WorldConfig, write_world

SMALL = dict(ids=6, cameras=3, height=64, width=32, min_images=6, max_images=8, seed=3)
NAME = re.compile(r"^(-1|\d{4})_c(\d)s1_(\d{6})_00\.jpg$")


def files(root):
    return {sub: sorted(os.listdir(os.path.join(root, sub))) for sub in SPLIT_FOLDERS.values()}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world") / "synthetic"
    summary = write_world(root, WorldConfig(**SMALL), progress=False)
    return root, summary


def test_market_loader_reads_the_world(world):
    root, summary = world
    data = build_dataset("market1501", str(root))
    names = files(root)
    assert len(data.train) == len(names["bounding_box_train"]) == summary["train"]
    assert len(data.query) == len(names["query"]) == summary["query"]
    assert len(data.gallery) == len(names["bounding_box_test"]) == summary["gallery"]
    # train ids relabelled 0..C-1; half of the identities train, half test
    assert sorted({s.pid for s in data.train}) == list(range(SMALL["ids"] // 2))
    assert len(data.train_ids) == SMALL["ids"] // 2 and min(data.train_ids) >= 1
    test_ids = {s.pid for s in data.query}
    assert len(test_ids) == SMALL["ids"] - SMALL["ids"] // 2
    assert not test_ids & set(data.train_ids) and min(test_ids) >= 1
    gallery_ids = {s.pid for s in data.gallery}
    assert 0 in gallery_ids and -1 in gallery_ids              # distractors and junk
    assert test_ids <= gallery_ids
    for split in (data.train, data.query, data.gallery):
        assert {s.camid for s in split} <= set(range(SMALL["cameras"]))
    assert {s.camid for s in data.query + data.gallery} == set(range(SMALL["cameras"]))
    # query: one image per test identity per camera it appears in; each has a match elsewhere
    pairs = [(s.pid, s.camid) for s in data.query]
    assert len(pairs) == len(set(pairs))
    for pid, cam in pairs:
        seen = {s.camid for s in data.gallery if s.pid == pid}
        assert cam in seen and seen - {cam}
    for sub, entries in names.items():
        for name in entries:
            assert NAME.match(name), name


def test_registry_loads_and_generates_the_world(world, tmp_path, monkeypatch):
    root, _ = world
    assert "synthetic" in DATASETS
    data = build_dataset("synthetic", str(root.parent))     # the data root holding synthetic/
    assert data.name == "synthetic" and len(data.query) > 0
    assert len(build_dataset("synthetic", str(root)).gallery) == len(data.gallery)
    # first use: an empty (or missing) folder is written with the default world
    monkeypatch.setattr(synthetic_dataset, "default_world",
                        lambda: WorldConfig(**{**SMALL, "ids": 4, "seed": 5}))
    (tmp_path / "synthetic").mkdir()
    fresh = build_dataset("synthetic", str(tmp_path))
    assert len({s.pid for s in fresh.train}) == 2
    assert (tmp_path / "synthetic" / "ground_truth.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".synthetic-")]


def test_a_config_asks_for_another_world_and_a_folder_holding_another_is_refused(world, tmp_path):
    from reid_data import DatasetError
    root, _ = world
    asked = {**SMALL, "ids": 4, "seed": 5}
    fresh = build_dataset("synthetic", str(tmp_path), world=asked)        # written on first use
    assert len({s.pid for s in fresh.train}) == 2
    written = json.loads((tmp_path / "synthetic" / "ground_truth.json").read_text())["config"]
    assert {k: written[k] for k in asked} == asked
    assert len(build_dataset("synthetic", str(tmp_path), world=asked).train) == len(fresh.train)
    with pytest.raises(DatasetError, match=r"written with ids 6, seed 3, not data.world's ids 4, seed 5"):
        build_dataset("synthetic", str(root), world=asked)                 # never the wrong world
    with pytest.raises(DatasetError, match="data.world has colour, sead, which a synthetic world does not"):
        build_dataset("synthetic", str(tmp_path), world={"sead": 5, "colour": 1})


def test_ground_truth_matches_the_files(world):
    root, summary = world
    gt = load_ground_truth(root)
    doc = json.loads((root / "ground_truth.json").read_text())
    on_disk = {(SPLIT_FOLDERS[r["split"]], r["name"]) for r in doc["images"]}
    assert on_disk == {(sub, n) for sub, entries in files(root).items() for n in entries}
    assert len(gt) == summary["images"]
    n = len(gt)
    assert gt.arrays["betas"].shape == (n, 10) and gt.arrays["pose"].shape == (n, 24, 3)
    assert gt.arrays["K"].shape == (n, 3, 3) and gt.arrays["R"].shape == (n, 3, 3)
    assert gt.arrays["crop"].shape == (n, 4) and gt.arrays["yaw"].shape == (n,)
    frames = {}
    for r in doc["images"]:
        pid, cam, frame = NAME.match(r["name"]).groups()
        assert int(pid) == r["pid"] and int(cam) - 1 == r["camid"] and int(frame) == r["frame"]
        ident = gt.identities[r["identity"]]
        if r["pid"] > 0:                    # benchmark images: the identity of that pid
            assert ident["pid"] == r["pid"] and ident["role"] == "benchmark"
        elif r["pid"] == 0:
            assert ident["role"] == "distractor"
        frames.setdefault(r["camid"], []).append(r["frame"])
        rec = gt.record(r["name"])
        # the arrays are kept in float32: half an ulp of |beta| < 4 is 1.2e-7
        assert np.allclose(rec["betas"], ident["appearance"]["betas"], rtol=0, atol=1e-6)
        x0, y0, w, h = rec["crop"]
        assert w == pytest.approx(h / 2)                       # Market's 2:1 boxes
        assert rec["K"][0, 0] == pytest.approx(rec["K"][1, 1])
    for cam, fr in frames.items():                              # unique frames per camera
        assert len(fr) == len(set(fr))
    images = [r for r in doc["images"] if r["pid"] > 0]
    for r in images:
        assert Image.open(root / SPLIT_FOLDERS[r["split"]] / r["name"]).size == (32, 64)


def test_same_seed_same_bytes_other_seed_other_files(world, tmp_path):
    root, _ = world
    again = tmp_path / "again"
    write_world(again, WorldConfig(**SMALL), progress=False)
    assert files(again) == files(root)
    for sub, entries in files(root).items():
        for name in entries:
            assert (again / sub / name).read_bytes() == (root / sub / name).read_bytes(), name
    assert (again / "ground_truth.json").read_bytes() == (root / "ground_truth.json").read_bytes()
    a, b = np.load(root / "ground_truth.npz"), np.load(again / "ground_truth.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a.files)
    other = tmp_path / "other"
    write_world(other, WorldConfig(**{**SMALL, "seed": 4}), progress=False)
    first = files(root)["bounding_box_train"][0]
    assert files(other) != files(root) or \
        (other / "bounding_box_train" / first).read_bytes() != \
        (root / "bounding_box_train" / first).read_bytes()


def _clean_images(gt):
    """Benchmark images without an occluder, whose person is well inside the crop."""
    return [r["name"] for r in gt.images
            if r["pid"] > 0 and not r["look"]["occluder"] and r["kind"] == "walk"]


def test_rerender_at_own_yaw_matches_and_other_yaw_turns(world):
    root, _ = world
    gt = load_ground_truth(root)
    names = _clean_images(gt)[:6]
    ious = []
    for name in names:
        rec = gt.record(name)
        folder = SPLIT_FOLDERS[rec["split"]]
        written = torch.from_numpy(np.asarray(Image.open(root / folder / name),
                                              dtype=np.float32) / 255).permute(2, 0, 1)
        same = render_ground_truth(root, name, mode="rgb", degrade=True)
        m = same.mask[0] > 0.99
        assert same.image.shape == (3, 64, 32) and m.sum() > 50
        # everything but pixel noise reproduced: the JPEG's error and the noise remain
        assert (same.image - written).abs()[:, m].mean() < 0.04
        plain = render_ground_truth(root, name)                # the person only, on black
        assert torch.equal(plain.mask, same.mask)
        assert plain.image[:, ~(plain.mask[0] > 0)].abs().max() == 0
        assert (plain.image - written).abs()[:, m].mean() < 0.15
        assert torch.corrcoef(torch.stack([plain.image[:, m].ravel(),
                                           written[:, m].ravel()]))[0, 1] > 0.8
        turned = render_ground_truth(root, name, yaw=float(rec["yaw"]) + np.pi / 2)
        a, b = same.mask[0] > 0.5, turned.mask[0] > 0.5
        ious.append(float((a & b).sum() / (a | b).sum()))
        grey = render_ground_truth(root, name, yaw=float(rec["yaw"]) + np.pi / 2, mode="grey")
        assert torch.equal(grey.mask, turned.mask)
        g = grey.image[:, b]
        assert torch.allclose(g[0], g[1]) and torch.allclose(g[1], g[2]) and g.max() > 0.3
        # turning about the body's centre keeps the person where it stood
        ys, xs = torch.nonzero(b, as_tuple=True)
        ys0, xs0 = torch.nonzero(a, as_tuple=True)
        assert abs(float(xs.float().mean() - xs0.float().mean())) < 4
        assert abs(float(ys.max() - ys0.max())) <= 6          # feet: the stride turns too
    assert max(ious) < 0.9 and np.mean(ious) < 0.8          # a real change of silhouette


def test_cli_writes_a_world_and_refuses_a_full_folder(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["--out", str(out), "--ids", "4", "--cameras", "2", "--height", "32", "--width", "16",
            "--images", "4", "5", "--seed", "9", "--quiet"]
    returned = cli_main(args)
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary == returned and summary["images"] == sum(len(v) for v in files(out).values())
    with pytest.raises(UserError, match="not empty"):
        cli_main(args)


def test_near_duplicates_differ_in_one_detail():
    rng = np.random.default_rng(0)
    body_fields = {"betas", "stride", "arm_swing", "fabric_seed", "duplicate_of", "changed"}
    seen = set()
    for _ in range(150):
        base, body = sample_identity(rng), sample_identity(rng)
        dup = near_duplicate(rng, base, 7, body)
        assert dup.duplicate_of == 7 and dup.changed in DETAILS and dup.betas == body.betas
        a, b = asdict(base), asdict(dup)
        differ = {k for k in a if a[k] != b[k]} - body_fields
        assert 1 <= len(differ) <= 3, (dup.changed, differ)   # one detail (and its colours)
        seen.add(dup.changed)
    assert seen == set(DETAILS)


def _written(root, gt, name):
    folder = SPLIT_FOLDERS[gt.record(name)["split"]]
    return torch.from_numpy(np.asarray(Image.open(root / folder / name), dtype=np.float32) / 255).permute(2, 0, 1)


def test_dressed_takes_the_garments_and_keeps_the_body():
    rng = np.random.default_rng(0)
    person, clothes = sample_identity(rng), sample_identity(rng)
    out = asdict(dressed(person, clothes))
    for key, value in asdict(person).items():
        assert out[key] == (asdict(clothes)[key] if key in GARMENT_FIELDS else value), key


def test_true_swap_of_an_image_with_itself_is_the_image(world):
    root, _ = world
    gt = load_ground_truth(root)
    names = _clean_images(gt)[:3]
    truth = gt.render_swap(names, names)
    own, mask = gt.render(names, degrade=True)
    assert torch.equal(truth.image, own) and torch.equal(truth.mask, mask)
    for i, name in enumerate(names):
        m = mask[i, 0] > 0.99
        # everything but pixel noise: the JPEG's error and the noise remain (as the own-yaw re-render)
        assert (truth.image[i] - _written(root, gt, name)).abs()[:, m].mean() < 0.04


def test_true_swap_changes_only_the_garments(world):
    root, _ = world
    gt = load_ground_truth(root)
    names = _clean_images(gt)
    pairs = [(a, s) for a in names for s in names
             if gt.record(a)["identity"] != gt.record(s)["identity"]
             and gt.record(a)["appearance"].upper_color != gt.record(s)["appearance"].upper_color][:4]
    apps, structs = zip(*pairs)
    # without the camera's blur and resampling, which spread every change to neighbouring pixels
    swap = gt.render_swap(list(apps), list(structs), degrade=False)
    own = gt.render_swap(list(structs), list(structs), degrade=False)
    plain, _ = gt.render(list(structs), background=True, occlusion=True)
    assert torch.equal(own.image, plain)
    for k in range(len(pairs)):
        for g in (swap.garments[k], own.garments[k]):
            # parts are disjoint (a float32 sum of a few weights in [0, 1]: rounding stays below 1e-6)
            assert g.min() >= 0 and g.sum(0).max() <= 1 + 1e-5
            assert (g.sum(0) <= swap.mask[k, 0] + 1e-5).all()           # and on the person
        assert swap.garments[k, 0].sum() > 20 and swap.garments[k, 1].sum() > 20
        owned = (swap.garments[k].sum(0) > 0) | (own.garments[k].sum(0) > 0)
        assert torch.equal(swap.image[k][:, ~owned], own.image[k][:, ~owned])
        assert torch.equal(swap.mask[k], own.mask[k])                   # the same body
        upper = (swap.garments[k, 0] > 0.99) & (own.garments[k, 0] > 0.99)
        assert (swap.image[k][:, upper] - own.image[k][:, upper]).abs().max() > 0.05
