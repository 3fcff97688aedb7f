"""The prepare CLI: raw data set -> DG-Net per-identity layout, safely and repeatably."""
from __future__ import annotations

import os

import pytest

from reid_data.prepare import main, prepare
from reid_data.records import DatasetError
from reid_data.registry import build_dataset
from test_datasets import make_market, make_msmt, snapshot


@pytest.fixture
def market(tmp_path):
    make_market(tmp_path / "market1501", gt_bbox=True)
    return tmp_path


def listing(folder) -> dict:
    """Identity folder -> file names, for one output split."""
    return {d: sorted(os.listdir(os.path.join(folder, d))) for d in sorted(os.listdir(folder))}


def test_prepare_writes_the_dgnet_layout(market):
    counts = prepare(str(market), "market1501")
    out = market / "market1501" / "pytorch"
    assert counts == {"train_all": 3, "train": 1, "val": 2, "query": 1, "gallery": 3,
                      "multi-query": 2, "written": 12, "skipped": 0, "output": str(out)}
    assert listing(out / "val") == {"0002": ["0002_c2s1_000451_03.jpg"],
                                    "0007": ["0007_c1s1_000100_01.jpg"]}
    assert listing(out / "train") == {"0002": ["0002_c6s2_000500_01.jpg"]}
    assert sorted(os.listdir(out / "gallery")) == ["-1", "0000", "0003"]
    # The DG-Net loader reads back the same identities and cameras.
    raw, prepared = build_dataset("market1501", str(market)), build_dataset("dgnet", str(market))
    for split in ("train", "query", "gallery"):
        assert [(s.pid, s.camid) for s in getattr(raw, split)] == \
            [(s.pid, s.camid) for s in getattr(prepared, split)]
    assert prepared.train_ids == raw.train_ids
    assert len(build_dataset("dgnet", str(market), train_split="train").train) == 1


def test_rerun_is_a_no_op(market):
    prepare(str(market), "market1501")
    before = snapshot(market)
    counts = prepare(str(market), "market1501")
    assert counts["written"] == 0 and counts["skipped"] == 12
    assert snapshot(market) == before


def test_differing_file_is_an_error_and_nothing_is_touched(market):
    target = market / "market1501" / "pytorch" / "query" / "0003" / "0003_c1s1_000200_00.jpg"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"the user's own file")
    (target.parent / "notes.txt").write_text("keep me")
    before = snapshot(market)
    with pytest.raises(DatasetError, match="already exists with other content") as err:
        prepare(str(market), "market1501")
    assert str(target) in str(err.value)
    assert snapshot(market) == before  # checked before writing anything; nothing deleted


def test_link_and_separate_destination(market, tmp_path):
    counts = prepare(str(market), "market1501", dst=str(tmp_path / "out"), link=True)
    src = market / "market1501" / "query" / "0003_c1s1_000200_00.jpg"
    dst = tmp_path / "out" / "pytorch" / "query" / "0003" / src.name
    assert counts["written"] == 12 and os.path.samefile(src, dst)
    assert not (market / "market1501" / "pytorch").exists()


def test_camera_prefix_when_the_name_does_not_say_it(tmp_path):
    make_msmt(tmp_path / "MSMT17_V1")
    prepare(str(tmp_path), "msmt17")
    query = tmp_path / "MSMT17_V1" / "pytorch" / "query"
    assert listing(query) == {"0000": ["0000_c2_0000_000_02_0303morning_0100_0.jpg"]}
    raw = build_dataset("msmt17", str(tmp_path))
    prepared = build_dataset("dgnet", str(tmp_path))
    assert sorted((s.pid, s.camid) for s in raw.train) == \
        sorted((s.pid, s.camid) for s in prepared.train)


def test_cli_prints_counts(market, capsys):
    assert main(["--src", str(market), "--dataset", "market1501"])["written"] == 12
    out = capsys.readouterr().out
    assert "train_all    3" in out and "written      12" in out
    with pytest.raises(DatasetError, match="Market-1501 not found"):
        main(["--src", str(market / "nowhere"), "--dataset", "market1501"])
