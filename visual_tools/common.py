"""What every visual tool shares: its command-line options, loading a DG-Net checkpoint, and
choosing input images (a data set split or a folder)."""
from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator, NamedTuple, Sequence

import torch

from configs.loader import load_config
from reid_data import DatasetError, IMAGE_EXTENSIONS, Sample, build_dataset, normalize, test_loader
from trainers.base import resolve_device
from trainers.checkpoint import CheckpointError
from trainers.checkpoint import load as load_checkpoint_file


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every tool takes."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a dgnet run's checkpoint, e.g. logs/<run>/checkpoints/last.pt")
    p.add_argument("--opts", nargs="*", default=[], metavar="KEY=VALUE",
                   help="overrides of the stored config, e.g. data.root=/datasets")
    p.add_argument("--input", metavar="DIR", help="folder of input images (default: the data set's query split); "
                   "identity from the sub-folder, else from the file name's leading number")
    p.add_argument("--device", default="auto", help="auto (CUDA when present) | cpu | cuda | cuda:N")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice of images")
    return p


def weights_arg(text: str):
    """A `pretrained`-style option: true, false or a file path."""
    return {"true": True, "false": False}.get(text.lower(), text)


@dataclass
class Loaded:
    """A DG-Net in eval mode on `device`, its resolved config, and (loaded on first use) its data set."""
    model: torch.nn.Module
    cfg: object
    device: torch.device

    @cached_property
    def dataset(self):
        return build_dataset(self.cfg.data.dataset, self.cfg.data.root, train_split=self.cfg.data.train_split)


def load_dgnet(checkpoint: str | Path, device: str = "auto", opts: Sequence[str] = ()) -> Loaded:
    """The DG-Net of a `dgnet` trainer checkpoint, built from the config stored with it."""
    from models.dgnet import build_dgnet_from_state  # the heavy import only when a tool runs

    state = load_checkpoint_file(checkpoint)
    if state.get("trainer") != "dgnet":
        raise CheckpointError(f"checkpoint {checkpoint} was written by trainer {state.get('trainer')!r}; "
                              f"the visual tools need one of a dgnet run")
    cfg = load_config(state["config"], opts)
    dev = resolve_device(device)
    model = build_dgnet_from_state(cfg, state["modules"]["dgnet"]).eval().to(dev)
    return Loaded(model, cfg, dev)


class InputImage(NamedTuple):
    path: str
    identity: str  # what results are grouped by


def input_images(loaded: Loaded, folder: str | None = None, split: str = "query") -> list[InputImage]:
    """The images of `folder`, or else of a split of the data set ("query", "train", "gallery")."""
    if folder is not None:
        return folder_images(folder)
    return [InputImage(s.path, f"{s.pid:04d}") for s in getattr(loaded.dataset, split)]


def folder_images(folder: str) -> list[InputImage]:
    """Images in `folder` and its sub-folders. An image in a sub-folder belongs to the identity
    named by the sub-folder (DG-Net's layout); one directly in `folder` to the number its name
    starts with (Market-style names, 0002_c1s1_000451_03.jpg), or else to itself."""
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"input folder {folder} does not exist")
    images = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
            parts = path.relative_to(root).parts
            identity = parts[0] if len(parts) > 1 else _leading_number(path.stem) or path.stem
            images.append(InputImage(str(path), identity))
    if not images:
        raise DatasetError(f"input folder {folder} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
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


def batches(images: Sequence[InputImage], loaded: Loaded) -> Iterator[torch.Tensor]:
    """Normalised image batches (B, 3, H, W) at the model's size, on its device, in order."""
    samples = [Sample(im.path, 0, 0) for im in images]
    for batch in test_loader(samples, loaded.cfg.data):
        yield normalize(batch["image"].to(loaded.device))


def load(images: Sequence[InputImage], loaded: Loaded) -> torch.Tensor:
    """All of `images` as one normalised batch (for the few images of a figure)."""
    return torch.cat(list(batches(images, loaded)))


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
