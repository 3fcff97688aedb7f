"""A tiny generated person data set in the Market-1501 layout, for smoke tests and first runs.

Each identity is a drawn figure (head, torso, legs) with its own clothing colours and build,
seen by cameras that differ in background and colour cast; every image gets a small shift and
pixel noise, so identities are learnable but not trivially so. Files are byte-identical for
the same arguments.
"""
from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np
from PIL import Image

from .layouts import Spec, market_style
from .records import ReIDDataset

DISTRACTORS = 4  # pid 0000 images in the gallery: people outside the benchmark
JUNK = 2         # pid -1 images in the gallery: bad detections the metric ignores

TOY = Spec("toy", "Toy data set", ("toy",), (market_style("Market-1501 layout", None),),
           "delete {folder} and it is generated again")


def build_toy(root: str, **options) -> ReIDDataset:
    """The registered `toy` data set: `<root>/toy`, generated first when missing or empty."""
    folder = os.path.join(root, "toy")
    pointed_at_toy = TOY.holds(root) is not None
    if not pointed_at_toy and not (os.path.isdir(folder) and os.listdir(folder)):
        generate(folder)
    return TOY(root, **options)


def generate(folder: str) -> None:
    """Writes the default toy set into `folder` atomically, so that concurrent processes (DDP
    ranks) and interrupted runs never leave a half-written folder behind."""
    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".toy-", dir=parent)
    try:
        write_toy_market(tmp)
        if os.path.isdir(folder) and not os.listdir(folder):
            os.rmdir(folder)
        os.rename(tmp, folder)
    except OSError:
        if not (os.path.isdir(folder) and os.listdir(folder)):
            raise
        # Another process finished first; its copy is identical.
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_toy_market(root: str, num_ids: int = 12, images_per_id: int = 8, cams: int = 3,
                     height: int = 64, width: int = 32, seed: int = 0) -> str:
    """Writes the toy set into `root`: the first half of the identities in bounding_box_train;
    of the other half one image per camera in query and the rest in bounding_box_test, with a
    few distractors (0000) and junk images (-1). Image k of an identity is seen by camera
    k mod cams, so every query has a match in another camera. Returns `root`."""
    if num_ids < 2 or cams < 2 or images_per_id < cams + 2:
        raise ValueError("the toy set needs num_ids >= 2, cams >= 2 and images_per_id >= "
                         "cams + 2 (so every query has a gallery match in another camera)")
    rng = np.random.default_rng(seed)
    backgrounds = rng.uniform(40, 215, size=(cams, 3))
    casts = rng.uniform(0.85, 1.15, size=(cams, 3))
    people = [random_person(rng) for _ in range(num_ids)]
    for sub in ("bounding_box_train", "query", "bounding_box_test"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)

    frame = 0

    def save(sub: str, pid: int, cam: int, image: np.ndarray) -> None:
        nonlocal frame
        frame += 1
        name = f"{pid:04d}" if pid >= 0 else str(pid)
        Image.fromarray(image).save(
            os.path.join(root, sub, f"{name}_c{cam + 1}s1_{frame:06d}_00.jpg"), quality=90)

    def view(person, cam: int) -> np.ndarray:
        return draw(rng, person, backgrounds[cam], casts[cam], height, width)

    num_train = num_ids // 2
    for index, person in enumerate(people):
        pid = index + 1
        for k in range(images_per_id):
            cam = k % cams
            sub = ("bounding_box_train" if index < num_train
                   else "query" if k < cams else "bounding_box_test")
            save(sub, pid, cam, view(person, cam))
    for k in range(DISTRACTORS):  # a fresh stranger each time
        cam = k % cams
        save("bounding_box_test", 0, cam, view(random_person(rng), cam))
    for k in range(JUNK):  # background with a sliver of a person, as a bad detection is
        cam = k % cams
        image = view(random_person(rng), cam)
        image[:, : width * 2 // 3] = np.clip(backgrounds[cam] * casts[cam], 0, 255)
        save("bounding_box_test", -1, cam, image)
    return root


def random_person(rng: np.random.Generator) -> dict:
    return {"upper": rng.uniform(0, 255, 3), "lower": rng.uniform(0, 255, 3),
            "skin": rng.uniform([150, 100, 70], [240, 190, 160]),
            "build": rng.uniform(0.4, 0.6),      # torso width as a share of the image width
            "waist": rng.uniform(0.5, 0.6)}      # where the legs start, share of the height


def draw(rng: np.random.Generator, person: dict, background: np.ndarray, cast: np.ndarray,
         height: int, width: int) -> np.ndarray:
    """One view: the figure on the camera's background, shifted, lit and noised at random."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    shade = 1 + 0.25 * (y / height - 0.5)  # a vertical gradient so backgrounds are not flat
    image = background[None, None, :] * shade[..., None]
    cx = width / 2 + rng.uniform(-0.1, 0.1) * width
    top = rng.uniform(0.0, 0.06) * height
    head_r = 0.09 * height
    head_cy = top + head_r + 0.02 * height
    waist = top + person["waist"] * height
    half = person["build"] * width / 2
    head = (x - cx) ** 2 + ((y - head_cy) * 0.8) ** 2 < head_r ** 2
    torso = (abs(x - cx) < half) & (y > head_cy + head_r) & (y < waist)
    legs = (abs(x - cx) < half * 0.9) & (abs(x - cx) > half * 0.12) & (y >= waist) \
        & (y < 0.97 * height)
    for mask, colour in ((head, person["skin"]), (torso, person["upper"]),
                         (legs, person["lower"])):
        image[mask] = colour
    image = image * cast * rng.uniform(0.8, 1.2) + rng.normal(0, 8, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)
