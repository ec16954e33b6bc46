"""Keeping the GUI's resident memory bounded (glibc's allocator, Linux).

The window decodes full-resolution frames (6 MB for 1080p) on short-lived threads: each
play, seek or step starts the live pipeline's three threads anew. glibc gives threads their
own malloc arenas (up to 8 per core) and keeps what was freed in them for reuse, so the
resident size climbs with every arena that ever held frames and stays there: measured with
a 1768x994 video, 0.84 GB at start, 1.35-1.42 GB after a few minutes of play / step / seek,
while the Python heap (tracemalloc) stayed flat at 168 MB. With two arenas it stayed at
1.20 GB.

`limit_malloc_arenas()` caps the arenas for the threads started afterwards (the pipelines);
`release_free_memory()` hands freed pages back to the system (called when a pipeline stops).
Both do nothing outside glibc.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1     # glibc's mallopt parameter numbers
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
GUI_ARENAS = 2

_libc: object | None = None
_arenas_limited = False


def _glibc() -> object | None:
    global _libc
    if _libc is None:
        _libc = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim"):
                    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
                    libc.malloc_trim.argtypes = [ctypes.c_size_t]
                    _libc = libc
            except OSError:
                pass
    return _libc or None


def limit_malloc_arenas(arenas: int = GUI_ARENAS) -> bool:
    """At most `arenas` malloc arenas from now on (once per process); True when set."""
    global _arenas_limited
    libc = _glibc()
    if libc is None or _arenas_limited:
        return False
    _arenas_limited = bool(libc.mallopt(M_ARENA_MAX, int(arenas)))
    return _arenas_limited


def keep_freed_memory(mmap_below: int = 256 << 20, trim_below: int = 1 << 30) -> bool:
    """Blocks below `mmap_below` bytes from the heap rather than fresh pages, and the heap
    never trimmed below `trim_below` (GLIBC_TUNABLES' mmap_threshold and trim_threshold,
    set from inside): freed memory stays in the process. For benchmarks that must not time
    page faults (benchmarks/model_speed.py --keep-freed-memory); True when set."""
    libc = _glibc()
    return libc is not None and bool(libc.mallopt(M_MMAP_THRESHOLD, int(mmap_below))) and \
        bool(libc.mallopt(M_TRIM_THRESHOLD, int(trim_below)))


def release_free_memory() -> None:
    """Give the pages malloc holds free back to the system (cheap: milliseconds)."""
    libc = _glibc()
    if libc is not None:
        try:
            libc.malloc_trim(0)
        except Exception:                         # noqa: BLE001 - best effort
            log.debug("malloc_trim failed", exc_info=True)
