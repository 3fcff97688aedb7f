"""What the training tests share: a run's folder, and a run in 2 CPU processes of one gloo group
(as under torchrun) for the data-parallel tests."""
import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp

from configs.loader import load_config


def run_dir(cfg) -> Path:
    return Path(cfg.run.log_dir) / cfg.run.name


def run_two_gloo_processes(worker, cfg, out: Path) -> list[dict]:
    """`worker(cfg) -> dict` (a module-level function) in 2 processes; their dicts, in rank order."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_process, args=(worker, port, cfg.to_dict(), out), nprocs=2, join=True)
    return [torch.load(out / f"rank{rank}.pt", weights_only=False) for rank in (0, 1)]


def _process(rank, worker, port, cfg_dict, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE="2")
    torch.set_num_threads(1)
    torch.save(worker(load_config(cfg_dict)), out / f"rank{rank}.pt")
