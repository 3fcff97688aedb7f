"""Grey mesh renders of every image of a data set, as seen and turned by 45°, ..., 315°, in
GCL's layout (`mesh.renders`).

    python -m mesh.precompute --config FILE --out DIR [--oracle] [--checkpoint HMR_CKPT]
                              [--opts key=value ...]

Each image's body is regressed by HMR (`model.backbone` and the `hmr` section of the config;
weights from --checkpoint or hmr.checkpoint: a `trainer: hmr` checkpoint, or SPIN's
model_checkpoint.pt with a real SMPL file in hmr.body_model), or, with --oracle on the
synthetic world, taken from its ground truth (the true views, bags and hair included). Each
render has the size of its image file.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from configs.loader import load_config
from models.hmr import build_hmr, hmr_input
from models.weights import WeightsError
from runtime.checkpoint import hmr_weights
from reid_data import DatasetError, dataset_from_config
from reid_data.image import read_image
from reid_data.dataloaders import loader_workers
from reid_data.transforms import normalize
from runtime.device import resolve_device
from configs.errors import command

from .body_model import load_body_model
from .renders import ANGLES, angle_folder, render_path, render_splits
from .views import render_grey, turned_vertices


class _Images(Dataset):
    """uint8 (3, H, W) images at their own size, with their index."""

    def __init__(self, samples):
        self.samples = samples

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        img = np.asarray(read_image(self.samples[i].path), dtype=np.uint8)
        return torch.from_numpy(img.copy()).permute(2, 0, 1), i


class HMRViews:
    """Views of the bodies HMR regresses from the images."""

    def __init__(self, cfg, checkpoint, device):
        checkpoint = checkpoint or cfg.hmr.checkpoint
        if not checkpoint:
            raise WeightsError("mesh.precompute needs HMR weights: pass --checkpoint (a "
                               "`trainer: hmr` checkpoint or SPIN's model_checkpoint.pt), or "
                               "--oracle on the synthetic world")
        h = cfg.hmr  # every weight comes from the checkpoint: no ImageNet start is read
        self.model = build_hmr(cfg.model.backbone, False, h.mean_params, h.iterations, hmr_weights(checkpoint),
                               checkpoint).to(device).eval()
        self.body = load_body_model(cfg.hmr.body_model, device=device, create_transl=False)
        self.size, self.device = cfg.hmr.input_size, device

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, paths) -> list[torch.Tensor]:
        out = self.model(hmr_input(normalize(images.to(self.device)), self.size))
        H, W = images.shape[-2:]
        return [render_grey(v, self.body.faces_tensor, out.cam, H, W).cpu()
                for v in turned_vertices(self.body, out.rotmat, out.betas, ANGLES)]


class OracleViews:
    """The synthetic world's true grey views (`WorldGroundTruth.render`)."""

    def __init__(self, dataset):
        from reid_data.synthetic.ground_truth import load_ground_truth
        try:
            self.gt = load_ground_truth(dataset.root)
        except FileNotFoundError:
            raise DatasetError(f"--oracle needs the synthetic world's ground truth, which "
                               f"{dataset.name} at {dataset.root} does not have") from None

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, paths) -> list[torch.Tensor]:
        yaws = np.array([self.gt.record(p)["yaw"] for p in paths])
        return [self.gt.render(list(paths), yaws + math.radians(a), mode="grey")[0][:, :1]
                for a in ANGLES]


def write_views(views, dataset, out, batch_size: int, workers: int) -> int:
    """Render every image of ``dataset`` with ``views`` into ``out``; returns the image count."""
    count = 0
    for split, samples in render_splits(dataset).items():
        for angle in ANGLES:
            (out / split / angle_folder(angle)).mkdir(parents=True, exist_ok=True)
        loader = DataLoader(_Images(samples), batch_size=batch_size, num_workers=loader_workers(workers),
                            collate_fn=list)
        for items in tqdm(loader, desc=f"renders ({split})", dynamic_ncols=True, mininterval=2):
            by_size: dict[tuple, list] = {}
            for img, i in items:               # one batch per image size
                by_size.setdefault(tuple(img.shape[-2:]), []).append((img, samples[i].path))
            for group in by_size.values():
                paths = [p for _, p in group]
                rendered = views(torch.stack([img for img, _ in group]), paths)
                for angle, grey in zip(ANGLES, rendered):
                    pixels = (grey[:, 0] * 255 + 0.5).floor().clamp(0, 255).byte().numpy()
                    for p, px in zip(paths, pixels):
                        Image.fromarray(px).save(render_path(out, split, angle, p),
                                                      quality=95)
            count += len(items)
    return count


@command
def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m mesh.precompute",
                                description=__doc__.split("\n")[0])
    p.add_argument("--config", required=True)
    p.add_argument("--out", required=True, help="render root (GCL's mesh_dir)")
    p.add_argument("--oracle", action="store_true",
                   help="the synthetic world's true bodies instead of HMR's")
    p.add_argument("--checkpoint", help="HMR weights: a trainer: hmr checkpoint or SPIN's")
    p.add_argument("--opts", nargs="*", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    cfg = load_config(args.config, args.opts)
    if cfg.run.threads > 0:
        torch.set_num_threads(cfg.run.threads)
    dataset = dataset_from_config(cfg.data, train_split="train_all")  # every training image gets its renders
    device = resolve_device(cfg.run.device)
    views = OracleViews(dataset) if args.oracle else HMRViews(cfg, args.checkpoint, device)
    start = time.perf_counter()
    n = write_views(views, dataset, Path(args.out), cfg.data.test_batch_size, cfg.data.workers)
    seconds = time.perf_counter() - start
    print(f"{n} images x {len(ANGLES)} views in {seconds:.0f} s "
          f"({n / max(seconds, 1e-9):.1f} images/s) -> {args.out}")
    return 0


if __name__ == "__main__":
    main.cli()
