#!/usr/bin/env python
"""How well a GCL checkpoint turns people, scored against the synthetic world's true views.

    python -m visual_tools.view_metrics --checkpoint CKPT [--split test|query] [--input DIR]
        [--renders DIR] [--limit N] [--lpips-backbone true|false|FILE] [--judge CKPT] [--output FILE.json]

Each input image's person is generated at every angle of its mesh renders (0: the
reconstruction from its own render; 45, ..., 315: turned) and compared with the world's true
view of that person turned as far (same camera, background and degradations, at the model's
image size): whole-image SSIM (higher is better) and LPIPS with AlexNet (lower is better), SSIM
over the true person and mean CIEDE2000 over its pixels (lower is better), and with --judge (a
re-ID checkpoint, e.g. the synthetic teacher; it only scores) the fraction of views whose nearest
gallery identity is the person's own. Two baselines are scored the same way: the input image
copied ("input"), what doing nothing scores, and the input warped on the true body ("warp"), what
geometry alone gives (reid_eval/generation/views.py); a generator is only worth its novel views
where it beats both.

Input: the checkpoint's synthetic data set (--split test: query and gallery, the default; or
query), or a folder of the world's images (--input). Renders: --renders DIR or the config's
gcl.renders, in mesh.precompute's layout. --limit N scores a seeded random choice of N images
(0: all). LPIPS's AlexNet follows --lpips-backbone (alias --lpips-weights): true takes
torchvision's ImageNet file from the torch cache (downloaded when online), FILE that file,
false random weights, which only test the pipeline. Prints a markdown table and writes JSON to
--output (alias --out; default <checkpoint>.rotation.json).
"""
from __future__ import annotations

from functools import partial

import numpy as np
from tqdm import tqdm

from configs.errors import command
from reid_eval.generation import LPIPSDistance
from reid_eval.generation.swap import gallery_identifier
from reid_eval.generation.views import METHODS, novel_views, rotated_view_scores
from reid_eval.features import extract_features
from reid_data import test_loader
from runtime.checkpoint import load_network
from visual_tools import common

SCORE_NAMES = {"ssim": "SSIM", "lpips": "LPIPS", "ssim_person": "person SSIM", "delta_e_person": "person ΔE",
               "id": "id"}


def table(results: dict) -> str:
    """One row per angle; per score, the generated view, the input copy and the warp."""
    first = next(iter(results["angles"].values()))
    scores = [k for k in SCORE_NAMES if f"{k}_generated" in first]
    head = " | ".join(f"{SCORE_NAMES[k]} {m}" for k in scores for m in METHODS)
    rows = [f"| angle | {head} |", "|---:|" + "---:|" * (len(scores) * len(METHODS))]

    def row(label, s):
        return f"| {label} | " + " | ".join(f"{s[f'{k}_{m}']:.4f}" for k in scores for m in METHODS) + " |"
    rows += [row(f"{angle}°", s) for angle, s in results["angles"].items()]
    rows.append(row("45°-315° mean", results["novel"]))
    return "\n".join(rows)


@command
def main(argv=None) -> dict:
    p = common.parser(__doc__, trainer="gcl")
    p.add_argument("--split", choices=("test", "query"), default="test",
                   help="data set images without --input: test (query + gallery) or query")
    p.add_argument("--renders", metavar="DIR", help="mesh-render folder (default: the config's gcl.renders)")
    p.add_argument("--limit", type=int, default=0, help="at most N images (0: all)")
    p.add_argument("--lpips-backbone", "--lpips-weights", dest="lpips_backbone", type=common.weights_arg,
                   default=True, metavar="true|false|FILE")
    p.add_argument("--judge", metavar="CKPT", help="a re-ID checkpoint whose gallery search scores identity")
    p.add_argument("--output", "--out", dest="output", metavar="FILE",
                   help="JSON file (default: <checkpoint>.rotation.json)")
    args = p.parse_args(argv)
    loaded = common.load_run(args.checkpoint, "gcl", args.device, args.opts)
    images = common.subset(common.input_images(loaded, args.input, split=args.split), args.limit, args.seed)
    world = common.synthetic_world(loaded, images, "rotation metrics need")
    distance = LPIPSDistance(args.lpips_backbone).to(loaded.device)  # a missing file stops before slow work
    renders = common.find_renders(images, common.render_root(loaded, args.renders),
                                  None if args.input else loaded.dataset)
    size = loaded.cfg.data.test_batch_size
    batches = tqdm((([im.path for im in images[k * size:(k + 1) * size]], x, r)
                    for k, (x, r) in enumerate(common.rendered_batches(images, renders, loaded))),
                   desc="views", unit="batch", total=-(-len(images) // size), mininterval=2.0)
    judge = {} if args.judge is None else judged_identity(args.judge, loaded, world)
    scores = rotated_view_scores(partial(novel_views, loaded.model), batches, world, distance, **judge)

    results = {"checkpoint": str(args.checkpoint),
               "input": args.input or f"{loaded.cfg.data.dataset} {args.split}",
               "lpips_backbone": "ImageNet AlexNet" if distance.pretrained_backbone else common.RANDOM_WEIGHTS_NOTE,
               "judge": args.judge,
               **scores}
    print(table(results))
    print(f"({results['images']} images; LPIPS AlexNet: {results['lpips_backbone']})")
    common.write_results(results, args.output or f"{args.checkpoint}.rotation.json")
    return results


def judged_identity(path: str, loaded: common.Loaded, world) -> dict:
    """`identify` and `pids_of` of `rotated_view_scores`: the nearest identity of the checkpoint's
    test gallery under the re-ID network `path` (loaded through its kind), and the world's pids."""
    judge = load_network(path, ("teacher", "dgnet", "cluster_contrast", "gcl"), loaded.device,
                         user="--judge needs").model
    data_cfg, flip = loaded.cfg.data, loaded.cfg.test.flip
    gallery = loaded.dataset.gallery
    features, _, _ = extract_features(judge.embed, test_loader(gallery, data_cfg), loaded.device, flip,
                                      desc="judge gallery")
    identify = gallery_identifier(judge.embed, features, [s.pid for s in gallery], loaded.device,
                                  data_cfg.test_batch_size, flip)

    def pids_of(paths):
        return np.array([world.record(p)["pid"] for p in paths])
    return {"identify": identify, "pids_of": pids_of}


if __name__ == "__main__":
    main.cli()
