"""The watch's malloc tuning (diag/watch/memory.py): with it, a large buffer freed and allocated
again is still served by its own mapping (returned to the system on free) instead of glibc's
raised dynamic threshold moving it into the heap. Each case runs in a child process, so the test
process's allocator is left alone."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import ctypes, json, sys
    sys.path.insert(0, sys.argv[1])
    from diag.watch.memory import tune_malloc

    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in
                    "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    applied = tune_malloc() if sys.argv[2] == "tuned" else None
    size = 2 * 1024 * 1024
    first = libc.malloc(size)
    mapped_first = libc.mallinfo2().hblks
    libc.free(first)
    second = libc.malloc(size)
    mapped_second = libc.mallinfo2().hblks
    libc.free(second)
    print(json.dumps({"applied": applied, "first": mapped_first, "second": mapped_second}))
    """
)


def _child(mode: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(REPO), mode], capture_output=True, text=True, check=True, timeout=60
    )
    out: dict[str, object] = json.loads(done.stdout)
    return out


def test_default_glibc_moves_a_freed_large_buffer_into_the_heap() -> None:
    # The mechanism the tuning exists for: after the first 2 MiB mapping is freed, the threshold
    # rises and the next 2 MiB buffer is carved from the heap (one mapping fewer).
    out = _child("default")
    assert out["second"] == int(str(out["first"])) - 1


def test_tuned_watch_keeps_large_buffers_in_their_own_mappings() -> None:
    out = _child("tuned")
    assert out["applied"] is True
    assert out["second"] == out["first"]
