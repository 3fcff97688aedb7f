"""Data set layouts, image reading, the registry and the toy set, on tiny fake folders."""
from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from reid_data.image import ImageReadError, read_image
from reid_data.records import DatasetError
from reid_data import registry
from reid_data.registry import DATASETS, build_dataset
from reid_data.toy import write_toy_market


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (2, 4)).save(buf, format="JPEG")
    return buf.getvalue()


JPEG = _jpeg()


def touch(folder, *names) -> None:
    os.makedirs(folder, exist_ok=True)
    for name in names:
        with open(os.path.join(folder, name), "wb") as f:
            f.write(JPEG)


def make_market(folder, cams=(1, 2, 6), train="bounding_box_train", query="query",
                gallery="bounding_box_test", gt_bbox=False) -> None:
    """Ids 0002 and 0007 train; 0003 in query and gallery; a distractor and a junk image."""
    a, b, c = cams
    touch(os.path.join(folder, train), f"0007_c{a}s1_000100_01.jpg", f"0002_c{b}s1_000451_03.jpg",
          f"0002_c{c}s2_000500_01.jpg")
    touch(os.path.join(folder, query), f"0003_c{a}s1_000200_00.jpg")
    touch(os.path.join(folder, gallery), f"0003_c{b}s1_000300_02.jpg",
          f"0000_c{a}s1_000001_01.jpg", f"-1_c{c}s1_000002_01.jpg")
    with open(os.path.join(folder, train, "Thumbs.db"), "wb"):  # shipped with Market; ignored
        pass
    if gt_bbox:
        touch(os.path.join(folder, "gt_bbox"), f"0003_c{a}s1_000200_00.jpg",
              f"0003_c{b}s1_000210_00.jpg")


def make_msmt(folder, train_dir="train", test_dir="test") -> None:
    """MSMT17 list files: labels 0, 1 in train (1 via list_val), 0 in query and gallery."""
    entries = {
        "list_train.txt": (train_dir, [("0000/0000_000_01_0303morning_0015_0.jpg", 0),
                                       ("0000/0000_001_15_0303morning_0016_0.jpg", 0)]),
        "list_val.txt": (train_dir, [("0001/0001_000_07_0303noon_0001_0.jpg", 1)]),
        "list_query.txt": (test_dir, [("0000/0000_000_02_0303morning_0100_0.jpg", 0)]),
        "list_gallery.txt": (test_dir, [("0000/0000_001_03_0303morning_0200_0.jpg", 0),
                                        ("0001/0001_000_04_0303noon_0300_0.jpg", 1)]),
    }
    for list_file, (image_dir, lines) in entries.items():
        for rel, _ in lines:
            touch(os.path.join(folder, image_dir, os.path.dirname(rel)), os.path.basename(rel))
        with open(os.path.join(folder, list_file), "w") as f:
            f.writelines(f"{rel} {label}\n" for rel, label in lines)


def ids(samples):
    return [s.pid for s in samples]


def cams(samples):
    return [s.camid for s in samples]


# name, sub-folder under the data root, how to write it, camera numbers used -> expected ids
MARKET_STYLE = [
    ("market1501", "market1501", {}, (1, 2, 6), [0, 1, 5]),
    ("market1501", "Market-1501-v15.09.15", {}, (1, 2, 6), [0, 1, 5]),
    ("market1501", "market1501/Market-1501-v15.09.15", {}, (1, 2, 6), [0, 1, 5]),
    ("dukemtmcreid", "DukeMTMC-reID", {}, (1, 2, 8), [0, 1, 7]),
    ("personx", "PersonX", {}, (3, 4, 12), [0, 1, 5]),
    ("veri", "VeRi", dict(train="image_train", query="image_query", gallery="image_test"),
     (1, 2, 20), [0, 1, 19]),
    ("msmt17", "MSMT17_V1", {}, (1, 2, 15), [0, 1, 14]),
]


@pytest.mark.parametrize("name,sub,folders,numbers,expected", MARKET_STYLE)
def test_market_style_layouts(tmp_path, name, sub, folders, numbers, expected):
    make_market(tmp_path / sub, numbers, **folders)
    data = build_dataset(name, str(tmp_path))
    assert data.name == name and data.root == str(tmp_path / sub)
    a, b, c = expected
    # Original ids 2, 7 become labels 0, 1; cameras are 0-based indices.
    assert sorted(zip(ids(data.train), cams(data.train))) == [(0, b), (0, c), (1, a)]
    assert [s.path for s in data.train] == sorted(s.path for s in data.train)
    assert data.train_ids == [2, 7]
    assert data.num_train_pids == 2 and data.num_train_cams == c + 1
    assert ids(data.query) == [3] and cams(data.query) == [a]
    assert ids(data.gallery) == [-1, 0, 3]  # junk and distractor kept, original ids
    assert [s.path for s in data.gallery] == sorted(s.path for s in data.gallery)
    assert "train" in data.summary()


