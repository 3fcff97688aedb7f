#!/usr/bin/env python
"""Train any GenReID method: python train.py --config FILE [--opts key=value ...] [--resume CKPT]"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from configs.loader import load_config, save_config
from trainers import build_trainer
from runtime.checkpoint import read_checkpoint
from configs.errors import command


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", help="YAML config (see configs/); optional with --resume")
    parser.add_argument("--opts", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override config keys, e.g. run.max_iter=1000 data.root=/data")
    parser.add_argument("--resume", metavar="CKPT", help="continue the run saved in this checkpoint")
    args = parser.parse_args(argv)
    if not args.config and not args.resume:
        parser.error("give --config FILE (or --resume CKPT)")
    return args


@command
def main(argv=None):
    args = parse_args(argv)
    if args.config:
        cfg = load_config(args.config, args.opts)
        if cfg.run.name is None:  # name the run after its config file, and store that name
            cfg = load_config(args.config, [*args.opts, f"run.name={json.dumps(Path(args.config).stem)}"])
    else:  # resume with the run's own config
        cfg = load_config(read_checkpoint(args.resume)["config"], args.opts)
    run_dir = Path(cfg.run.log_dir) / cfg.run.name
    save_config(cfg, run_dir / "config.yaml")
    trainer = build_trainer(cfg, run_dir)
    if args.resume:
        trainer.load_checkpoint(args.resume)
    trainer.fit()
    return trainer


if __name__ == "__main__":
    main.cli()
