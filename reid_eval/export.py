"""Export a re-ID run's network to ONNX: the embedding its evaluation uses, or DG-Net's generator.

    python -m reid_eval.export --checkpoint CKPT --onnx OUT.onnx [--generator]

Without --generator, the re-ID embedding (the network's `.embed(images)`) of a teacher, dgnet (the
appearance encoder), cluster_contrast (Cluster Contrast, HHCL, CFL) or gcl (the identity encoder)
run: input `images` (B, 3, H, W) float32, output `embedding` (B, D), for any batch size B. It is one
forward pass, without flip averaging: the run's evaluation (when test.flip) also embeds the mirror
image and sums the two; then it L2-normalises and ranks by 2 - 2 cos. The file's metadata
(metadata_props) states the input convention — H x W, RGB, values in [0, 1] normalised by the mean
and std of reid_data.normalize, bicubic resizing — and the embedding's size, whether it is
L2-normalised, the trainer kind and the checkpoint's iteration.

With --generator (a dgnet run), two files: OUT.onnx, the generator — inputs `code`, the appearance
code (B, C, S), and `structure`, the image (B, 3, H, W) whose pose and layout it draws; output `image`
(B, 3, H, W) — and OUT.appearance.onnx, the appearance encoder's code: `images` (B, 3, H, W) -> `code`
(B, C, S). Images in and out are normalised (image * std + mean is RGB in [0, 1]). Two files rather
than one swap model because what DG-Net is used for works on codes: encode an appearance once and
draw it in many poses, interpolate between two codes, mix the stripes of two; a swap is the two files
run one after the other.

The networks are traced by torch's TorchScript exporter (torch.onnx.export with dynamo=False, opset
17), which needs no onnxscript; writing the metadata needs the onnx package.
"""
from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from configs.errors import UserError, command
from reid_data.transforms import MEAN, STD
from reid_eval.features import EMBEDDING_KINDS
from runtime.checkpoint import LoadedNetwork, load_network, read_checkpoint

OPSET = 17
EXAMPLE_BATCH = 2  # traced at 2 images, so that no size is taken for the constant 1
BATCH = "batch"    # the name of every file's dynamic first axis


class Embedding(nn.Module):
    """A network's re-ID embedding as a forward, for the exporter to trace."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, images):
        return self.net.embed(images)


class AppearanceCode(nn.Module):
    """DG-Net's appearance code (B, C, S) of images."""

    def __init__(self, dgnet: nn.Module):
        super().__init__()
        self.dgnet = dgnet

    def forward(self, images):
        return self.dgnet.encode_appearance(images).code


class Generator(nn.Module):
    """DG-Net's generator: the structure image redrawn with the appearance code at its index."""

    def __init__(self, dgnet: nn.Module):
        super().__init__()
        self.dgnet = dgnet

    def forward(self, code, structure):
        return self.dgnet.decode(self.dgnet.encode_structure(structure), code)


def onnx_package():
    try:
        import onnx
    except ModuleNotFoundError:
        raise UserError("the ONNX export needs the onnx package (it writes the metadata): "
                        "pip install onnx, or run setup.sh") from None
    return onnx


def input_convention(cfg) -> dict[str, str]:
    """How an image becomes a network's input, as evaluation makes it (reid_data's loader and normalize)."""
    return {"input_height": str(cfg.data.height), "input_width": str(cfg.data.width),
            "input_layout": "NCHW float32, batch size free",
            "channel_order": "RGB",
            "value_range": "[0, 1] before normalisation (8-bit pixels / 255)",
            "normalization": "(x - mean) / std, per channel",
            "mean": ",".join(map(str, MEAN)), "std": ",".join(map(str, STD)),
            "resize": "the whole image to input_height x input_width, bicubic (PIL), no crop"}


def provenance(loaded: LoadedNetwork, checkpoint: Path) -> dict[str, str]:
    return {"trainer": loaded.kind, "iteration": str(read_checkpoint(checkpoint).get("iteration", 0)),
            "checkpoint": str(checkpoint)}


