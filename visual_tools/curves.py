#!/usr/bin/env python
"""Training curves of one or several runs, from their tensorboard events, as one PNG.

    python visual_tools/curves.py RUN_DIR [RUN_DIR ...] [--tags train/loss eval/mAP] [--output FILE.png]
                                  [--smooth 0.6]

One panel per tag, one line per run (named by its folder), against the iteration; `--smooth`
draws tensorboard's exponential moving average over the raw values (faint behind it) for series of
10 points or more (losses, not a few evaluations). Default
tags: train/loss and eval/mAP. A tag that no run logged, or a folder without events, is one
error naming them all. Default output: curves.png in the first run's folder.
"""
from __future__ import annotations

import argparse
import io
from pathlib import Path

import matplotlib
from PIL import Image

from configs.errors import UserError, command
from visual_tools.image_io import save

matplotlib.use("Agg")  # files only: no display is needed or opened
from matplotlib import pyplot as plt  # noqa: E402  (after the backend is chosen)
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

DEFAULT_TAGS = ("train/loss", "eval/mAP")
SMOOTHED_FROM = 10  # points; a few evaluations are drawn as they are (a moving average would lag them)


def read_scalars(run: str | Path) -> dict[str, tuple[list[int], list[float]]]:
    """Every scalar tag of a run folder's events: tag → (steps, values), in step order."""
    events = EventAccumulator(str(run), size_guidance={"scalars": 0})  # 0: keep every point
    events.Reload()
    out = {}
    for tag in events.Tags()["scalars"]:
        points = sorted((e.step, e.value) for e in events.Scalars(tag))
        out[tag] = ([s for s, _ in points], [v for _, v in points])
    return out


def smoothed(values: list[float], weight: float) -> list[float]:
    """Tensorboard's smoothing: an exponential moving average, debiased at the start."""
    out, last, norm = [], 0.0, 0.0
    for v in values:
        last, norm = weight * last + (1 - weight) * v, weight * norm + (1 - weight)
        out.append(last / norm)
    return out


def curves_figure(runs: dict[str, dict], tags: list[str], smooth: float) -> Image.Image:
    """runs: name → `read_scalars` output; one panel per tag."""
    fig, axes = plt.subplots(len(tags), 1, figsize=(7, 2.6 * len(tags)), squeeze=False)
    for ax, tag in zip(axes[:, 0], tags):
        for index, (name, scalars) in enumerate(runs.items()):
            if tag not in scalars:
                continue
            steps, values = scalars[tag]
            colour = f"C{index % 10}"
            if smooth > 0 and len(values) >= SMOOTHED_FROM:
                ax.plot(steps, values, color=colour, alpha=0.25, linewidth=1)
                values = smoothed(values, smooth)
            ax.plot(steps, values, color=colour, label=name, linewidth=1.5, marker="o" if len(steps) < 12 else None)
        ax.set_title(tag, fontsize=10)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return Image.open(buffer).convert("RGB")


@command
def main(argv=None) -> Path:
    p = argparse.ArgumentParser(prog="python visual_tools/curves.py", description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders (logs/<run.name>)")
    p.add_argument("--tags", nargs="+", default=list(DEFAULT_TAGS))
    p.add_argument("--smooth", type=float, default=0.6, help="moving-average weight in [0, 1) (0: raw only)")
    p.add_argument("--output", metavar="FILE.png", help="default: curves.png in the first run's folder")
    args = p.parse_args(argv)
    if not 0 <= args.smooth < 1:
        p.error("--smooth must be in [0, 1)")
    runs = {Path(r).name: read_scalars(r) for r in args.runs}
    empty = [r for r, (name, scalars) in zip(args.runs, runs.items()) if not scalars]
    unknown = [t for t in args.tags if not any(t in scalars for scalars in runs.values())]
    if empty or unknown:
        logged = sorted({t for scalars in runs.values() for t in scalars})
        problems = ([f"no tensorboard scalars in {', '.join(empty)}"] if empty else []) + \
                   ([f"no run logged {', '.join(unknown)} (logged: {', '.join(logged) or 'nothing'})"] if unknown else [])
        raise UserError("; ".join(problems))
    output = Path(args.output or Path(args.runs[0]) / "curves.png")
    save(curves_figure(runs, args.tags, args.smooth), output)
    print(f"written {output}")
    return output


if __name__ == "__main__":
    main.cli()
