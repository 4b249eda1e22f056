"""`cnnlens.tune_cpu_malloc` (BENCHMARKS.md, "CPU allocator"): after it, a large tensor comes
from the heap, not from a fresh mmap, and freed memory stays in the process for the next
forward pass. Checked with glibc's own accounting (``mallinfo2``) in a fresh interpreter."""
from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

PROBE = r"""
import ctypes, sys, torch, cnnlens
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                 "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "tune":
    assert cnnlens.tune_cpu_malloc() is True and cnnlens.tune_cpu_malloc() is True
before = libc.mallinfo2()
t = torch.ones(64 * 2**20, dtype=torch.uint8)
during = libc.mallinfo2()
del t
after = libc.mallinfo2()
print(during.hblkhd - before.hblkhd, after.arena - before.arena, after.fordblks - before.fordblks)
"""


def _probe(mode: str) -> tuple[int, int, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    mmapped, arena_growth, free_in_heap = (int(v) for v in out.stdout.split())
    return mmapped, arena_growth, free_in_heap


def _has_mallinfo2() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        return hasattr(ctypes.CDLL(None), "mallinfo2")
    except OSError:
        return False


@pytest.mark.skipif(not _has_mallinfo2(), reason="needs glibc >= 2.33 (mallinfo2)")
def test_tuning_keeps_large_blocks_in_the_heap():
    mmapped, _, _ = _probe("default")
    assert mmapped >= 64 * 2**20  # the default: a fresh mapping, returned to the OS on free
    mmapped, arena_growth, free_in_heap = _probe("tune")
    assert mmapped == 0  # tuned: from the heap …
    assert arena_growth >= 64 * 2**20 and free_in_heap >= 64 * 2**20  # … and kept there after the free


def test_tuning_is_a_no_op_off_glibc(monkeypatch: pytest.MonkeyPatch):
    from cnnlens import _cpu

    monkeypatch.setattr(_cpu, "_applied", False)
    monkeypatch.setattr(_cpu.sys, "platform", "darwin")
    assert _cpu.tune_cpu_malloc() is False
