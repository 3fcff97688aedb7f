#!/usr/bin/env python
"""Evaluate a checkpoint on its data set's query/gallery split.

python reid_eval/test.py --checkpoint CKPT [--config FILE] [--opts key=value ...] [--rerank]

Prints mAP, Rank-1/5/10 and mINP and writes them as JSON beside the checkpoint
(<checkpoint>.eval.json, or .eval-rerank.json with --rerank). Without --config the run's own
config stored in the checkpoint is used.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable as a script from anywhere

from configs.loader import load_config  # noqa: E402
from trainers import build_trainer  # noqa: E402
from trainers.checkpoint import load as load_checkpoint_file  # noqa: E402
from trainers.cli import exit_on_user_error  # noqa: E402


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--config", help="config to build the model and data from (default: the stored one)")
    parser.add_argument("--opts", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking")
    args = parser.parse_args(argv)
    checkpoint = Path(args.checkpoint)
    cfg = load_config(args.config or load_checkpoint_file(checkpoint)["config"], args.opts)
    trainer = build_trainer(cfg, checkpoint.parent)
    trainer.load_checkpoint(checkpoint, weights_only=True)
    results = trainer.evaluate(rerank=args.rerank)
    print(f"{cfg.data.dataset}{' (re-ranked)' if args.rerank else ''}: " +
          "  ".join(f"{k} {100 * v:.2f}%" for k, v in results.items()))
    out = checkpoint.with_name(checkpoint.name + (".eval-rerank.json" if args.rerank else ".eval.json"))
    out.write_text(json.dumps({"checkpoint": str(checkpoint), "dataset": cfg.data.dataset,
                               "rerank": args.rerank, **results}, indent=2) + "\n")
    print(f"written {out}")
    return results


if __name__ == "__main__":
    exit_on_user_error(main)