def write_onnx(module: nn.Module, example: tuple[torch.Tensor, ...], inputs: list[str], outputs: list[str],
               metadata: dict[str, str], path: Path) -> Path:
    """`module` traced on `example` into ONNX file `path` (written atomically), every input and output
    with a free first (batch) axis and `metadata` as its metadata_props."""
    onnx = onnx_package()
    module.eval()  # the exporter restores the module's mode afterwards, and with it its network's
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter is chosen (no onnxscript needed), deprecated or not; instance norm
            # uses the input's own statistics in eval mode too, as exported; the tracer's warnings are the
            # norms' checks of sizes fixed in the file (all but the batch axis, which the tests vary);
            # Slice steps other than 1 only forgo constant folding.
            warnings.filterwarnings("ignore", "You are using the legacy TorchScript-based ONNX export")
            warnings.filterwarnings("ignore", "The feature will be removed", DeprecationWarning)
            warnings.filterwarnings("ignore", ".*'instance_norm' is set to train=True")
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", "Constant folding - Only steps=1")
            torch.onnx.export(module, example, str(tmp), dynamo=False, opset_version=OPSET, input_names=inputs,
                              output_names=outputs, dynamic_axes={name: {0: BATCH} for name in inputs + outputs})
        model = onnx.load(str(tmp))
        onnx.helper.set_model_props(model, metadata)
        onnx.checker.check_model(model)
        onnx.save(model, str(tmp))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def example_images(cfg) -> torch.Tensor:
    return torch.randn(EXAMPLE_BATCH, 3, cfg.data.height, cfg.data.width, generator=torch.Generator().manual_seed(0))


def export_embedding(loaded: LoadedNetwork, checkpoint: Path, out: Path) -> Path:
    cfg, images = loaded.cfg, example_images(loaded.cfg)
    with torch.no_grad():
        embedding = loaded.embed(images)
    unit = bool(torch.allclose(embedding.norm(dim=1), torch.ones(len(images)), atol=1e-4))
    flip = ("sums the embeddings of the image and of its mirror image, then L2-normalises" if cfg.test.flip
            else "L2-normalises the embedding")
    metadata = {"genreid_model": "re-ID embedding", **input_convention(cfg),
                "output": "embedding (B, embedding_dim)", "embedding_dim": str(embedding.shape[1]),
                "embedding_l2_normalized": str(unit).lower(), "flip_averaged": "false",
                "evaluation": f"the run's evaluation {flip} and ranks by 2 - 2 cos (squared distance of unit vectors)",
                **provenance(loaded, checkpoint)}
    return write_onnx(Embedding(loaded.model), (images,), ["images"], ["embedding"], metadata, out)


def appearance_file(out: Path) -> Path:
    """The appearance encoder's file beside generator file `out` (gen.onnx -> gen.appearance.onnx)."""
    return out.with_suffix(".appearance.onnx")


def export_generator(loaded: LoadedNetwork, checkpoint: Path, out: Path) -> list[Path]:
    cfg, images = loaded.cfg, example_images(loaded.cfg)
    with torch.no_grad():
        code = loaded.model.encode_appearance(images).code
    _, channels, stripes = code.shape
    common = {**input_convention(cfg), "code_channels": str(channels), "code_stripes": str(stripes),
              **provenance(loaded, checkpoint)}
    encoder = write_onnx(AppearanceCode(loaded.model), (images,), ["images"], ["code"],
                         {"genreid_model": "DG-Net appearance code", "output": "code (B, code_channels, code_stripes)",
                          "generator": out.name, **common},
                         appearance_file(out))
    generator = write_onnx(Generator(loaded.model), (code, images), ["code", "structure"], ["image"],
                           {"genreid_model": "DG-Net generator",
                            "inputs": f"code (B, code_channels, code_stripes) from {encoder.name}; structure: "
                                      f"the image whose pose and layout are drawn, normalised as the input",
                            "output": "image (B, 3, input_height, input_width), normalised: image * std + mean "
                                      "is RGB in [0, 1]", **common},
                           out)
    return [generator, encoder]


@command
def main(argv=None) -> list[Path]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True,
                   help=f"a {', '.join(EMBEDDING_KINDS)} run's checkpoint, e.g. logs/<run>/checkpoints/last.pt")
    p.add_argument("--onnx", required=True, metavar="OUT.onnx", help="the file to write")
    p.add_argument("--generator", action="store_true",
                   help="a dgnet run: export the generator (OUT.onnx) and its appearance encoder "
                        "(OUT.appearance.onnx) instead of the embedding")
    args = p.parse_args(argv)
    checkpoint, out = Path(args.checkpoint), Path(args.onnx)
    if args.generator:
        loaded = load_network(checkpoint, ("dgnet",), "cpu", user="--generator needs")
        written = export_generator(loaded, checkpoint, out)
    else:
        loaded = load_network(checkpoint, EMBEDDING_KINDS, "cpu", user="the export needs")
        written = [export_embedding(loaded, checkpoint, out)]
    for path in written:
        print(f"written {path}")
    return written


if __name__ == "__main__":
    main.cli()
