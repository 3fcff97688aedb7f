"""Keep freed CPU memory in the process for reuse.

A CPU tensor is plain malloc'd memory. glibc serves a large block (above 128 KiB, its threshold
growing to at most 32 MiB) with a fresh mmap and unmaps it on free, and gives freed heap memory
above 128 KiB back to the system. A training step's activations are hundreds of MB and die every
iteration, so every page of them is faulted in and zero-filled again on each step: DG-Net at
256x128 took 26.6 M page faults in five iterations and ran ~1.5x slower than with the heap kept
(bench/results/dgnet.jsonl). The cost: the process keeps its peak memory until it exits.
"""
from __future__ import annotations

import ctypes
import sys

# mallopt(3) parameters
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
    """Serve every block from the heap and never trim it. True if the C library took the setting
    (glibc); False elsewhere (macOS, musl, Windows), where nothing changes."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # -1 disables trimming completely (mallopt(3)); 0 mmapped blocks: all from the heap
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, -1))