def test_root_may_be_the_data_set_folder(tmp_path):
    make_market(tmp_path / "whatever")
    data = build_dataset("market1501", str(tmp_path / "whatever"))
    assert len(data.train) == 3 and data.root == str(tmp_path / "whatever")


@pytest.mark.parametrize("sub,train_dir,test_dir", [("MSMT17_V1", "train", "test"),
                                                    ("MSMT17_V2", "mask_train_v2",
                                                     "mask_test_v2")])
def test_msmt17_list_files(tmp_path, sub, train_dir, test_dir):
    make_msmt(tmp_path / sub, train_dir, test_dir)
    data = build_dataset("msmt17", str(tmp_path))
    assert ids(data.train) == [0, 0, 1] and cams(data.train) == [0, 14, 6]  # train + val lists
    assert all(os.sep + train_dir + os.sep in s.path for s in data.train)
    assert ids(data.query) == [0] and cams(data.query) == [1]
    assert ids(data.gallery) == [0, 1] and cams(data.gallery) == [2, 3]
    assert all(os.path.isfile(s.path) for s in data.train + data.query + data.gallery)
    official = build_dataset("msmt17", str(tmp_path), train_split="train")  # list_train only
    assert ids(official.train) == [0, 0]


def make_dgnet(folder) -> None:
    for split, names in {"train_all": ["0002/0002_c1s1_01.jpg", "0002/0002_c2s1_02.jpg",
                                       "0009/0009_c3s1_01.jpg"],
                         "train": ["0002/0002_c2s1_02.jpg"],
                         "query": ["0005/0005_c1s1_03.jpg"],
                         "gallery": ["0005/0005_c2s1_04.jpg", "0000/0000_c1s1_05.jpg",
                                     "-1/-1_c2s1_06.jpg"]}.items():
        for name in names:
            touch(os.path.join(folder, "pytorch", split, os.path.dirname(name)),
                  os.path.basename(name))


def test_dgnet_per_identity_layout(tmp_path):
    make_dgnet(tmp_path / "market1501")
    for root in (tmp_path, tmp_path / "market1501", tmp_path / "market1501" / "pytorch"):
        data = build_dataset("dgnet", str(root))
        assert data.root == str(tmp_path / "market1501" / "pytorch")
        assert ids(data.train) == [0, 0, 1] and data.train_ids == [2, 9]
        assert cams(data.train) == [0, 1, 2]
        assert ids(data.query) == [5] and sorted(ids(data.gallery)) == [-1, 0, 5]
    held_out = build_dataset("dgnet", str(tmp_path), train_split="train")
    assert len(held_out.train) == 1 and held_out.train_ids == [2]


def test_train_split_holds_out_first_image_per_id_on_raw_layouts(tmp_path):
    make_market(tmp_path / "market1501")
    data = build_dataset("market1501", str(tmp_path), train_split="train")
    # 0002 keeps its second image; 0007 has only one, which goes to val.
    assert [os.path.basename(s.path) for s in data.train] == ["0002_c6s2_000500_01.jpg"]
    with pytest.raises(DatasetError, match="train_split"):
        build_dataset("market1501", str(tmp_path), train_split="val")


def test_missing_data_set_names_folder_and_source(tmp_path):
    with pytest.raises(DatasetError) as err:
        build_dataset("market1501", str(tmp_path))
    message = str(err.value)
    assert str(tmp_path / "market1501") in message and "bounding_box_train" in message
    assert "Market-1501-v15.09.15" in message and message.endswith(".")


def test_missing_sub_folder(tmp_path):
    make_market(tmp_path / "market1501")
    os.rename(tmp_path / "market1501" / "query", tmp_path / "market1501" / "queries")
    with pytest.raises(DatasetError, match="incomplete: query missing") as err:
        build_dataset("market1501", str(tmp_path))
    assert str(tmp_path / "market1501") in str(err.value)


def test_empty_data_set_folder_is_incomplete(tmp_path):
    (tmp_path / "VeRi").mkdir()
    with pytest.raises(DatasetError, match="image_train, image_query and image_test missing"):
        build_dataset("veri", str(tmp_path))


