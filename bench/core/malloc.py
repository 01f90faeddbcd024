"""Keep glibc from returning big CPU buffers to the kernel after every use.

Measured here (bench.perf notes, 2 cores, torch 2.13 CPU): a 1024x1024 StyleGAN-2 forward took
4.8 s, over half of it kernel time spent mapping and zeroing fresh pages, because glibc serves
each large activation with its own mmap and unmaps it on free. With the mmap threshold, trim
threshold and top pad raised it takes 2.2 s with no kernel time. The cost: freed memory stays
in the process (the peak RSS is unchanged). Set BENCH_MALLOC_TUNING=0 to leave glibc alone;
the MALLOC_*_ environment variables, when set, win.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
_INT_MAX = 2**31 - 1


def tune_glibc_malloc() -> bool:
    """Raise the thresholds in this process; True when glibc accepted them."""
    if not sys.platform.startswith("linux") or os.environ.get("BENCH_MALLOC_TUNING", "1") == "0":
        return False
    if any(k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
        return False
    ok = mallopt(M_MMAP_THRESHOLD, _INT_MAX) == 1
    ok &= mallopt(M_TRIM_THRESHOLD, _INT_MAX) == 1
    ok &= mallopt(M_TOP_PAD, 1 << 30) == 1
    return bool(ok)
