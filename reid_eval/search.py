"""Search a folder of your own images for the people of query images, with a re-ID run's network.

    python -m reid_eval.search --checkpoint CKPT --gallery DIR --query IMAGE|DIR [--top 10] [--json]
                               [--figure FILE.png] [--device auto]

Gallery and query folders are read at any depth (jpg, jpeg, png, bmp). Every image is resized and
normalised as the run's evaluation does it (data.height x data.width of the checkpoint's config,
bicubic), embedded as it embeds them (the image and its mirror image summed when test.flip, in the
run's mixed-precision type when run.amp) and L2-normalised; faiss finds each query's nearest gallery
images by inner product, their cosine. The distance shown is the one evaluation ranks by, 2 - 2 cos
(the squared distance of the unit features; same order as 1 - cos); ties go in gallery path order.

Prints each query's top matches as a table of rank, distance and file, or with --json one JSON
document; --figure writes each query (blue frame) beside its top matches, with rank and distance
under each (no true/false colours: a folder of images has no identities).

The gallery's features are cached beside the checkpoint, in <checkpoint>.search-cache/ (one file a
gallery folder), and reused while neither the gallery's files (paths, sizes, modification times) nor
the checkpoint file (size, modification time) nor the embedding settings changed; any change embeds
the gallery again.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import NamedTuple, Sequence

import faiss
import numpy as np
import torch
from PIL import Image

from configs.errors import command
from reid_data import DatasetError, Sample, test_loader
from reid_data.image_folder import image_files_under
from reid_data.readable import unreadable, write_listing
from reid_data.records import first_few
from reid_eval.evaluate_checkpoint import run_dtype
from reid_eval.evaluator import unit_distance
from reid_eval.features import EMBEDDING_KINDS, extract_features
from reid_eval.figure import BLACK, QUERY, cell, fitted, picture, rows_figure, save
from runtime.checkpoint import CheckpointError, LoadedNetwork, load_network, read_checkpoint, save_atomic

DISTANCE = "2 - 2 cos of the L2-normalised embeddings (their squared distance), as evaluation ranks"
RANKED = (110, 110, 110)  # the frame of a match: one colour, as nothing says which are true


class Match(NamedTuple):
    rank: int
    distance: float
    file: str


def query_images(query: str) -> list[Path]:
    """The image `query`, or the images of folder `query`."""
    return [Path(query)] if os.path.isfile(query) else image_files_under(query, "--query folder")


def inputs(gallery: str, query: str) -> tuple[list[Path], list[Path]]:
    """The gallery's and the query's image files; what is wrong with both in one error."""
    found, problems = [], []
    for read in (lambda: image_files_under(gallery, "--gallery folder"), lambda: query_images(query)):
        try:
            found.append(read())
        except DatasetError as err:
            problems.append(str(err))
    if problems:
        raise DatasetError("; ".join(problems))
    return found[0], found[1]


def check_readable(groups: Sequence[tuple[Sequence[Path], Path]]) -> None:
    """One error naming the images of the (images, their folder) groups that do not decode, all of
    them in a listing file (verdicts are cached as for data sets: `reid_data.readable`)."""
    bad = [p for paths, folder in groups for p in unreadable([str(p) for p in paths], str(folder))]
    if bad:
        listing = write_listing(bad, str(groups[0][1]))
        raise DatasetError(f"{len(bad)} images do not decode ({first_few(bad)}; all listed in {listing}); "
                           f"replace or delete them, or search a folder without them")


def embed(loaded: LoadedNetwork, paths: Sequence[Path], desc: str) -> torch.Tensor:
    """L2-normalised embeddings (N, D) of image files, as the run's evaluation embeds its images."""
    samples = [Sample(str(p), 0, 0) for p in paths]
    return extract_features(loaded.embed, test_loader(samples, loaded.cfg.data), loaded.device,
                            loaded.cfg.test.flip, run_dtype(loaded), desc)[0]


def cache_file(checkpoint: Path, gallery: str) -> Path:
    """Where the features of folder `gallery` are cached for `checkpoint`: one file a folder."""
    name = hashlib.sha256(os.path.abspath(gallery).encode()).hexdigest()[:16]
    return checkpoint.with_name(checkpoint.name + ".search-cache") / f"{name}.pt"


def cache_key(loaded: LoadedNetwork, checkpoint: Path, paths: Sequence[Path]) -> str:
    """What the cached features depend on: every gallery file's path, size and modification time,
    the checkpoint file's, and how the images are embedded."""
    def stamp(path: Path) -> list:
        st = path.stat()
        return [os.path.abspath(path), st.st_size, st.st_mtime_ns]
    data = loaded.cfg.data
    settings = [data.height, data.width, loaded.cfg.test.flip, str(run_dtype(loaded))]
    text = json.dumps([stamp(checkpoint), settings, [stamp(p) for p in paths]])
    return hashlib.sha256(text.encode()).hexdigest()


def read_cache(file: Path, key: str) -> torch.Tensor | None:
    """The cached gallery features (G, D) when `file` holds those of `key`."""
    try:
        cached = torch.load(file, weights_only=True)
        return cached["features"] if cached["key"] == key else None
    except Exception:  # no cache yet, or a damaged one (torch reports that as any of many errors): embed again
        return None


