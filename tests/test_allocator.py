"""keep_freed_memory: a large tensor allocated again after being freed reuses the same pages instead
of faulting them in anew. Measured in fresh processes, since the setting is process-wide."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The fewest page faults of twelve rounds of allocating, filling and freeing a 64 MiB tensor (16,384
# pages). An aligned allocation leaves a small sliver behind it, which glibc's thread cache keeps (up
# to 7 of a size) as if in use, so the first freed blocks cannot merge and the next one is a little
# too big for each hole; from about the 8th round the holes merge and the block is served from memory
# already faulted in (seen on glibc 2.36: rounds 1-8 fault, 9-12 do not).
PROBE = """
import resource, sys
sys.path.insert(0, {root!r})
import torch
from runtime.allocator import keep_freed_memory
took = keep_freed_memory() if sys.argv[1] == "keep" else None
counts = []
for _ in range(12):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.ones(16 * 2 ** 20)
    counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    del x
print(took, min(counts))
"""


def faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(root=str(ROOT)), mode], capture_output=True,
                         text=True, check=True).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_freed_memory_is_reused_without_page_faults():
    _, default = faults("default")
    took, kept = faults("keep")
    assert default > 16_000  # glibc's default: the freed block went back to the system
    assert took == "True" and kept < 1_000


def test_trainer_applies_it_on_cpu_only_when_asked(monkeypatch, tmp_path):
    import trainers.base as base
    from configs.loader import load_config
    calls = []
    monkeypatch.setattr(base, "keep_freed_memory", lambda: calls.append(1))
    monkeypatch.setattr(base.Trainer, "build", lambda self: None)
    base.Trainer(load_config(None, ["run.device=cpu"]), tmp_path)
    base.Trainer(load_config(None, ["run.device=cpu", "run.keep_freed_memory=false"]), tmp_path)
    assert calls == [1]