def test_split_without_images(tmp_path):
    make_market(tmp_path / "market1501")
    for name in os.listdir(tmp_path / "market1501" / "query"):
        os.remove(tmp_path / "market1501" / "query" / name)
    with pytest.raises(DatasetError, match="query holds no images") as err:
        build_dataset("market1501", str(tmp_path))
    assert str(tmp_path / "market1501") in str(err.value)


def test_bad_file_name_is_named(tmp_path):
    make_market(tmp_path / "market1501")
    touch(tmp_path / "market1501" / "bounding_box_test", "IMG_0001.jpg", "zzz.jpg")
    with pytest.raises(DatasetError,
                       match=r"bounding_box_test/IMG_0001\.jpg does not follow") as err:
        build_dataset("market1501", str(tmp_path))
    assert str(tmp_path / "market1501") in str(err.value)


def test_camera_outside_the_data_set(tmp_path):
    make_market(tmp_path / "PersonX", cams=(3, 4, 5))  # PersonX has no camera 5
    with pytest.raises(DatasetError, match=r"camera 5, not one of 3, 4, 8, 10, 11, 12"):
        build_dataset("personx", str(tmp_path))


def test_bad_list_line(tmp_path):
    make_msmt(tmp_path / "MSMT17_V1")
    with open(tmp_path / "MSMT17_V1" / "list_query.txt", "a") as f:
        f.write("0000/0000_000_02_x.jpg\n")
    with pytest.raises(DatasetError, match="list_query.txt line 2"):
        build_dataset("msmt17", str(tmp_path))


def test_two_copies_are_ambiguous(tmp_path):
    make_dgnet(tmp_path / "market1501")
    make_dgnet(tmp_path / "toy")
    with pytest.raises(DatasetError, match="several folders") as err:
        build_dataset("dgnet", str(tmp_path))
    assert str(tmp_path / "toy" / "pytorch") in str(err.value)


def test_unknown_name_suggests_close_one(tmp_path):
    with pytest.raises(DatasetError, match="did you mean market1501"):
        build_dataset("market1502", str(tmp_path))
    with pytest.raises(DatasetError, match="did you mean msmt17"):
        build_dataset("MSMT17", str(tmp_path))


def test_register_adds_a_builder_once(monkeypatch):
    monkeypatch.setattr(registry.DATASETS, "_items", dict(registry.DATASETS._items))  # restored afterwards
    registry.register("probe")(lambda root, **options: (root, options))
    assert registry.build_dataset("probe", "here", x=1) == ("here", {"x": 1})
    with pytest.raises(ValueError, match="twice"):
        registry.register("probe")(lambda root: root)


def test_read_image(tmp_path):
    touch(tmp_path, "ok.jpg")
    Image.new("L", (3, 5)).save(tmp_path / "grey.png")
    assert read_image(str(tmp_path / "ok.jpg")).size == (2, 4)
    assert read_image(str(tmp_path / "grey.png")).mode == "RGB"
    with pytest.raises(ImageReadError, match=r"missing\.jpg is missing"):
        read_image(str(tmp_path / "missing.jpg"))
    (tmp_path / "text.jpg").write_text("not an image")
    (tmp_path / "cut.jpg").write_bytes(JPEG[: len(JPEG) // 2])
    for name in ("text.jpg", "cut.jpg"):
        with pytest.raises(ImageReadError, match=rf"{name} is unreadable or corrupt"):
            read_image(str(tmp_path / name))
    assert issubclass(ImageReadError, OSError)


def snapshot(folder) -> dict:
    out = {}
    for top, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(top, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = f.read()
    return out


def test_toy_is_deterministic(tmp_path):
    first = snapshot(write_toy_market(str(tmp_path / "a")))
    assert first == snapshot(write_toy_market(str(tmp_path / "b")))
    assert first != snapshot(write_toy_market(str(tmp_path / "c"), seed=1))
    assert len(first) == 12 * 8 + 4 + 2


def test_toy_is_generated_and_loaded(tmp_path):
    data = build_dataset("toy", str(tmp_path))
    assert data.root == str(tmp_path / "toy")
    assert data.num_train_pids == 6 and data.num_train_cams == 3 and len(data.train) == 48
    assert len(data.query) == 6 * 3 and set(ids(data.query)) == set(range(7, 13))
    assert {0, -1} <= set(ids(data.gallery))
    assert not any(name.startswith(".toy-") for name in os.listdir(tmp_path))  # no temp left
    assert read_image(data.train[0].path).size == (32, 64)
    stamp = os.path.getmtime(data.train[0].path)
    build_dataset("toy", str(tmp_path))  # present: not written again
    assert os.path.getmtime(data.train[0].path) == stamp
    assert build_dataset("toy", str(tmp_path / "toy")).root == str(tmp_path / "toy")
