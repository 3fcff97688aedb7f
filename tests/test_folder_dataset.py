"""`data.dataset: folder` (a user's own images, by name pattern or CSV lists) and the data-set check
`python -m reid_data.check`, on tiny folders written here by hand."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from configs.loader import load_config
from reid_data import DatasetError, build_dataset, dataset_from_config
from reid_data.check import main as check
from runs import run_dir
from trainers import build_trainer

REPO = Path(__file__).resolve().parents[1]

# (split folder, pid, camera number) of each image: ids 1-3 train in cameras 1 and 2, id 4 has one
# training image; 5 and 6 are matched across cameras, 7 only in its query's camera; 0 a distractor,
# -1 junk.
IMAGES = [("bounding_box_train", pid, cam) for pid in (1, 2, 3) for cam in (1, 2)] + [
    ("bounding_box_train", 4, 3),
    ("query", 5, 1), ("query", 6, 2), ("query", 7, 1),
    ("bounding_box_test", 5, 2), ("bounding_box_test", 6, 1), ("bounding_box_test", 7, 1),
    ("bounding_box_test", 0, 3), ("bounding_box_test", -1, 1)]
DUPLICATE = ("bounding_box_train/0001_c1s1_000000_00.png", "bounding_box_test/0006_c3s1_000099_00.png")


def market_name(pid: int, cam: int, frame: int) -> str:
    return f"{pid:04d}_c{cam}s1_{frame:06d}_00.png" if pid >= 0 else f"-1_c{cam}s1_{frame:06d}_00.png"


def write_image(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)  # random pixels: no two files alike by chance
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (8, 4, 3), dtype=np.uint8)).save(path)


def write_market_folder(root: Path, bad_names: bool = False) -> Path:
    """IMAGES under Market-style names, the gallery copy of a training image (DUPLICATE) and, with
    `bad_names`, two files the name pattern does not read."""
    for frame, (sub, pid, cam) in enumerate(IMAGES):
        write_image(root / sub / market_name(pid, cam, frame), frame)
    shutil.copy(root / DUPLICATE[0], root / DUPLICATE[1])
    (root / "query" / "notes.txt").write_text("not an image: ignored")
    if bad_names:
        write_image(root / "query" / "IMG_0001.png", 100)
        write_image(root / "bounding_box_train" / "person_c1.png", 101)
    return root


def write_csv_folder(root: Path) -> Path:
    """The same images in one folder, listed in train.csv, query.csv and gallery.csv with cameras
    numbered 0, 5 and 7 (header row in train.csv only)."""
    camera = {1: 0, 2: 5, 3: 7}
    rows = {"train": ["path,pid,camid"], "query": [], "gallery": []}
    split_of = {"bounding_box_train": "train", "query": "query", "bounding_box_test": "gallery"}
    for frame, (sub, pid, cam) in enumerate(IMAGES):
        write_image(root / "images" / f"{frame}.png", frame)
        rows[split_of[sub]].append(f"images/{frame}.png,{pid},{camera[cam]}")
    for split, lines in rows.items():
        (root / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return root


def ids_and_cameras(samples) -> list[tuple[int, int]]:
    return sorted((s.pid, s.camid) for s in samples)


EXPECTED_QUERY = [(5, 0), (6, 1), (7, 0)]
EXPECTED_GALLERY = [(-1, 0), (0, 2), (5, 1), (6, 0), (7, 0)]
EXPECTED_TRAIN = sorted([(label, cam) for label in (0, 1, 2) for cam in (0, 1)] + [(3, 2)])


def test_market_named_folders_are_read_with_market_numbering(tmp_path):
    root = write_market_folder(tmp_path / "mine")
    data = build_dataset("folder", str(root))
    assert ids_and_cameras(data.query) == EXPECTED_QUERY
    assert ids_and_cameras(data.gallery) == sorted(EXPECTED_GALLERY + [(6, 2)])  # + the duplicate
    assert ids_and_cameras(data.train) == EXPECTED_TRAIN and data.train_ids == [1, 2, 3, 4]
    assert all(os.path.isfile(s.path) for s in data.train + data.query + data.gallery)
    # Market's own layout read as a folder set numbers cameras as the market1501 builder does
    market = build_dataset("market1501", str(write_market_folder(tmp_path / "Market-1501-v15.09.15")))
    folder = build_dataset("folder", str(tmp_path / "Market-1501-v15.09.15"))
    assert ids_and_cameras(folder.gallery) == ids_and_cameras(market.gallery)


def test_every_bad_name_is_listed_at_once(tmp_path):
    root = write_market_folder(tmp_path / "mine", bad_names=True)
    with pytest.raises(DatasetError) as err:
        build_dataset("folder", str(root))
    message = str(err.value)
    assert "2 file names do not match data.pattern" in message
    assert "bounding_box_train/person_c1.png" in message and "query/IMG_0001.png" in message
    assert "\n" not in message


def test_own_pattern_and_split_folders_from_the_config(tmp_path):
    root = tmp_path / "mine"
    for frame, (sub, pid, cam) in enumerate(IMAGES):
        folder = {"bounding_box_train": "train", "query": "probe", "bounding_box_test": "gallery"}[sub]
        write_image(root / folder / f"cam{cam}-person{pid}-{frame}.png", frame)
    cfg = load_config(None, ["data.dataset=folder", f"data.root={root}",
                             r"data.pattern=cam(?P<camid>\d+)-person(?P<pid>-?\d+)-",
                             "data.folders.train=train", "data.folders.query=probe", "data.folders.gallery=gallery"])
    data = dataset_from_config(cfg.data)
    assert ids_and_cameras(data.query) == EXPECTED_QUERY and ids_and_cameras(data.gallery) == EXPECTED_GALLERY
    assert ids_and_cameras(data.train) == EXPECTED_TRAIN
    with pytest.raises(DatasetError, match=r"15 file names do not match data.pattern"):  # Market's reads none
        build_dataset("folder", str(root), folders=dict(cfg.data.folders))
    with pytest.raises(DatasetError, match=r"lacks the named group \(\?P<camid>...\)"):
        build_dataset("folder", str(root), pattern=r"(?P<pid>\d+)")


def test_csv_lists(tmp_path):
    root = write_csv_folder(tmp_path / "mine")
    data = build_dataset("folder", str(root))
    assert ids_and_cameras(data.query) == EXPECTED_QUERY and ids_and_cameras(data.gallery) == EXPECTED_GALLERY
    assert ids_and_cameras(data.train) == EXPECTED_TRAIN
    assert data.query[0].path == str(root / "images" / "7.png")
    held_out = build_dataset("folder", str(root), train_split="train")  # DG-Net's split: first image out
    assert len(held_out.train) == len(data.train) - 4


def test_every_malformed_row_is_listed_at_once(tmp_path):
    root = write_csv_folder(tmp_path / "mine")
    with open(root / "query.csv", "a") as f:
        f.write("images/1.png,abc,0\nimages/none.png,3,0\nimages/2.png,3\n")
    with pytest.raises(DatasetError) as err:
        build_dataset("folder", str(root))
    message = str(err.value)
    assert "3 rows are malformed" in message
    assert "query.csv row 4: pid 'abc' is no whole number" in message
    assert "query.csv row 5: no file 'images/none.png'" in message
    assert "query.csv row 6: 2 fields, not 3" in message
    (root / "gallery.csv").unlink()
    with pytest.raises(DatasetError, match="gallery.csv missing"):
        build_dataset("folder", str(root))


def test_missing_folders_say_both_forms(tmp_path):
    (tmp_path / "mine" / "query").mkdir(parents=True)
    with pytest.raises(DatasetError, match="bounding_box_train and bounding_box_test missing.*train.csv"):
        build_dataset("folder", str(tmp_path / "mine"))


def write_config(path: Path, root: Path, **data) -> Path:
    path.write_text(yaml.safe_dump({"data": {"dataset": "folder", "root": str(root), **data}}))
    return path


@pytest.mark.parametrize("form", ["pattern", "csv"])
def test_check_reports_every_warning(tmp_path, capsys, form):
    if form == "pattern":
        root = write_market_folder(tmp_path / "mine")
        query7, duplicate = "query/0007_c1s1_000009_00.png", " = ".join(reversed(DUPLICATE))
    else:
        root = write_csv_folder(tmp_path / "mine")
        shutil.copy(root / "images" / "0.png", root / "images" / "copy.png")
        with open(root / "gallery.csv", "a") as f:
            f.write("images/copy.png,6,7\n")
        query7, duplicate = "images/9.png", "images/0.png = images/copy.png"
    warnings = check(["--config", str(write_config(tmp_path / "check.yaml", root))])
    out = capsys.readouterr().out
    assert out.splitlines()[1:5] == ["  split      images    ids  cams", "  train           7      4     3",
                                     "  query           3      3     2", "  gallery         6      5     3"]
    assert warnings == [
        f"query images without a gallery image of their identity from another camera (the metric skips them): "
        f"1 of 3, identities 7 ({query7})",
        f"files with the same content as another: 1 ({duplicate}); 1 of these span training and test splits: "
        f"test images leak into training",
        "training identities with one image only: 1 (4); no positive pair for the triplet loss, and PK batches "
        "repeat the image"]
    assert [f"warning: {w}" for w in warnings] == out.splitlines()[5:8]
    assert out.splitlines()[-1] == "usable (3 warnings)"


def test_check_refuses_what_cannot_be_trained(tmp_path, capsys):
    root = write_market_folder(tmp_path / "mine")
    (root / "query" / "0005_c1s1_000010_00.png").write_bytes(b"\x89PNG cut short")
    config = write_config(tmp_path / "check.yaml", root, batch_size=8, instances=1)
    out = subprocess.run([sys.executable, "-m", "reid_data.check", "--config", str(config)],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith("error: folder at ") and "cannot be used as configured" in out.stderr
    assert "images that do not decode: 1 (query/0005_c1s1_000010_00.png)" in out.stderr
    assert "a PK batch of data.batch_size 8 with data.instances 1 takes 8 training identities, and the set has 4" \
        in out.stderr
    # skipped, the bad image is a warning and the set is usable
    warnings = check(["--config", str(config), "--opts", "data.skip_unreadable=true", "data.instances=2"])
    assert "images that do not decode: 1 (query/0005_c1s1_000010_00.png); training leaves them out " \
           "(data.skip_unreadable: true)" in warnings
    assert capsys.readouterr().out.splitlines()[-1] == "usable (4 warnings)"


def test_teacher_trains_on_a_folder(tiny_cfg, tmp_path):
    root = write_market_folder(tmp_path / "mine")
    cfg = tiny_cfg("data.dataset=folder", f"data.root={root}", "model.backbone=resnet18", "run.max_iter=2")
    history = build_trainer(cfg, run_dir(cfg)).fit()
    assert len(history) == 2 and (run_dir(cfg) / "checkpoints" / "last.pt").is_file()


def test_teacher_trains_on_a_folder_with_its_own_pattern(tiny_cfg, tmp_path):
    root = tmp_path / "mine"
    for frame, (sub, pid, cam) in enumerate(IMAGES):
        write_image(root / sub / f"cam{cam}-person{pid}-{frame}.png", frame)
    cfg = tiny_cfg("data.dataset=folder", f"data.root={root}", r"data.pattern=cam(?P<camid>\d+)-person(?P<pid>-?\d+)-",
                   "model.backbone=resnet18", "run.max_iter=1")
    assert len(build_trainer(cfg, run_dir(cfg)).fit()) == 1
