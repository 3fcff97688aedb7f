#!/usr/bin/env python
"""The DG-Net paper's figures from a checkpoint.

    python visual_tools/figures.py --checkpoint CKPT [--figures swap rainbow appearance structure]
                                   [--input DIR] [--output DIR] [--num 6] [--steps 11] [--seed 0]
    python visual_tools/figures.py --checkpoint CKPT --figures truth [--num 8]   (synthetic world)

  swap.png            --num people: cell (i, j) is person i's structure drawn with person j's
                      appearance; the top row shows the appearance donors, the left column the
                      structure donors, and the diagonal each image's reconstruction.
  rainbow.png         one person's structure drawn with the appearances of --num others (top row).
  appearance.png/.gif appearance interpolation: two people's structures (left column), each drawn
                      with an appearance code moving in --steps steps from one person's (top left)
                      to the other's (top right).
  structure.png/.gif  structure interpolation: the same with the structure moving between the two
                      people and each row keeping one appearance.
  truth.png           --num swap pairs of the swap score (reid_eval/generation/swap.py; its seeded pairs
                      of the query split, different identities and cameras), one per column; rows: the
                      appearance donor A, the structure donor S, the world's true swap (S wearing A's
                      garments) and the model's swap. Synthetic-world checkpoints only; not drawn by
                      default.

People are chosen at random (by --seed) among different identities of the input: a folder, or
by default the query split of the checkpoint's data set. Figures go to --output (default
<checkpoint>-figures); files of these names are replaced, nothing else there is touched.
"""
from __future__ import annotations

from pathlib import Path

import torch

from reid_data import denormalize
from configs.errors import command
from visual_tools import common, synthesis
from visual_tools.image_io import grid, save, save_gif, to_pil

FIGURES = ("swap", "rainbow", "appearance", "structure", "truth")
DEFAULT_FIGURES = FIGURES[:4]  # truth needs a synthetic world


def table(top: torch.Tensor, left: torch.Tensor, body: torch.Tensor, top_shown: torch.Tensor | None = None
          ) -> torch.Tensor:
    """A figure: `body` (R, C, 3, H, W) below the row `top` (C images) and right of the column
    `left` (R images); `top_shown` (C,) blanks the top cells that are False. All in [0, 1]."""
    rows, cols = body.shape[:2]
    cells = torch.ones(rows + 1, cols + 1, *body.shape[2:], device=body.device)
    cells[0, 1:], cells[1:, 0], cells[1:, 1:] = top, left, body
    filled = torch.ones(rows + 1, cols + 1, dtype=torch.bool)
    filled[0, 0] = False
    if top_shown is not None:
        filled[0, 1:] = top_shown
    return grid(cells, filled)


def swap_figure(model, structure_images: torch.Tensor, appearance_images: torch.Tensor, batch_size: int
                ) -> torch.Tensor:
    """Every structure image (rows) drawn with every appearance image (columns)."""
    structures, _ = synthesis.encode(model, structure_images, batch_size)
    _, codes = synthesis.encode(model, appearance_images, batch_size)
    body = synthesis.all_pairs(model, structures, codes, batch_size)
    return table(denormalize(appearance_images), denormalize(structure_images), denormalize(body))


def interpolation_figure(model, images: torch.Tensor, moving: str, steps: int, batch_size: int
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Two images; `moving` ("appearance" or "structure") goes from the first's to the second's
    while each row keeps the other part of one of them. Returns the figure and the GIF frames."""
    structures, codes = synthesis.encode(model, images[:2], batch_size)
    if moving == "appearance":
        body = synthesis.all_pairs(model, structures, synthesis.lerp(codes[0], codes[1], steps), batch_size)
    else:
        body = synthesis.all_pairs(model, synthesis.lerp(structures[0], structures[1], steps), codes,
                                   batch_size).transpose(0, 1)
    body, ends = denormalize(body), denormalize(images[:2])  # (R, C, 3, H, W) broadcasts too
    top = torch.ones(steps, *ends.shape[1:], device=ends.device)
    top[0], top[-1] = ends[0], ends[1]
    shown = torch.zeros(steps, dtype=torch.bool)
    shown[[0, -1]] = True
    # frame t: every row's step t side by side
    frames = torch.stack([grid(body[:, t].unsqueeze(0)) for t in range(steps)])
    return table(top, ends, body, shown), frames


def truth_figure(bench, model, device: torch.device, batch_size: int) -> torch.Tensor:
    """Columns: the pairs of a `SwapBenchmark`; rows: A, S, the true swap, the model's swap."""
    return grid(bench.truth_rows(bench.model_images(model.swap, device, batch_size)))


@command
def main(argv=None) -> list[Path]:
    p = common.parser(__doc__)
    p.add_argument("--figures", nargs="+", choices=FIGURES, default=list(DEFAULT_FIGURES))
    p.add_argument("--output", metavar="DIR", help="folder of the figures (default: <checkpoint>-figures)")
    p.add_argument("--num", type=int, default=6, help="people in the swap grid and appearances in the rainbow")
    p.add_argument("--steps", type=int, default=11, help="interpolation steps, both ends included")
    args = p.parse_args(argv)
    if args.num < 2 or args.steps < 2:
        p.error("--num and --steps must be at least 2")
    output = Path(args.output or f"{Path(args.checkpoint).with_suffix('')}-figures")
    loaded = common.load_run(args.checkpoint, "dgnet", args.device, args.opts)
    images = common.input_images(loaded, args.input)
    model, batch_size = loaded.model, loaded.cfg.data.test_batch_size
    written = []
    if "swap" in args.figures:
        people = common.load(common.distinct_identities(images, args.num, args.seed), loaded)
        written.append(save(to_pil(swap_figure(model, people, people, batch_size)), output / "swap.png"))
    if "rainbow" in args.figures:
        people = common.load(common.distinct_identities(images, args.num + 1, args.seed), loaded)
        written.append(save(to_pil(swap_figure(model, people[:1], people[1:], batch_size)), output / "rainbow.png"))
    for moving in ("appearance", "structure"):
        if moving in args.figures:
            pair = common.load(common.distinct_identities(images, 2, args.seed), loaded)
            figure, frames = interpolation_figure(model, pair, moving, args.steps, batch_size)
            written.append(save(to_pil(figure), output / f"{moving}.png"))
            written.append(save_gif(frames, output / f"{moving}.gif"))
    if "truth" in args.figures:
        bench = common.swap_benchmark(loaded, args.num, args.seed)
        written.append(save(to_pil(truth_figure(bench, model, loaded.device, batch_size)), output / "truth.png"))
    for path in written:
        print(f"written {path}")
    return written


if __name__ == "__main__":
    main.cli()
