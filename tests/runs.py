"""What the training tests share: a run's folder, a run in 2 CPU processes of one gloo group
(as under torchrun) for the data-parallel tests, and a CPU with or without native bfloat16."""
import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp

from configs.loader import load_config


def run_dir(cfg) -> Path:
    return Path(cfg.run.log_dir) / cfg.run.name


def fake_native_bfloat16(monkeypatch, native: bool) -> None:
    """Make torch's oneDNN answer that this CPU has native bfloat16 (AVX-512 BF16 / AMX) or not, so
    that `run.amp` takes the same branch on every machine."""
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: native)


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
