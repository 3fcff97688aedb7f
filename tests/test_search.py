"""reid_eval/search.py on a tiny teacher: the matches and distances against an embedding computed
here, the table, JSON and figure, the gallery-feature cache (reused when nothing changed, rebuilt
when a file or the checkpoint did) and the one-sentence errors."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from configs.loader import load_config
from models import build_reid_net
from reid_data import DatasetError, build_dataset
from reid_eval import figure, search
from runtime.checkpoint import CheckpointError, read_checkpoint

MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
TOP = 4
EPS32 = float(np.finfo(np.float32).eps)


def distance_tol(dim: int) -> float:
    """How far the search's float32 distance 2 - 2 q.g of unit vectors may lie from the float64 one
    here: a dim-term float32 dot product of unit vectors rounds by ~sqrt(dim) eps32 in any summation
    order a kernel may pick (Higham & Mary's probabilistic bound, lambda = 4; the worst case, dim eps32,
    assumes every rounding in one direction), each vector's normalisation by a few eps32 more."""
    return 2 * (4 * dim ** 0.5 + 4) * EPS32


def save_teacher(cfg, path: Path, seed: int) -> None:
    torch.manual_seed(seed)
    net = build_reid_net(cfg.model, 6)
    for m in net.modules():  # running statistics that matter, so a wrong BN mode would show
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"trainer": "teacher", "config": cfg.to_dict(), "modules": {"model": net.eval().state_dict()},
                "iteration": 5}, path)


@pytest.fixture
def world(tiny_cfg, tmp_path):
    """A tiny teacher's checkpoint, a gallery folder of toy images in sub-folders (some as png) with a
    non-image file, and a query folder of 3 toy query images."""
    cfg = tiny_cfg("model.backbone=resnet18")
    data = build_dataset("toy", cfg.data.root)
    checkpoint = tmp_path / "run" / "last.pt"
    save_teacher(cfg, checkpoint, seed=0)
    gallery, query = tmp_path / "gallery", tmp_path / "query"
    for i, s in enumerate(data.gallery[:30]):
        target = gallery / ("near" if i % 2 else "far/deeper") / Path(s.path).name
        target.parent.mkdir(parents=True, exist_ok=True)
        if i % 3 == 0:
            Image.open(s.path).save(target.with_suffix(".png"))
        else:
            shutil.copy(s.path, target)
    (gallery / "notes.txt").write_text("not an image")
    query.mkdir()
    for s in data.query[:3]:
        shutil.copy(s.path, query / Path(s.path).name)
    return cfg, checkpoint, gallery, query


def run(checkpoint, gallery, query, *extra) -> dict:
    return search.main(["--checkpoint", str(checkpoint), "--gallery", str(gallery), "--query", str(query),
                        "--top", str(TOP), "--device", "cpu", *extra])


def independent_features(checkpoint: Path, paths: list[Path], height: int, width: int) -> np.ndarray:
    """Unit embeddings (image + mirror image) computed here from the network's own forward."""
    state = read_checkpoint(checkpoint)
    net = build_reid_net(load_config(state["config"]).model, 6)
    net.load_state_dict(state["modules"]["model"])
    net.eval()
    pixels = np.stack([np.asarray(Image.open(p).convert("RGB").resize((width, height), Image.BICUBIC))
                       for p in paths]) / 255.0
    x = torch.from_numpy(((pixels - MEAN) / STD).transpose(0, 3, 1, 2)).float()
    with torch.no_grad():
        f = (net(x).embedding + net(x.flip(3)).embedding).double().numpy()
    return f / np.linalg.norm(f, axis=1, keepdims=True)


def expected_matches(checkpoint, gallery: Path, query: list[Path], cfg) -> list[list[tuple[str, float]]]:
    files = sorted(p for p in gallery.rglob("*") if p.suffix in (".jpg", ".png"))
    g = independent_features(checkpoint, files, cfg.data.height, cfg.data.width)
    q = independent_features(checkpoint, query, cfg.data.height, cfg.data.width)
    d = np.maximum(2 - 2 * q @ g.T, 0)
    nearest = [sorted(range(len(files)), key=lambda j: (d[i, j], j)) for i in range(len(query))]
    # no two of the first TOP + 1 distances within the search's rounding: the order is the computation's
    tol = distance_tol(g.shape[1])
    assert all(np.diff(d[i, order[:TOP + 1]]).min() > 2 * tol for i, order in enumerate(nearest))
    return [[(str(files[j]), d[i, j]) for j in order[:TOP]] for i, order in enumerate(nearest)], tol


def test_matches_are_the_nearest_by_evaluations_distance(world, capsys):
    cfg, checkpoint, gallery, query = world
    got = run(checkpoint, gallery, query)
    assert got["gallery_images"] == 30 and got["trainer"] == "teacher" and not got["from_cache"]
    queries = sorted(query.iterdir())
    assert [q["query"] for q in got["queries"]] == [str(p) for p in queries]
    matches, tol = expected_matches(checkpoint, gallery, queries, cfg)
    for found, expected in zip(got["queries"], matches):
        assert [m["rank"] for m in found["matches"]] == list(range(1, TOP + 1))
        assert [m["file"] for m in found["matches"]] == [f for f, _ in expected]
        assert [m["distance"] for m in found["matches"]] == pytest.approx([d for _, d in expected], abs=tol)
    table = capsys.readouterr().out
    first = got["queries"][0]["matches"][0]
    assert f"query {queries[0]}" in table and f"     1  {first['distance']:>8.4f}  {first['file']}" in table


