#!/usr/bin/env python
"""Generation metrics of a DG-Net checkpoint — SSIM, FID, LPIPS diversity — printed and written as JSON.

    python visual_tools/generation_metrics.py --checkpoint CKPT [--metrics ssim fid lpips]
        [--input DIR] [--generated DIR] [--real DIR] [--limit N] [--people 8]
        [--inception true|false|FILE] [--lpips-backbone true|false|FILE] [--output FILE]

  ssim   mean SSIM (11x11 Gaussian window, sigma 1.5, images in [0, 1]) of each input image's
         reconstruction (its own structure and appearance) against the image.
  fid    FID between generated images and the data set's real training images (or --real DIR),
         all at the model's image size. Generated images: a test_folder.py output (--generated;
         its by_appearance sub-folder when there is one), or else made here from the input images
         exactly as test_folder.py makes them. Inception: pytorch-fid's
         pt_inception-2015-12-05-6726825d.pth from the torch cache (downloaded when online) or
         --inception FILE; --inception false takes random weights, which only tests the pipeline.
  lpips  diversity: --people inputs of different identities, each structure drawn with every
         appearance; the mean pairwise LPIPS (AlexNet) among images sharing a structure (how much
         the appearance changes them) and among images sharing an appearance. The AlexNet
         backbone follows --lpips-backbone as --inception does; random, it only tests the pipeline.

  swap   the swaps against the synthetic world's truth (reid_eval/generation/swap.py): --pairs seeded
         (appearance, structure) pairs of the query split (different identities and cameras), for the
         model, the model redrawing S with S's own code (model_reconstruction: its fidelity without
         transfer) and the no-learning baselines copy_structure, copy_appearance and colour_transfer:
         SSIM to the true swap, mean CIEDE2000 over the true upper / lower garment, and the fraction
         whose nearest gallery identity under the run's teacher (dgnet.teacher) is A's / S's.
         Keys swap.<method>.<score>. Synthetic-world checkpoints only; not run by default.

The input is a folder (--input) or the query split of the checkpoint's data set; --limit N
takes at most N images of each set (a seeded random choice; 0: all). The JSON goes to --output
(default <checkpoint>.generation.json).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import torch

from reid_data import denormalize
from reid_eval.generation import (LPIPSDistance, fid, fid_inception, inception_features,
                                  pairwise_diversity, ssim)
from reid_eval.generation import swap
from configs.errors import command
from visual_tools import common, synthesis
from visual_tools.test_folder import cross_identity_batches

METRICS = ("ssim", "fid", "lpips", "swap")
DEFAULT_METRICS = METRICS[:3]  # swap needs a synthetic world


def reconstruction_ssim(loaded: common.Loaded, images: list[common.InputImage]) -> dict:
    scores = []
    for x in common.batches(images, loaded):
        with torch.no_grad():
            reconstruction = loaded.model.swap(x, x)
        scores.append(ssim(denormalize(reconstruction), denormalize(x)).cpu())
    scores = torch.cat(scores)
    return {"mean": float(scores.mean()), "images": len(scores)}


def generated_batches(loaded: common.Loaded, generated: str | None, images: list[common.InputImage],
                      limit: int, seed: int) -> Iterator[torch.Tensor]:
    """Generated images in [0, 1]: those of a test_folder.py output, or made from `images` as
    test_folder.py makes them."""
    if generated is None:
        return (out for out, _ in cross_identity_batches(loaded, images, seed))
    folder = Path(generated)
    folder = folder / "by_appearance" if (folder / "by_appearance").is_dir() else folder
    files = common.subset(common.folder_images(str(folder)), limit, seed)
    return (denormalize(b) for b in common.batches(files, loaded))


def generated_vs_real_fid(loaded: common.Loaded, inception, generated: Iterator[torch.Tensor],
                          real: list[common.InputImage]) -> dict:
    fake = inception_features(inception, generated)
    true = inception_features(inception, (denormalize(b) for b in common.batches(real, loaded)))
    return {"value": fid(fake, true), "generated": len(fake), "real": len(true)}


def lpips_diversity(loaded: common.Loaded, distance: LPIPSDistance, people: torch.Tensor) -> dict:
    batch_size = loaded.cfg.data.test_batch_size
    structures, codes = synthesis.encode(loaded.model, people, batch_size)
    body = synthesis.all_pairs(loaded.model, structures, codes, batch_size)
    body = denormalize(body)  # (structure, appearance, 3, H, W)
    return {"across_appearances": pairwise_diversity(distance, body, batch_size),
            "across_structures": pairwise_diversity(distance, body.transpose(0, 1), batch_size),
            "people": len(people)}


def swap_scores(loaded: common.Loaded, pairs: int, seed: int) -> dict:
    """The swap table of the checkpoint's DG-Net and the baselines (see the module's doc)."""
    bench = common.swap_benchmark(loaded, pairs, seed)
    teacher = common.load_teacher(loaded)
    results, _ = bench.score(loaded.model.swap, teacher.embed, loaded.device,
                             loaded.cfg.data.test_batch_size, loaded.cfg.test.flip)
    return results


@command
def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--metrics", nargs="+", choices=METRICS, default=list(DEFAULT_METRICS))
    p.add_argument("--generated", metavar="DIR", help="test_folder.py output to compute FID on")
    p.add_argument("--real", metavar="DIR", help="real images for FID (default: the data set's training images)")
    p.add_argument("--limit", type=int, default=0, help="at most N images per set (0: all)")
    p.add_argument("--people", type=int, default=8, help="identities in the LPIPS diversity grid")
    p.add_argument("--pairs", type=int, default=256, help="(appearance, structure) pairs of the swap score")
    p.add_argument("--inception", type=common.weights_arg, default=True, metavar="true|false|FILE")
    p.add_argument("--lpips-backbone", type=common.weights_arg, default=True, metavar="true|false|FILE")
    p.add_argument("--output", metavar="FILE", help="JSON file (default: <checkpoint>.generation.json)")
    args = p.parse_args(argv)
    if args.people < 2:
        p.error("--people must be at least 2")
    if args.pairs < 1:
        p.error("--pairs must be at least 1")
    loaded = common.load_run(args.checkpoint, "dgnet", args.device, args.opts)
    # Weights first: a missing file stops the run before any slow work.
    inception = fid_inception(args.inception, loaded.device) if "fid" in args.metrics else None
    distance = LPIPSDistance(args.lpips_backbone).to(loaded.device) if "lpips" in args.metrics else None
    images = common.subset(common.input_images(loaded, args.input), args.limit, args.seed)

    results = {"checkpoint": str(args.checkpoint), "input": args.input or f"{loaded.cfg.data.dataset} query"}
    if "ssim" in args.metrics:
        results["ssim"] = reconstruction_ssim(loaded, images)
        print(f"SSIM {results['ssim']['mean']:.4f} (reconstructions of {results['ssim']['images']} images)")
    if "fid" in args.metrics:
        real = common.subset(common.input_images(loaded, args.real, split="train"), args.limit, args.seed)
        generated = generated_batches(loaded, args.generated, images, args.limit, args.seed)
        results["fid"] = generated_vs_real_fid(loaded, inception, generated, real)
        results["fid"]["inception"] = "pytorch-fid" if args.inception is not False else common.RANDOM_WEIGHTS_NOTE
        print(f"FID {results['fid']['value']:.2f} ({results['fid']['generated']} generated vs "
              f"{results['fid']['real']} real images; Inception: {results['fid']['inception']})")
    if "lpips" in args.metrics:
        people = common.load(common.distinct_identities(images, args.people, args.seed), loaded)
        results["lpips_diversity"] = lpips_diversity(loaded, distance, people)
        results["lpips_diversity"]["backbone"] = ("ImageNet AlexNet" if distance.pretrained_backbone
                                                  else common.RANDOM_WEIGHTS_NOTE)
        d = results["lpips_diversity"]
        print(f"LPIPS diversity {d['across_appearances']:.4f} across appearances, {d['across_structures']:.4f} "
              f"across structures ({d['people']} people; AlexNet: {d['backbone']})")
    if "swap" in args.metrics:
        scores = swap_scores(loaded, args.pairs, args.seed)
        results.update(swap.flat(scores))
        print(f"swaps against the truth ({args.pairs} pairs; identity by the teacher {loaded.cfg.dgnet.teacher}):")
        print(swap.table(scores))
    common.write_results(results, args.output or f"{args.checkpoint}.generation.json")
    return results


if __name__ == "__main__":
    main.cli()
