"""CPU memory-allocator tuning for batched inference (BENCHMARKS.md, "CPU allocator").

With glibc's default settings, every allocation above the (adaptive, at most 32 MiB) mmap
threshold is a fresh ``mmap``: the kernel zero-fills each page on first touch, and the block
goes back to the OS when the tensor is freed. A CNN forward pass on a batch of 224×224 images
allocates and frees hundreds of MiB of activations, so on CPU much of a scoring loop's time is
page faults in the kernel (MobileNetV2 at batch size 64: two thirds of its CPU time is system
time, and it is 3.4× slower per image than with the tuning below). Perturbation methods and metrics run thousands of such
forwards.
"""
from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4
_applied = False


def tune_cpu_malloc() -> bool:
    """Make glibc keep freed memory for reuse instead of returning it to the OS.

    Sets ``M_MMAP_MAX = 0`` (large blocks come from the heap, not from fresh mappings),
    ``M_TRIM_THRESHOLD`` = 2 GiB and ``M_TOP_PAD`` = 64 MiB (the heap is not shrunk after each
    forward pass). Results are unchanged; batched CPU forwards get faster (3.4× for MobileNetV2
    at batch size 64, BENCHMARKS.md). The cost: the process keeps its peak heap until it exits.

    Process-wide, so it is opt-in for library use; the ``cnnlens`` command calls it. Returns
    ``True`` when the settings were applied (Linux with glibc), ``False`` elsewhere (no effect).

    >>> import cnnlens
    >>> cnnlens.tune_cpu_malloc() in (True, False)
    True
    """
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only (musl has mallopt with other options)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = all(mallopt(opt, val) == 1 for opt, val in (
        (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1), (_M_TOP_PAD, 64 * 2**20)))
    _applied = ok
    return ok