def test_json_figure_and_a_single_query_image(world, capsys, tmp_path):
    cfg, checkpoint, gallery, query = world
    one = sorted(query.iterdir())[1]
    got = run(checkpoint, gallery, one, "--json", "--figure", str(tmp_path / "out" / "search.png"))
    assert json.loads(capsys.readouterr().out) == got and len(got["queries"]) == 1
    page = np.asarray(Image.open(tmp_path / "out" / "search.png").convert("RGB"))
    h, w = cfg.data.height, cfg.data.width
    cell_w, cell_h = w + 2 * figure.FRAME, h + 2 * figure.FRAME + 2 * figure.LINE + figure.PAD
    top = 2 * figure.LINE + 2 * figure.PAD
    assert page.shape[0] == top + cell_h + figure.PAD
    frames = [tuple(page[top + 1, figure.PAD + c * (cell_w + figure.PAD) + (figure.GAP if c else 0) + 1])
              for c in range(1 + TOP)]
    assert frames == [figure.QUERY] + [search.RANKED] * TOP
    # the first match drawn is the gallery image the search ranked first, at the model's size
    x = figure.PAD + cell_w + figure.PAD + figure.GAP + figure.FRAME
    drawn = page[top + figure.FRAME:top + figure.FRAME + h, x:x + w]
    first = np.asarray(Image.open(got["queries"][0]["matches"][0]["file"]).convert("RGB"))
    assert np.array_equal(drawn, first)


def test_the_gallery_cache_is_reused_until_a_file_or_the_checkpoint_changes(world):
    cfg, checkpoint, gallery, query = world
    first = run(checkpoint, gallery, query)
    assert not first["from_cache"] and Path(first["gallery_cache"]).parent == Path(f"{checkpoint}.search-cache")
    again = run(checkpoint, gallery, query)
    assert again["from_cache"] and again["queries"] == first["queries"]

    # a changed file: a gallery image replaced by the first query (lossless), now its match at distance 0
    queries = sorted(query.iterdir())
    victim = sorted(gallery.rglob("*.png"))[0]
    Image.open(queries[0]).save(victim)
    changed = run(checkpoint, gallery, query)
    assert not changed["from_cache"]
    _, tol = expected_matches(checkpoint, gallery, queries, cfg)
    assert changed["queries"][0]["matches"][0] == {"rank": 1, "distance": pytest.approx(0, abs=tol),
                                                    "file": str(victim)}
    assert run(checkpoint, gallery, query)["from_cache"]

    # an added file
    shutil.copy(queries[2], gallery / "near" / "added.jpg")
    added = run(checkpoint, gallery, query)
    assert not added["from_cache"] and added["gallery_images"] == 31
    assert added["queries"][2]["matches"][0]["file"] == str(gallery / "near" / "added.jpg")

    # a new checkpoint at the same path: other weights, other distances, as computed here
    save_teacher(cfg, checkpoint, seed=1)
    retrained = run(checkpoint, gallery, query)
    assert not retrained["from_cache"] and run(checkpoint, gallery, query)["from_cache"]
    matches, tol = expected_matches(checkpoint, gallery, queries, cfg)
    for found, expected in zip(retrained["queries"], matches):
        assert [m["distance"] for m in found["matches"]] == pytest.approx([d for _, d in expected], abs=tol)
    assert len(list(Path(f"{checkpoint}.search-cache").iterdir())) == 1  # one file a gallery folder


def test_bad_input_is_one_sentence_naming_all_of_it(world, tmp_path):
    cfg, checkpoint, gallery, query = world
    with pytest.raises(DatasetError) as err:
        run(checkpoint, tmp_path / "nowhere", tmp_path / "nothing")
    assert str(err.value) == (f"--gallery folder {tmp_path / 'nowhere'} does not exist; "
                              f"--query folder {tmp_path / 'nothing'} does not exist")
    (gallery / "far" / "broken.jpg").write_bytes(b"not a jpeg")
    (gallery / "near" / "cut.png").write_bytes(Path(next(gallery.rglob("*.png"))).read_bytes()[:60])
    (query / "empty.bmp").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"^3 images do not decode \(") as err:
        run(checkpoint, gallery, query)
    listing = Path(str(err.value).split("all listed in ")[1].split(")")[0])
    assert sorted(Path(p).name for p in listing.read_text().split()) == ["broken.jpg", "cut.png", "empty.bmp"]
    with pytest.raises(CheckpointError, match="search needs one of a"):
        hmr = tmp_path / "hmr.pt"
        torch.save({"trainer": "hmr", "config": cfg.to_dict(), "modules": {}}, hmr)
        run(hmr, gallery, query)
