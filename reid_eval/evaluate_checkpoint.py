#!/usr/bin/env python
"""Evaluate a checkpoint on its data set's query/gallery split.

python reid_eval/evaluate_checkpoint.py --checkpoint CKPT [--config FILE] [--opts key=value ...] [--rerank]

Prints mAP, Rank-1/5/10 and mINP (an hmr run's checkpoint: its body errors against the synthetic
world) and writes them as JSON beside the checkpoint (<checkpoint>.eval.json, or .eval-rerank.json
with --rerank). The network is rebuilt from the checkpoint alone (`runtime.checkpoint.load_network`):
no trainer, optimizer or DG-Net teacher is built. Without --config the run's own config stored in
the checkpoint is used; evaluation runs as the run's own did (mixed precision when run.amp).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from reid_eval.evaluator import QueryGallery, query_gallery_distances, rank_metrics
from runtime.checkpoint import load_network
from runtime.device import amp_dtype, autocast
from configs.errors import command


def run_dtype(loaded):
    """The autocast type the run evaluated in: its mixed-precision type when run.amp, else none."""
    return amp_dtype(loaded.device) if loaded.cfg.run.amp else None


def distances(loaded, rerank: bool = False) -> QueryGallery:
    """The query x gallery distances of the run's re-ID network, as its own evaluation ranks by."""
    cfg = loaded.cfg
    return query_gallery_distances(loaded.embed, loaded.dataset, cfg.data, loaded.device, flip=cfg.test.flip,
                                   rerank=rerank, autocast_dtype=run_dtype(loaded))


def evaluate(loaded, rerank: bool = False) -> dict[str, float]:
    """The run's own evaluation of its network: re-ID metrics, or an hmr run's body errors."""
    if loaded.kind == "hmr":
        from mesh import load_body_model
        from mesh.hmr_errors import body_errors
        from reid_data.synthetic.ground_truth import load_ground_truth
        cfg, device, dtype, data = loaded.cfg, loaded.device, run_dtype(loaded), loaded.dataset
        body = load_body_model(cfg.hmr.body_model, device=device, create_transl=False)
        return body_errors(loaded.model, body, load_ground_truth(data.root), data.query + data.gallery, cfg.data,
                           cfg.hmr.input_size, device, lambda: autocast(device, dtype))
    return rank_metrics(distances(loaded, rerank))


@command
def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--config", help="config to build the model and data from (default: the stored one)")
    parser.add_argument("--opts", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present) | cpu | cuda | cuda:N")
    parser.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking")
    args = parser.parse_args(argv)
    checkpoint = Path(args.checkpoint)
    loaded = load_network(checkpoint, device=args.device, opts=args.opts, config=args.config)
    results = evaluate(loaded, args.rerank)
    cfg = loaded.cfg
    print(f"{cfg.data.dataset}{' (re-ranked)' if args.rerank else ''}: " +
          "  ".join(f"{k} {100 * v:.2f}%" if loaded.kind != "hmr" else f"{k} {v:.2f}" for k, v in results.items()))
    out = checkpoint.with_name(checkpoint.name + (".eval-rerank.json" if args.rerank else ".eval.json"))
    out.write_text(json.dumps({"checkpoint": str(checkpoint), "dataset": cfg.data.dataset,
                               "rerank": args.rerank, **results}, indent=2) + "\n")
    print(f"written {out}")
    return results


if __name__ == "__main__":
    main.cli()
