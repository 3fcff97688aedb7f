"""DG-Net training iteration time and peak memory of a DG-Net config (default: the paper's setting,
configs/latest.yaml).

    python bench/bench_dgnet.py [--config configs/latest.yaml] [--sizes 256x128 128x64] [--batch 8]
                                [--iters 4] [--warmup 2] [--precisions float32 bfloat16]
                                [--opts gen.recompute=true] [--by-module]

The config's own networks, size and batch unless --sizes / --batch say otherwise; e.g.
`--config configs/synthetic-dgnet-long.yaml` times the long synthetic recipe's iteration (the main
job's networks). Two JSON lines per size, float32 then the mixed precision (autocast bfloat16 on the CPU, float16 with
loss scaling on CUDA), appended to bench/results/dgnet.jsonl: median seconds per iteration
(discriminator step + generator/appearance-encoder step, every loss term on, as after the warm-up)
and the peak resident memory of a process that ran only that setting; the floating-point work of one
iteration (convolutions and matrix products, forward and backward, counted by torch's FlopCounterMode),
the rate the iteration ran at, and for scale the rate of one large 3x3 convolution (forward + backward,
the decoder's residual-block shape) on this machine. The mixed-precision line also gives its speed-up
over float32. Every line names the CPU, its flags that decide bfloat16's speed (avx2, avx512f,
avx512_bf16, amx_bf16) and what `run.amp` would train in on it: bfloat16 is measured even on a CPU
where `run.amp` falls back to float32 (emulated bfloat16), so the line shows what the fallback saves.
Random init (no ImageNet file needed) on a generated toy set in the Market layout at the measured size,
with an untrained teacher of the config's backbone; the trainer's defaults otherwise (on the CPU it keeps freed memory for reuse,
`run.keep_freed_memory`; the line says so). `--by-module` runs one more iteration and adds where its
memory went: the peak of the bytes autograd keeps for backward, by module (bench/saved_activations.py),
beside the parameters' and optimizer states' bytes.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import emit  # noqa: E402
from bench.saved_activations import SavedActivations  # noqa: E402
from configs.loader import load_config  # noqa: E402
from reid_data.toy import write_toy_market  # noqa: E402
from trainers import build_trainer  # noqa: E402
from runtime.device import amp_dtype  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "dgnet.jsonl"
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")  # emulated, wide, native bfloat16 dot products, tiles
DTYPES = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}


class CountFlops(TorchDispatchMode):
    """Floating-point operations of everything run inside it, by torch's per-operator formulas
    (convolutions and matrix products). FlopCounterMode itself cannot be used: its module tracker
    fails under torch.autograd.grad, which the gradient penalty calls."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **(kwargs or {}), out_val=out)
        return out


