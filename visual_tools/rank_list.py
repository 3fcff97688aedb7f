#!/usr/bin/env python
"""Rank lists: queries beside the gallery images a re-ID run ranks first, in the metric's order.

    python visual_tools/rank_list.py --checkpoint CKPT [--queries 8 | --query-files NAME ...] [--top 10]
                                     [--rerank] [--output DIR] [--seed 0] [--device auto] [--opts KEY=VALUE ...]

One row per query: the query (blue frame; "no match" when the gallery holds no image of its identity
from another camera, so the metric skips it), then its gallery in the order evaluate_rank ranks it
(distances ascending, ties by gallery index: reid_eval.ranking) up to the --top-th entry the metric
keeps. Green frame: a true match; red: another identity; grey, faded, "excluded": an entry the metric
removes (junk, pid -1, or the query's identity seen by the query's camera), where its distance puts
it. Under each image: its rank among the kept entries, as the metric counts, and its distance (the
re-ranked one with --rerank). Features and distances are the run's own evaluation's
(reid_eval.evaluate_checkpoint), on the whole query and gallery.

Queries: --queries N of the query split chosen at random by --seed (in path order), or --query-files
by file name. Pages of 8 queries: DIR/page_1.png, ... (default DIR: <checkpoint>-rank_list, or
-rank_list_rerank), replacing files of these names; the same pages go to tensorboard in the
checkpoint's run folder (tags rank_list/page_K or rank_list_rerank/page_K, at the checkpoint's
iteration).
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image
from torch.utils.tensorboard import SummaryWriter

from configs.errors import command
from reid_data import DatasetError, Sample
from reid_data.records import first_few
from reid_eval.evaluate_checkpoint import distances as run_distances
from reid_eval.evaluator import QueryGallery
from reid_eval.features import EMBEDDING_KINDS
from reid_eval.figure import BLACK, QUERY, cell, picture, rows_figure, save
from reid_eval.figure import FRAME, GAP, LINE, PAD  # noqa: F401  the geometry of the pages (their test reads it)
from reid_eval.ranking import RankedGallery, ranked_gallery
from runtime.checkpoint import read_checkpoint
from visual_tools import common

PER_PAGE = 8
MATCH, WRONG, EXCLUDED = (0, 160, 0), (220, 0, 0), (150, 150, 150)
LEGEND = "green: true match   red: false match   grey: excluded by the metric (junk, or same id and camera)"


def choose_queries(query: Sequence[Sample], count: int, names: Sequence[str] | None, seed: int) -> list[int]:
    """Indices into `query`: those of the files `names` (file names or paths), or else `count` of
    them at random (seeded), in path order."""
    if names:
        where = {}
        for i, s in enumerate(query):
            where.setdefault(os.path.basename(s.path), i)
            where.setdefault(s.path, i)
        unknown = [n for n in names if n not in where]
        if unknown:
            raise DatasetError(f"--query-files not in the data set's query split: {len(unknown)} "
                               f"({first_few(unknown)}); name files of that split")
        return [where[n] for n in names]
    return sorted(random.Random(seed).sample(range(len(query)), min(count, len(query))))


def rank_lists(qg: QueryGallery, queries: Sequence[int]) -> list[RankedGallery]:
    """Each query's whole gallery as the metric ranks it: the figure draws their heads."""
    return [ranked_gallery(qg.distmat[q], qg.q_pids[q], qg.q_camids[q], qg.g_pids, qg.g_camids) for q in queries]


def query_cell(image: Image.Image, pid: int, matched: bool) -> Image.Image:
    first = ("query", BLACK) if matched else ("no match", WRONG)
    return cell(image, QUERY, [first, (f"id {pid}", BLACK)])


def gallery_cell(image: Image.Image, kept: bool, match: bool, rank: int, distance: float) -> Image.Image:
    if not kept:
        return cell(image, EXCLUDED, [("excluded", EXCLUDED), (f"{distance:.4f}", EXCLUDED)], faded=True)
    return cell(image, MATCH if match else WRONG, [(f"#{rank}", BLACK), (f"{distance:.4f}", BLACK)])


def page_figure(title: str, queries: Sequence[Sample], rankings: Sequence[RankedGallery], gallery: Sequence[Sample],
                top: int, height: int, width: int) -> Image.Image:
    """Rows of each query and the head of its ranking (to the `top`-th kept entry), under a title and
    the colour legend."""
    rows = []
    for q, ranking in zip(queries, rankings):
        head = ranking.head(top)
        matched = bool(ranking.match.any())  # else the metric skips the query
        cells = [query_cell(picture(q.path, height, width), q.pid, matched)]
        cells += [gallery_cell(picture(gallery[g].path, height, width), kept, match, rank, d)
                  for g, d, kept, match, rank in zip(head.index, head.distance, head.kept, head.match, head.rank)]
        rows.append(cells)
    return rows_figure([title, LEGEND], rows)


def run_folder(checkpoint: Path) -> Path:
    """The run folder a trainer's checkpoint lies in (logs/<run>/checkpoints/last.pt → logs/<run>)."""
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent


@command
def main(argv=None) -> list[Path]:
    p = common.parser(__doc__, trainer="teacher, cluster_contrast, dgnet or gcl", input_folder=False)
    choice = p.add_mutually_exclusive_group()
    choice.add_argument("--queries", type=int, default=8, help="queries chosen at random (by --seed)")
    choice.add_argument("--query-files", nargs="+", metavar="NAME", help="query images by file name")
    p.add_argument("--top", type=int, default=10, help="kept gallery entries shown per query")
    p.add_argument("--rerank", action="store_true", help="rank by the k-reciprocal re-ranked distances")
    p.add_argument("--output", metavar="DIR", help="folder of the pages (default: <checkpoint>-rank_list)")
    args = p.parse_args(argv)
    if args.queries < 1 or args.top < 1:
        p.error("--queries and --top must be at least 1")
    checkpoint = Path(args.checkpoint)
    name = "rank_list_rerank" if args.rerank else "rank_list"
    output = Path(args.output or f"{checkpoint.with_suffix('')}-{name}")
    loaded = common.load_run(checkpoint, EMBEDDING_KINDS, args.device, args.opts)
    data = loaded.dataset
    queries = choose_queries(data.query, args.queries, args.query_files, args.seed)
    rankings = rank_lists(run_distances(loaded, args.rerank), queries)
    pages = range(0, len(queries), PER_PAGE)
    iteration = read_checkpoint(checkpoint).get("iteration", 0)
    written = []
    with SummaryWriter(str(run_folder(checkpoint))) as writer:
        for k, start in enumerate(pages, 1):
            chosen = slice(start, start + PER_PAGE)
            title = (f"{run_folder(checkpoint).name} ({loaded.kind}, iteration {iteration}): top {args.top}"
                     f"{' re-ranked' if args.rerank else ''}, page {k}/{len(pages)}")
            page = page_figure(title, [data.query[q] for q in queries[chosen]], rankings[chosen], data.gallery,
                               args.top, loaded.cfg.data.height, loaded.cfg.data.width)
            writer.add_image(f"{name}/page_{k}", np.asarray(page), iteration, dataformats="HWC")
            written.append(save(page, output / f"page_{k}.png"))
    for path in written:
        print(f"written {path}")
    return written


if __name__ == "__main__":
    main.cli()
