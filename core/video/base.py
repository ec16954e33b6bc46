"""The `FrameSource` interface every frame source implements, and what the sources share:
the image/video extension sets and natural file order (img2 before img10). Every source yields
upright BGR `Frame`s in order with honest timestamps (video pts, image index / fps, a camera's
monotonic clock); what the user can fix is an `InputError` that names the file."""
from __future__ import annotations

import logging
import re
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Iterator

from ..errors import InputError
from ..types import Frame

# One logger for every source kind: annotate and the Ray workers quiet the sources' warnings
# through it.
log = logging.getLogger("core.video")

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp",
                              ".jp2", ".pgm", ".ppm", ".pbm", ".pnm"})

# What a folder argument counts as videos (annotate takes these from a folder; a folder with
# none of them but images is an image sequence).
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg",
                              ".mpeg", ".wmv", ".flv", ".ts", ".mts", ".m2ts", ".3gp", ".ogv",
                              ".mxf", ".dv", ".asf"})


def natural_key(name: str) -> list[Any]:
    """Sort key so that img2 < img10 (digit runs compare as numbers)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _visible_files(folder: Path, extensions: frozenset[str]) -> list[Path]:
    return sorted((f for f in folder.iterdir()
                   if f.is_file() and f.suffix.lower() in extensions
                   and not f.name.startswith(".")), key=lambda f: natural_key(f.name))


class FrameSource(ABC):
    """An ordered stream of `Frame`s.

    Iterating continues from the current position (after `seek(k)` the next frame is k), so a
    source is a cursor, not a collection. `close()` may be called from another thread to stop a
    blocking read: the reading thread notices after its current read, releases the device/file
    and ends its iteration (it does not get that last frame).
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._stop = threading.Event()
        # Held around every read/seek; close() only releases resources itself when no read is
        # running, otherwise the reader does it (FFmpeg/V4L2 handles are not safe to free
        # under a running read).
        self._io_lock = threading.RLock()
        self._released = False
        self.warnings: list[str] = []
        self.stopped_reason: str | None = None   # why iteration ended early, None if it did not
        # frames there really are, once a file announcing more has ended (cut short); None
        # while unknown or when the announced count holds
        self.frames_available: int | None = None
        # Frames that could not be read and were left out ({"frame", "file", "reason"}), and
        # how a non-increasing timeline was replaced (None when the timestamps were fine).
        self.skipped_frames: list[dict[str, Any]] = []
        self.timestamp_repair: dict[str, Any] | None = None

    # -- description --------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    @abstractmethod
    def fps(self) -> float | None: ...

    @property
    @abstractmethod
    def frame_count(self) -> int | None: ...

    @property
    @abstractmethod
    def size_hw(self) -> tuple[int, int]:
        """(height, width) of the frames as yielded, i.e. after rotation."""

    @property
    def rotation(self) -> int:
        """Clockwise degrees (0/90/180/270) the stored pixels are turned to stand upright: the
        value of the classic "rotate" tag (a phone video shot upright says 90)."""
        return 0

    @property
    def is_live(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    # -- reading ------------------------------------------------------------------------------
    @abstractmethod
    def _read_next(self) -> Frame | None:
        """The next frame, or None at the end. Called with the I/O lock held."""

    @abstractmethod
    def _seek(self, index: int) -> None:
        """Position so that the next `_read_next` returns frame `index`. Lock held."""

    @abstractmethod
    def _release(self) -> None:
        """Free the file/device. Called once, with the I/O lock held."""

    def __iter__(self) -> Iterator[Frame]:
        while not self._stop.is_set():
            with self._io_lock:
                if self._stop.is_set():
                    break
                frame = self._read_next()
                if self._stop.is_set():      # closed while we were blocked in the read
                    self._release_locked()
                    break
            if frame is None:
                break
            yield frame
        if self._stop.is_set():
            with self._io_lock:
                self._release_locked()

    def seek(self, index: int) -> None:
        """Make `index` the next frame iteration yields."""
        if self.is_live:
            raise InputError(f"{self.name}: a live source cannot seek")
        index = int(index)
        count = self.frame_count
        if index < 0 or (count is not None and index >= count):
            raise InputError(f"{self.name}: frame {index} is out of range "
                             f"(the source has {count} frames)")
        with self._io_lock:
            self._check_open()
            self._seek(index)

    def read_at(self, index: int) -> Frame:
        """Frame `index`; iteration then continues at index + 1."""
        self.seek(index)
        with self._io_lock:
            self._check_open()
            frame = self._read_next()
        if frame is None:
            raise InputError(f"{self.name}: frame {index} could not be read "
                             f"({self.stopped_reason or 'the source ended before it'})")
        return frame

    # -- lifetime -----------------------------------------------------------------------------
    def close(self) -> None:
        self._stop.set()
        if self._io_lock.acquire(blocking=False):
            try:
                self._release_locked()
            finally:
                self._io_lock.release()
        # else: a read is in progress on another thread; it releases when it returns.

    def _release_locked(self) -> None:
        if not self._released:
            self._released = True
            self._release()

    def _check_open(self) -> None:
        if self._stop.is_set():
            raise RuntimeError(f"{self.name}: the source is closed")

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        log.warning("%s", message)

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name!r}, size_hw={self.size_hw}, fps={self.fps}, "
                f"frames={self.frame_count})")