def measure(config: str, height: int, width: int, batch: int, precision: str, iters: int, warmup: int,
            device: str, by_module: bool = False, opts: tuple = ()) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "toy"
        write_toy_market(str(data), num_ids=4 * batch + 4, images_per_id=6, height=height, width=width)
        common = ["data.dataset=toy", f"data.root={data}", "data.workers=0", f"run.log_dir={tmp}/logs",
                  "model.pretrained=false", f"run.device={device}"]
        model = load_config(config).model
        # the DG-Net config's backbone: the appearance encoder may start from it (dgnet.init_from_teacher)
        teacher_cfg = load_config(ROOT / "configs" / "market1501-teacher.yaml",
                                  ["run.name=teacher", f"model.backbone={model.backbone}",
                                   f"model.last_stride={model.last_stride}", *common])
        teacher = build_trainer(teacher_cfg, Path(tmp) / "logs" / "teacher").save_checkpoint()
        cfg = load_config(config, [
            f"data.height={height}", f"data.width={width}", f"data.batch_size={4 * batch}",
            f"run.amp={str(precision != 'float32').lower()}",  # on CUDA: float16 with its loss scaling
            f"dgnet.teacher={teacher}", "dgnet.warm_iter=0", "dgnet.warm_teacher_iter=0", "run.name=bench", *common,
            *opts])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # run.amp's fallback to float32 on this CPU: overridden just below
            trainer = build_trainer(cfg, Path(tmp) / "logs" / "bench")
        trainer.amp_dtype = DTYPES[precision]  # the precision asked for, native or emulated
        trainer.iteration = 10_000  # past the ramps: every term is computed
        batches = trainer.batches(0)
        times = []
        for i in range(warmup + iters):
            batch_items = next(batches)
            if trainer.device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            trainer.train_step(batch_items)
            if trainer.device.type == "cuda":
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - start)
        with CountFlops() as flops:  # one more iteration, counted
            trainer.train_step(next(batches))
        gflop = flops.total / 1e9
        held = None
        if by_module:  # one more, with what autograd keeps for backward accounted by module
            with SavedActivations(torch.nn.ModuleDict({"dgnet": trainer.net, "teacher": trainer.teacher}),
                                  depth=4) as held:
                trainer.train_step(next(batches))
        row = {"bench": "dgnet_train_iteration", "config": str(Path(config).resolve().relative_to(ROOT)), "height": height, "width": width, "batch": batch,
               "amp": precision != "float32", "precision": precision, "device": str(trainer.device),
               "seconds_per_iter": round(statistics.median(times), 3), "best_seconds": round(min(times), 3),
               "gflop_per_iter": round(gflop), "achieved_gflops": round(gflop / statistics.median(times), 1),
               "iters": iters, "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
               "skipped_steps": trainer.skipped_steps, "keep_freed_memory": cfg.run.keep_freed_memory,
               "gen_recompute": cfg.gen.recompute, "model_recompute": cfg.model.recompute,
               **({"opts": list(opts)} if opts else {})}
        if held is not None:
            mb = lambda n: round(n / 2 ** 20, 1)  # noqa: E731
            row["saved_for_backward_peak_mb"] = mb(held.peak_bytes)
            row["saved_for_backward_mb_by_module"] = {k: mb(v) for k, v in sorted(
                held.peak_by_module.items(), key=lambda kv: -kv[1])}
            row["parameters_mb"] = mb(sum(p.numel() * p.element_size() for p in trainer.net.parameters()))
            row["optimizer_state_mb"] = mb(sum(t.numel() * t.element_size() for o in trainer.optimizers.values()
                                              for state in o.state.values() for t in state.values()
                                              if torch.is_tensor(t)))
        if trainer.device.type == "cuda":
            row["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2 ** 20)
        return row


def cpu_description() -> dict:
    """The CPU's model name and its flags in CPU_FLAGS (from /proc/cpuinfo; empty where there is none),
    and the precision `run.amp` trains in on it."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    fields = dict(line.split(":", 1) for line in info.split("\n\n")[0].splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fallback's warning: the answer is what is wanted here
        run_amp = amp_dtype(torch.device("cpu"))
    return {"cpu": fields.get("model name", platform.processor()), "cpu_flags": {f: f in flags for f in CPU_FLAGS},
            "run_amp_precision": next(name for name, dtype in DTYPES.items() if dtype == run_amp)}


def conv_rate(device: str) -> float:
    """GFLOP/s of forward + backward of a 3x3 128->128 convolution on 48 maps of 64x32: about the best
    rate convolutions reach on this device, against which an iteration's rate can be read."""
    conv = torch.nn.Conv2d(128, 128, 3, padding=1).to(device)
    x = torch.randn(48, 128, 64, 32, device=device, requires_grad=True)
    flop = 3 * 2 * x.numel() * 128 * 9  # forward, input gradient and weight gradient
    times = []
    for _ in range(4):
        start = time.perf_counter()
        conv(x).sum().backward()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return round(flop / min(times[1:]) / 1e9, 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "configs" / "latest.yaml"))
    parser.add_argument("--sizes", nargs="+", help="HxW (default: the config's)")
    parser.add_argument("--batch", type=int, help="images per side (default: the config's; the paper: 8)")
    parser.add_argument("--iters", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--precisions", nargs="+", choices=sorted(DTYPES),
                        help="default: float32, then bfloat16 on a CPU or float16 on CUDA")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--opts", nargs="+", default=[], metavar="KEY=VALUE",
                        help="config overrides, e.g. gen.recompute=true (recorded in the line)")
    parser.add_argument("--by-module", action="store_true",
                        help="one more iteration with the bytes saved for backward accounted by module")
    parser.add_argument("--one", nargs=3, metavar=("H", "W", "PRECISION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = load_config(args.config).data
    args.batch = args.batch or data.batch_size // 4  # identities a side
    if args.one:  # measure_alone's process
        h, w, precision = int(args.one[0]), int(args.one[1]), args.one[2]
        print(json.dumps(measure(args.config, h, w, args.batch, precision, args.iters, args.warmup, args.device,
                                 args.by_module, tuple(args.opts))))
        return
    precisions = args.precisions or ["float32", "float16" if args.device.startswith("cuda") else "bfloat16"]
    for size in args.sizes or [f"{data.height}x{data.width}"]:
        h, w = (int(v) for v in size.split("x"))
        rows = [measure_alone(h, w, precision, args) for precision in precisions]
        for row in rows[1:]:
            row["speedup_vs_" + rows[0]["precision"]] = round(rows[0]["seconds_per_iter"] / row["seconds_per_iter"], 2)
        for row in rows:
            row.update(conv_gflops=conv_rate(args.device), threads=torch.get_num_threads(), cpus=os.cpu_count(),
                       load_1min=round(os.getloadavg()[0], 2), machine=platform.machine(), torch=torch.__version__,
                       **cpu_description())
            emit(row, RESULTS)


def measure_alone(height: int, width: int, precision: str, args) -> dict:
    """`measure` in a process of its own, so that its peak memory is its own."""
    out = subprocess.run([sys.executable, __file__, "--one", str(height), str(width), precision,
                          "--config", args.config, "--batch", str(args.batch), "--iters", str(args.iters),
                          "--warmup", str(args.warmup), "--device", args.device, *["--by-module"] * args.by_module,
                          *(["--opts", *args.opts] if args.opts else [])],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
