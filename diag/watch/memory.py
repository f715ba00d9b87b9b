"""Keep the watch's resident memory flat over days of cycles (glibc malloc tuning).

A cycle allocates and frees a few large buffers (the ``/metrics`` text is about 9 KB per target;
the probe report and its JSON are of the same order). glibc serves a request above
``M_MMAP_THRESHOLD`` (128 KiB) with its own mapping, returned on ``free`` — but by default the
threshold is dynamic: freeing such a mapping raises the threshold to its size, so every later
buffer of that size is carved from the heap arenas instead, between long-lived objects, and the
arenas' free space grows cycle after cycle without being given back. Fixing the threshold turns
the dynamic raise off; capping the arenas at two keeps the probe threads (one per concurrent
probe) from spreading that churn over one arena each. Measured in docs/benchmarks.md (watch).

Only glibc has ``mallopt`` with these parameters; elsewhere (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_MMAP_THRESHOLD = -3  # glibc malloc.h
M_ARENA_MAX = -8
MMAP_THRESHOLD = 128 * 1024  # glibc's initial value, now fixed
ARENA_MAX = 2


def tune_malloc() -> bool:
    """Fix glibc's mmap threshold and cap its arenas; True when applied (glibc on Linux).
    Call before the probe threads start (arenas already created are kept)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if not hasattr(libc, "gnu_get_libc_version"):  # musl exports a no-op mallopt
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_ARENA_MAX, ARENA_MAX))
