#!/usr/bin/env python
"""How well a GCL checkpoint turns people, scored against the synthetic world's true views.

    python -m visual_tools.view_metrics --checkpoint CKPT [--split test|query] [--input DIR]
        [--renders DIR] [--limit N] [--lpips-backbone true|false|FILE] [--output FILE.json]

Each input image's person is generated at every angle of its mesh renders (0: the
reconstruction from its own render; 45, ..., 315: turned) and compared with the world's true
view of that person turned as far (same camera, background and degradations, at the model's
image size) by SSIM (higher is better) and LPIPS with AlexNet (lower is better). The "input
copy" columns score the unmodified input image against the same true views: what doing nothing
scores, so a generator is only worth its novel views where it beats them.

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

from reid_eval.generation import LPIPSDistance
from reid_eval.generation.views import novel_views, rotated_view_scores
from configs.errors import command
from visual_tools import common



def table(results: dict) -> str:
    rows = ["| angle | SSIM generated | SSIM input copy | LPIPS generated | LPIPS input copy |",
            "|---:|---:|---:|---:|---:|"]

    def row(label, s):
        return (f"| {label} | {s['ssim_generated']:.4f} | {s['ssim_input']:.4f} | "
                f"{s['lpips_generated']:.4f} | {s['lpips_input']:.4f} |")
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
    batches = (([im.path for im in images[k * size:(k + 1) * size]], x, r)
               for k, (x, r) in enumerate(common.rendered_batches(images, renders, loaded)))
    scores = rotated_view_scores(partial(novel_views, loaded.model), batches, world, distance)

    results = {"checkpoint": str(args.checkpoint),
               "input": args.input or f"{loaded.cfg.data.dataset} {args.split}",
               "lpips_backbone": "ImageNet AlexNet" if distance.pretrained_backbone else common.RANDOM_WEIGHTS_NOTE,
               **scores}
    print(table(results))
    print(f"({results['images']} images; LPIPS AlexNet: {results['lpips_backbone']})")
    common.write_results(results, args.output or f"{args.checkpoint}.rotation.json")
    return results


if __name__ == "__main__":
    main.cli()
