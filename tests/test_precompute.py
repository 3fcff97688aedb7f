"""mesh.precompute writes GCL's render layout (oracle and HMR), and RenderSet finds or misses it."""
import os

import pytest
import torch
import yaml
from PIL import Image

from mesh.precompute import main
from mesh.renders import ANGLES, RenderError, RenderSet, angle_folder
from models.hmr import HMR
from reid_data import build_dataset


@pytest.fixture(scope="module")
def world(tiny_world_root):
    root = tiny_world_root
    cfg = root / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({
        "data": {"dataset": "synthetic", "root": str(root), "workers": 0, "test_batch_size": 16},
        "model": {"backbone": "resnet18"}, "hmr": {"input_size": 32},
        "run": {"device": "cpu"}}))
    return root, cfg, build_dataset("synthetic", str(root))


def expected(dataset):
    return {"train": sorted(os.path.basename(s.path) for s in dataset.train),
            "test": sorted(os.path.basename(s.path) for s in dataset.query + dataset.gallery)}


def test_oracle_writes_gcl_layout_and_render_set_finds_it(world, tmp_path):
    root, cfg, dataset = world
    out = tmp_path / "mesh"
    assert main(["--config", str(cfg), "--out", str(out), "--oracle"]) == 0
    names = expected(dataset)
    assert sorted(os.listdir(out)) == ["test", "train"]
    for split in ("train", "test"):
        assert sorted(os.listdir(out / split)) == sorted(angle_folder(a) for a in ANGLES)
        for a in ANGLES:
            assert sorted(os.listdir(out / split / angle_folder(a))) == names[split]
    sample = dataset.query[0]
    paths = RenderSet(dataset, out).paths(sample.path)
    assert [p.parent.name for p in paths] == ["render"] + [f"render_{a}" for a in ANGLES[1:]]
    first, turned = (Image.open(p) for p in paths[:2])
    assert first.size == Image.open(sample.path).size and first.mode == "L"
    assert first.getextrema()[1] > 100 and first.tobytes() != turned.tobytes()

    gone = [out / "train" / "render_90" / names["train"][0],
            out / "test" / "render" / names["test"][1]]
    for p in gone:
        p.unlink()
    with pytest.raises(RenderError) as err:
        RenderSet(dataset, out)
    message = str(err.value)
    assert "2 mesh renders" in message and all(str(p) in message for p in gone)
    assert "python -m mesh.precompute" in message


def test_hmr_checkpoint_writes_the_same_layout(world, tmp_path):
    root, cfg, dataset = world
    torch.save({"model": HMR("resnet18").state_dict()}, tmp_path / "model_checkpoint.pt")
    out = tmp_path / "mesh"
    assert main(["--config", str(cfg), "--out", str(out), "--checkpoint",
                 str(tmp_path / "model_checkpoint.pt")]) == 0
    RenderSet(dataset, out)                                   # all present
    assert sorted(os.listdir(out / "test" / "render_315")) == expected(dataset)["test"]
