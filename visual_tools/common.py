"""What every visual tool shares: its command-line options, loading a DG-Net or GCL checkpoint,
choosing input images (a data set split or a folder) and finding their mesh renders (GCL)."""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, NamedTuple, Sequence

import torch
from torch.utils.data import DataLoader

from mesh.renders import ANGLES, RenderedImages, RenderError, RenderSet, angle_folder
from reid_data import DatasetError, Sample, normalize, test_loader
from reid_data.image_folder import image_files_under
from runtime.checkpoint import LoadedNetwork, load_network


def parser(description: str, trainer: str = "dgnet", input_folder: bool = True) -> argparse.ArgumentParser:
    """An argument parser with the options every tool takes (for checkpoints of `trainer`), and
    `--input` unless the tool reads only its data set (not `input_folder`)."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True,
                   help=f"a {trainer} run's checkpoint, e.g. logs/<run>/checkpoints/last.pt")
    p.add_argument("--opts", nargs="*", default=[], metavar="KEY=VALUE",
                   help="overrides of the stored config, e.g. data.root=/datasets")
    if input_folder:
        p.add_argument("--input", metavar="DIR", help="folder of input images (default: the data set's query "
                       "split); identity from the sub-folder, else from the file name's leading number")
    p.add_argument("--device", default="auto", help="auto (CUDA when present) | cpu | cuda | cuda:N")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice of images")
    return p


def weights_arg(text: str):
    """A `pretrained`-style option: true, false or a file path."""
    return {"true": True, "false": False}.get(text.lower(), text)


def load_run(checkpoint: str | Path, kind: str | Sequence[str], device: str = "auto", opts: Sequence[str] = ()
             ) -> LoadedNetwork:
    """The network of a `kind` run's checkpoint (dgnet or gcl; or of any of several kinds), from the
    config stored with it."""
    return load_network(checkpoint, (kind,) if isinstance(kind, str) else tuple(kind), device, opts,
                        user="the visual tools need")


class InputImage(NamedTuple):
    path: str
    identity: str  # what results are grouped by


def input_images(loaded: LoadedNetwork, folder: str | None = None, split: str = "query") -> list[InputImage]:
    """The images of `folder`, or else of a split of the data set ("query", "gallery", "train", or
    "test": query and gallery)."""
    if folder is not None:
        return folder_images(folder)
    samples = (loaded.dataset.query + loaded.dataset.gallery if split == "test"
               else getattr(loaded.dataset, split))
    return [InputImage(s.path, f"{s.pid:04d}") for s in samples]


def folder_images(folder: str) -> list[InputImage]:
    """Images in `folder` and its sub-folders. An image in a sub-folder belongs to the identity
    named by the sub-folder (DG-Net's layout); one directly in `folder` to the number its name
    starts with (Market-style names, 0002_c1s1_000451_03.jpg), or else to itself."""
    root = Path(folder)
    images = []
    for path in image_files_under(root, "input folder"):
        parts = path.relative_to(root).parts
        identity = parts[0] if len(parts) > 1 else _leading_number(path.stem) or path.stem
        images.append(InputImage(str(path), identity))
    return images


def _leading_number(stem: str) -> str:
    head = stem.split("_", 1)[0]
    return head if head.lstrip("-").isdigit() else ""


def subset(images: list[InputImage], limit: int, seed: int) -> list[InputImage]:
    """At most `limit` images (0: all), a seeded random choice kept in path order."""
    if limit <= 0 or limit >= len(images):
        return images
    return sorted(random.Random(seed).sample(images, limit))


def distinct_identities(images: list[InputImage], count: int, seed: int) -> list[InputImage]:
    """`count` images in a seeded random order, of as many different identities as there are."""
    if len(images) < count:
        raise DatasetError(f"{count} input images are needed but the input has {len(images)}; "
                           f"give a larger --input folder or ask for fewer")
    order = random.Random(seed).sample(images, len(images))
    seen, first, rest = set(), [], []
    for image in order:
        (rest if image.identity in seen else first).append(image)
        seen.add(image.identity)
    return (first + rest)[:count]


def batches(images: Sequence[InputImage], loaded: LoadedNetwork) -> Iterator[torch.Tensor]:
    """Normalised image batches (B, 3, H, W) at the model's size, on its device, in order."""
    samples = [Sample(im.path, 0, 0) for im in images]
    for batch in test_loader(samples, loaded.cfg.data):
        yield normalize(batch["image"].to(loaded.device))


def load(images: Sequence[InputImage], loaded: LoadedNetwork) -> torch.Tensor:
    """All of `images` as one normalised batch (for the few images of a figure)."""
    return torch.cat(list(batches(images, loaded)))


def synthetic_world(loaded: LoadedNetwork, images: Sequence[InputImage], purpose: str):
    """The ground truth (``WorldGroundTruth``) of the checkpoint's synthetic world, holding every
    one of `images`; one sentence, starting with `purpose` ("--truth needs"), when it cannot."""
    from reid_data.synthetic.ground_truth import load_ground_truth
    dataset = loaded.dataset
    try:
        world = load_ground_truth(dataset.root)
    except FileNotFoundError:
        raise DatasetError(f"{purpose} the synthetic world's ground truth, and {dataset.name} at "
                           f"{dataset.root} has no ground truth; use a checkpoint of a synthetic-world "
                           f"run (or --opts data.dataset=synthetic data.root=DIR)") from None
    for im in images:
        if os.path.basename(im.path) not in world.index:
            raise DatasetError(f"{purpose} the world's ground truth, and input image {im.path} is not an image "
                               f"of the synthetic world at {world.folder}")
    return world


def swap_benchmark(loaded: LoadedNetwork, pairs: int, seed: int):
    """The seeded swap pairs of the checkpoint's synthetic world (`reid_eval.generation.swap`)."""
    from reid_eval.generation.swap import SwapBenchmark
    dataset = loaded.dataset
    world = synthetic_world(loaded, [InputImage(s.path, "") for s in dataset.query], "the swap score needs")
    return SwapBenchmark(dataset, world, loaded.cfg.data, pairs, seed)


def load_teacher(loaded: LoadedNetwork) -> torch.nn.Module:
    """The run's re-ID teacher (dgnet.teacher) in eval mode: the judge of the swaps' identities."""
    return load_network(loaded.cfg.dgnet.teacher, ("teacher",), loaded.device,
                        user="the swap score's judge, dgnet.teacher, needs").model


def render_root(loaded: LoadedNetwork, renders: str | None) -> Path:
    """The mesh-render folder: `renders` (a --renders option), or else the config's gcl.renders."""
    root = renders or loaded.cfg.gcl.renders
    if not root:
        raise RenderError("no mesh-render folder is known: pass --renders DIR or --opts gcl.renders=DIR "
                          "(write one with python -m mesh.precompute --config CONFIG --out DIR)")
    return Path(root)


def find_renders(images: Sequence[InputImage], root: str | Path, dataset=None, angles: Sequence[int] = ANGLES
                 ) -> list[list[Path]]:
    """Each image's grey mesh renders, one path per angle of `angles`. Images of `dataset` are
    looked up in its render split (`mesh.renders.RenderSet`); others (a folder's) by file name,
    under ROOT/test/render_A/NAME and else ROOT/train/render_A/NAME."""
    if dataset is not None:
        renders = RenderSet(dataset, root, angles)
        return [renders.paths(im.path) for im in images]
    root, found = Path(root), []
    for im in images:
        name = os.path.basename(im.path)
        paths = []
        for angle in angles:
            options = [root / split / angle_folder(angle) / name for split in ("test", "train")]
            path = next((o for o in options if o.is_file()), None)
            if path is None:
                raise RenderError(f"the mesh render {options[0]} (or {options[1]}) of input image {im.path} "
                                  f"is missing; write the renders with python -m mesh.precompute "
                                  f"--config CONFIG --out {root}")
            paths.append(path)
        found.append(paths)
    return found


def rendered_batches(images: Sequence[InputImage], renders: Sequence[Sequence[Path]], loaded: LoadedNetwork
                     ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(normalised images (B, 3, H, W), uint8 renders (B, A, H, W)) at the model's size, on its
    device, in order; `renders` holds each image's render paths (`find_renders`)."""
    data = loaded.cfg.data
    dataset = RenderedImages([Sample(im.path, 0, 0) for im in images],
                             dict(zip((im.path for im in images), renders)).__getitem__, data.height, data.width)
    loader = DataLoader(dataset, batch_size=data.test_batch_size, shuffle=False, num_workers=data.workers,
                        generator=torch.Generator().manual_seed(0))  # workers leave the global RNG alone
    for batch in loader:
        yield normalize(batch["image"].to(loaded.device)), batch["renders"].to(loaded.device)


def refuse_used_folder(p: argparse.ArgumentParser, folder: str | Path) -> None:
    """Stop with one sentence unless `folder` is absent or empty: a tool never deletes or mixes
    into a user's folder."""
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        p.error(f"output folder {folder} already exists and is not empty; name a new folder "
                f"(nothing was written)")


@contextmanager
def new_folder(folder: str | Path) -> Iterator[Path]:
    """A temporary folder beside `folder` that becomes `folder` when the block succeeds, so an
    interrupted run leaves no half-written results behind (it removes only what it created)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        yield tmp
        os.rename(tmp, folder)  # fails, keeping both, if `folder` filled up meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


RANDOM_WEIGHTS_NOTE = "random weights: tests the pipeline, not comparable with published figures"


def write_results(results: dict, output: str | Path) -> Path:
    """A metrics tool's results as indented JSON at `output` (its folder made as needed)."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {output}")
    return output
