"""The GUI's background worker: one thread running submitted jobs in order."""
from __future__ import annotations

import logging
import threading
import traceback
from collections import deque
from typing import Callable

from .responsiveness import lower_priority

log = logging.getLogger(__name__)


class JobWorker:
    """One background thread running submitted callables in order.

    A job submitted with a key replaces a pending (not yet started) job with the same key,
    so a burst of slider moves computes only the newest still frame."""

    def __init__(self, name: str = "gui-worker",
                 on_done: Callable[[], None] | None = None) -> None:
        self._on_done = on_done              # called on the worker after every job
        self._jobs: deque[tuple[str | None, Callable[[], None]]] = deque()
        self._cv = threading.Condition()
        self._closed = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        lower_priority([self._thread])

    def submit(self, fn: Callable[[], None], key: str | None = None) -> bool:
        """Queue a job; False when it replaced a pending one (or the worker is closed)."""
        with self._cv:
            if self._closed:
                return False
            if key is not None:
                for i, (k, _) in enumerate(self._jobs):
                    if k == key:
                        self._jobs[i] = (key, fn)
                        self._cv.notify()
                        return False
            self._jobs.append((key, fn))
            self._cv.notify()
            return True

    @property
    def idle(self) -> bool:
        with self._cv:
            return not self._jobs and not self._busy

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._jobs and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                _, fn = self._jobs.popleft()
                self._busy = True
            try:
                fn()
            except Exception:                        # noqa: BLE001 - a bug; keep the GUI alive
                log.error("GUI worker job failed:\n%s", traceback.format_exc())
            finally:
                with self._cv:
                    self._busy = False
                if self._on_done is not None:
                    self._on_done()

    def shutdown(self, timeout: float) -> bool:
        with self._cv:
            self._closed = True
            self._jobs.clear()
            self._cv.notify_all()
        self._thread.join(max(0.0, timeout))
        return not self._thread.is_alive()


class CountingWorker(JobWorker):
    """The controller's worker: its owner counts queued jobs on the GUI thread (see
    Controller.idle). `on_added` runs in submit() for each job added (not for one that
    replaced a pending job); `on_done` runs on the worker after every job."""

    def __init__(self, on_added: Callable[[], None], on_done: Callable[[], None],
                 name: str = "gui-worker") -> None:
        self._on_added = on_added
        super().__init__(name=name, on_done=on_done)

    def submit(self, fn: Callable[[], None], key: str | None = None) -> bool:
        added = super().submit(fn, key)
        if added:
            self._on_added()
        return added
