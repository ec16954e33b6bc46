"""Keeping the GUI thread responsive while other threads compute.

Worker threads run at a lower CPU priority than the GUI thread, and the garbage collector is
kept from scanning the models on every full collection.
"""
from __future__ import annotations

import gc
import os
import sys
import threading

WORKER_NICENESS = 5      # how much lower than the GUI thread the workers run (Linux)


def lower_priority(threads: list[threading.Thread] | None = None, delta: int | None = None,
                   prefix: str = "pose-pipeline-") -> None:
    """Give worker threads a lower CPU priority than the GUI thread (Linux: per-thread nice).

    On a busy machine the scheduler then runs the GUI thread first whenever it is ready, so
    decoding and inference cannot crowd out the event loop. Best effort: raising a nice value
    needs no privileges, and elsewhere this does nothing."""
    delta = WORKER_NICENESS if delta is None else delta
    if not sys.platform.startswith("linux") or delta <= 0:
        return
    if threads is None:
        threads = [t for t in threading.enumerate() if t.name.startswith(prefix)]
    for t in threads:
        tid = getattr(t, "native_id", None)
        if tid is None or getattr(t, "_studio_niced", False) or not t.is_alive():
            continue
        try:
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid)
                                                      + delta))
            t._studio_niced = True               # type: ignore[attr-defined]
        except OSError:
            pass


def settle_garbage_collector() -> None:
    """Collect, then freeze what is alive (the models, Qt, torch's modules) out of the GC.

    A full collection scans every tracked object and holds the GIL meanwhile: with torch and a
    model loaded that is ~50-130 ms, a visible stall whenever one happened during playback.
    Frozen objects are never scanned again (refcounting still frees them), so later full
    collections only look at the young objects. Called once a model is loaded (the window
    shows a busy state then anyway); unfreeze first so an old model's cycles are collected.

    Call it on the GUI thread: the collection finalises Python wrappers of Qt objects, which
    belong to that thread (from a worker it deadlocked against the event loop)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
