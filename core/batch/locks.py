"""An advisory lock per output key, so that two runs never write one input's outputs at
the same time (fcntl.flock on `<out>/<key>.lock`; NFS v4 supports it too).

The lock file exists only while its holder works: it is removed, under the lock, before
release; a run that acquired a lock on a file since removed tries again.
"""
from __future__ import annotations

import errno
import os
import time
from pathlib import Path

from ..errors import InputError

try:
    import fcntl
except ImportError:                         # pragma: no cover - Windows: no locking
    fcntl = None                            # type: ignore[assignment]

IF_LOCKED = ("wait", "skip", "fail")


class OutputBusy(InputError):
    """Another run is writing these outputs (and --if-locked is skip or fail)."""

    def __init__(self, message: str, holder: str) -> None:
        super().__init__(message)
        self.holder = holder


class OutputLock:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self, if_locked: str = "wait", poll_s: float = 0.2,
                on_wait=None) -> None:
        """Take the lock. Held elsewhere: `wait` blocks until it is free (calling
        `on_wait(holder)` once), `skip` and `fail` raise OutputBusy at once."""
        if fcntl is None:
            return
        waited = False
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as e:
                raise InputError(f"{self.path}: cannot create the lock file "
                                 f"({e.strerror or e})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise InputError(f"{self.path}: cannot lock ({e.strerror or e})") from None
                holder = self.holder()
                if if_locked != "wait":
                    raise OutputBusy(f"{self.path.with_suffix('')}.*: another run ({holder}) "
                                     f"is writing these outputs", holder) from None
                if not waited and on_wait is not None:
                    on_wait(holder)
                waited = True
                time.sleep(poll_s)
                continue
            # the holder before us may have removed the file: lock the file on disk
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()} on {os.uname().nodename}\n".encode())
            self._fd = fd
            return

    def holder(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8").strip() or "another process"
        except OSError:
            return "another process"

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "OutputLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
