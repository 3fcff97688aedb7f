"""reid_eval/export.py: a tiny checkpoint of every kind that trains a re-ID encoder, exported to ONNX
and run by onnxruntime, gives the PyTorch network's embedding at batch sizes 1 and 3, with the input
convention in the file's metadata; DG-Net's generator and appearance code likewise."""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from configs.loader import load_config
from models import build_reid_net
from models.dgnet import build_dgnet
from models.gcl import build_gcl
from reid_data.transforms import MEAN, STD
from reid_eval import export
from runtime.checkpoint import CheckpointError, load_network

H, W = 64, 32
TINY = ["data.height=64", "data.width=32", "model.backbone=resnet18", "gen.dim=4", "gen.mlp_dim=16",
        "gen.n_res=2", "dis.dim=4", "dis.n_res=1", "dis.num_scales=1", "dgnet.stripes=2", "gcl.stripes=2",
        "run.device=cpu"]


def with_statistics(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    """`net` with random BN running statistics, so that a network exported in training mode would differ."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) * 0.4 - 0.2)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return net


def tiny_checkpoint(kind: str, path: Path) -> Path:
    """A checkpoint as the `kind` trainer writes it (its network under its name), random weights."""
    torch.manual_seed(0)
    overrides = {"teacher": ["model.neck=id", "model.pooling=avg"],
                 "cluster_contrast": ["model.neck=bnneck", "model.pooling=gem"],
                 "dgnet": [], "gcl": ["model.neck=bnneck"]}[kind]
    cfg = load_config(None, [f"trainer={kind}", *TINY, *overrides])
    name, net = {"teacher": ("model", lambda: build_reid_net(cfg.model, 5)),
                 "cluster_contrast": ("model", lambda: build_reid_net(cfg.model, 0)),
                 "dgnet": ("dgnet", lambda: build_dgnet(cfg, 5)),
                 "gcl": ("gcl", lambda: build_gcl(cfg))}[kind]
    with warnings.catch_warnings():  # a cluster_contrast run's net has no classifier (0 classes)
        warnings.filterwarnings("ignore", "Initializing zero-element tensors")
        state = with_statistics(net(), seed=1).state_dict()
    torch.save({"trainer": kind, "config": cfg.to_dict(), "iteration": 11, "modules": {name: state}}, path)
    return path


def images(batch: int, seed: int) -> torch.Tensor:
    return torch.randn(batch, 3, H, W, generator=torch.Generator().manual_seed(seed))


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def metadata(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def batch_axes(path: Path) -> list:
    graph = onnx.load(str(path)).graph
    return [v.type.tensor_type.shape.dim[0].dim_param for v in [*graph.input, *graph.output]]


@pytest.mark.parametrize("kind", ["teacher", "cluster_contrast", "dgnet", "gcl"])
def test_the_exported_embedding_is_the_networks(kind, tmp_path):
    checkpoint = tiny_checkpoint(kind, tmp_path / "last.pt")
    out = tmp_path / "onnx" / f"{kind}.onnx"
    assert export.main(["--checkpoint", str(checkpoint), "--onnx", str(out)]) == [out]
    loaded = load_network(checkpoint, device="cpu")
    run = session(out)
    assert [i.name for i in run.get_inputs()] == ["images"] and [o.name for o in run.get_outputs()] == ["embedding"]
    assert batch_axes(out) == ["batch", "batch"]
    for batch in (1, 3):
        x = images(batch, seed=batch)
        with torch.no_grad():
            expected = loaded.embed(x).numpy()
        got = run.run(None, {"images": x.numpy()})[0]
        assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-4
    norms = np.linalg.norm(expected, axis=1)
    meta = metadata(out)
    assert meta == {
        "genreid_model": "re-ID embedding", "input_height": str(H), "input_width": str(W),
        "input_layout": "NCHW float32, batch size free", "channel_order": "RGB",
        "value_range": "[0, 1] before normalisation (8-bit pixels / 255)",
        "normalization": "(x - mean) / std, per channel", "mean": "0.485,0.456,0.406", "std": "0.229,0.224,0.225",
        "resize": "the whole image to input_height x input_width, bicubic (PIL), no crop",
        "output": "embedding (B, embedding_dim)", "embedding_dim": str(expected.shape[1]),
        "embedding_l2_normalized": str(bool(np.allclose(norms, 1, atol=1e-4))).lower(), "flip_averaged": "false",
        "evaluation": "the run's evaluation sums the embeddings of the image and of its mirror image, then "
                      "L2-normalises and ranks by 2 - 2 cos (squared distance of unit vectors)",
        "trainer": kind, "iteration": "11", "checkpoint": str(checkpoint)}
    assert [float(v) for v in meta["mean"].split(",")] == list(MEAN) and [float(v) for v in meta["std"].split(",")] == list(STD)
    if kind == "dgnet":  # two L2-normalised heads side by side: the whole has norm √2, not 1
        assert meta["embedding_l2_normalized"] == "false" and np.allclose(norms, math.sqrt(2), atol=1e-4)


def test_dgnets_generator_and_appearance_code_are_the_networks(tmp_path):
    checkpoint = tiny_checkpoint("dgnet", tmp_path / "last.pt")
    out = tmp_path / "generator.onnx"
    written = export.main(["--checkpoint", str(checkpoint), "--onnx", str(out), "--generator"])
    assert written == [out, tmp_path / "generator.appearance.onnx"]
    net = load_network(checkpoint, device="cpu").model
    generator, encoder = session(written[0]), session(written[1])
    assert [i.name for i in generator.get_inputs()] == ["code", "structure"]
    assert batch_axes(written[0]) == ["batch"] * 3 and batch_axes(written[1]) == ["batch"] * 2
    for batch in (1, 3):
        appearance, structure = images(batch, seed=10 + batch), images(batch, seed=20 + batch)
        with torch.no_grad():
            code = net.encode_appearance(appearance).code
            expected = net.decode(net.encode_structure(structure), code).numpy()
            swap = net.swap(structure, appearance).numpy()
        onnx_code = encoder.run(None, {"images": appearance.numpy()})[0]
        assert onnx_code.shape == code.shape and np.abs(onnx_code - code.numpy()).max() < 1e-4
        got = generator.run(None, {"code": code.numpy(), "structure": structure.numpy()})[0]
        assert got.shape == (batch, 3, H, W) and np.abs(got - expected).max() < 1e-4
        composed = generator.run(None, {"code": onnx_code, "structure": structure.numpy()})[0]
        assert np.abs(composed - swap).max() < 1e-4  # the two files run one after the other are DG-Net's swap
    meta, code_meta = metadata(written[0]), metadata(written[1])
    assert meta["genreid_model"] == "DG-Net generator" and code_meta["genreid_model"] == "DG-Net appearance code"
    assert (meta["code_channels"], meta["code_stripes"]) == (str(code.shape[1]), str(code.shape[2])) == ("512", "2")
    assert "generator.appearance.onnx" in meta["inputs"] and code_meta["generator"] == "generator.onnx"
    for m in (meta, code_meta):
        assert (m["input_height"], m["input_width"], m["trainer"], m["iteration"]) == (str(H), str(W), "dgnet", "11")


def test_the_generator_of_another_kind_is_one_sentence(tmp_path):
    checkpoint = tiny_checkpoint("teacher", tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match="written by trainer 'teacher'; --generator needs one of a dgnet run"):
        export.main(["--checkpoint", str(checkpoint), "--onnx", str(tmp_path / "g.onnx"), "--generator"])
    assert not list(tmp_path.glob("*.onnx"))
