"""SIGTERM and SIGHUP (what `timeout`, `docker stop`, job schedulers and a closed terminal
send) handled like Ctrl-C: they raise KeyboardInterrupt in the main thread, so the same
clean-up runs (unfinished outputs removed, finished ones kept, a summary printed)."""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


class Terminated(KeyboardInterrupt):
    """KeyboardInterrupt raised for a termination signal; `.signame` says which."""

    def __init__(self, signame: str) -> None:
        super().__init__(signame)
        self.signame = signame


_received: list[str] = []    # termination signals received in the active block


def interrupt_reason(e: BaseException) -> str:
    """SIGTERM / SIGHUP / Ctrl-C: what stopped the run (libraries such as Ray may turn our
    exception into a plain KeyboardInterrupt on its way up; the signal is remembered)."""
    if isinstance(e, Terminated):
        return e.signame
    return _received[-1] if _received else "Ctrl-C"


_active: dict = {}          # signal -> our handler, while a block is active


def reinstall() -> None:
    """Put our handlers back after a library replaced them (ray.init installs its own
    SIGTERM handler, which would end the process without any clean-up)."""
    if threading.current_thread() is threading.main_thread():
        for s, h in _active.items():
            signal.signal(s, h)


@contextlib.contextmanager
def termination_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise `Terminated` (a KeyboardInterrupt) in the
    main thread; the previous handlers come back afterwards. Elsewhere than the main
    thread (the GUI's workers), nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    _received.clear()

    def handler(signum, frame):
        name = signal.Signals(signum).name
        _received.append(name)
        # a second signal while cleaning up must not interrupt the clean-up
        for s in previous:
            signal.signal(s, signal.SIG_IGN)
        raise Terminated(name)
    for name in ("SIGTERM", "SIGHUP"):
        s = getattr(signal, name, None)
        if s is not None:
            previous[s] = signal.signal(s, handler)
            _active[s] = handler
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
            _active.pop(s, None)