def write_cache(file: Path, key: str, features: torch.Tensor) -> None:
    try:
        save_atomic({"key": key, "features": features}, file)
    except (OSError, CheckpointError):  # a cache that cannot be written only costs the next search its embedding
        pass


def nearest(query: torch.Tensor, gallery: torch.Tensor, top: int) -> tuple[np.ndarray, np.ndarray]:
    """(distances, gallery indices), each (Q, k): the `top` gallery features nearest to each query
    feature (all unit vectors), distance ascending, ties by gallery index."""
    index = faiss.IndexFlatIP(gallery.shape[1])  # inner product of unit vectors: cosine
    index.add(np.ascontiguousarray(gallery.numpy(), dtype=np.float32))
    cosine, found = index.search(np.ascontiguousarray(query.numpy(), dtype=np.float32), min(top, len(gallery)))
    distance = unit_distance(torch.from_numpy(cosine)).numpy()
    order = np.lexsort((found, distance))  # along each row: by distance, then gallery index
    return np.take_along_axis(distance, order, 1), np.take_along_axis(found, order, 1)


def table(query: Path, matches: Sequence[Match]) -> str:
    lines = [f"query {query}", "  rank  distance  file"]
    lines += [f"  {m.rank:>4}  {m.distance:>8.4f}  {m.file}" for m in matches]
    return "\n".join(lines)


def figure(title: str, queries: Sequence[Path], matches: Sequence[Sequence[Match]], height: int,
           width: int) -> Image.Image:
    """One row a query: the query, then its matches with their rank and distance."""
    rows = []
    for query, found in zip(queries, matches):
        name = fitted(query.name, width)
        rows.append([cell(picture(query, height, width), QUERY, [("query", BLACK), (name, BLACK)])] + [
            cell(picture(m.file, height, width), RANKED, [(f"#{m.rank}", BLACK), (f"{m.distance:.4f}", BLACK)])
            for m in found])
    return rows_figure([title, f"blue: query; under each match: its rank and distance, {DISTANCE}"], rows)


@command
def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True,
                   help=f"a {', '.join(EMBEDDING_KINDS)} run's checkpoint, e.g. logs/<run>/checkpoints/last.pt")
    p.add_argument("--gallery", required=True, metavar="DIR", help="folder of the images to search")
    p.add_argument("--query", required=True, metavar="IMAGE|DIR", help="a query image, or a folder of them")
    p.add_argument("--top", type=int, default=10, help="matches shown per query")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    p.add_argument("--figure", metavar="FILE.png", help="also draw each query beside its matches")
    p.add_argument("--device", default="auto", help="auto (CUDA when present) | cpu | cuda | cuda:N")
    args = p.parse_args(argv)
    problems = []
    if args.top < 1:
        problems.append("--top must be at least 1")
    if args.figure and Path(args.figure).suffix.lower() not in Image.registered_extensions():
        problems.append(f"--figure {args.figure} names no image format (e.g. .png)")
    if problems:
        p.error("; ".join(problems))
    checkpoint = Path(args.checkpoint)
    gallery, query = inputs(args.gallery, args.query)
    loaded = load_network(checkpoint, EMBEDDING_KINDS, args.device, user="search needs")
    query_folder = Path(args.query) if os.path.isdir(args.query) else Path(args.query).parent
    cache, key = cache_file(checkpoint, args.gallery), cache_key(loaded, checkpoint, gallery)
    features = read_cache(cache, key)
    from_cache = features is not None
    check_readable([(query, query_folder)] + ([] if from_cache else [(gallery, Path(args.gallery))]))
    if not from_cache:
        features = embed(loaded, gallery, "gallery")
        write_cache(cache, key, features)
    print(f"gallery: {len(gallery)} images of {args.gallery}, features "
          f"{'from' if from_cache else 'embedded, cached in'} {cache}", file=sys.stderr)
    distance, index = nearest(embed(loaded, query, "query"), features, args.top)
    matches = [[Match(rank, float(d), str(gallery[i])) for rank, (d, i) in enumerate(zip(ds, ix), 1)]
               for ds, ix in zip(distance, index)]
    results = {"checkpoint": str(checkpoint), "trainer": loaded.kind, "gallery": args.gallery,
               "gallery_images": len(gallery), "gallery_cache": str(cache), "from_cache": from_cache,
               "distance": DISTANCE,
               "queries": [{"query": str(q), "matches": [m._asdict() for m in found]}
                           for q, found in zip(query, matches)]}
    print(json.dumps(results, indent=2) if args.json else "\n\n".join(map(table, query, matches)))
    if args.figure:
        iteration = read_checkpoint(checkpoint).get("iteration", 0)
        title = (f"{checkpoint} ({loaded.kind}, iteration {iteration}): top {min(args.top, len(gallery))} "
                 f"of {len(gallery)} images in {args.gallery}")
        written = save(figure(title, query, matches, loaded.cfg.data.height, loaded.cfg.data.width), args.figure)
        print(f"written {written}", file=sys.stderr)
    return results


if __name__ == "__main__":
    main.cli()
