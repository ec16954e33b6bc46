"""Playback pacing: a frame source wrapper that yields frames at the video's own rate."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator

from core.types import Frame

DEFAULT_FOLDER_FPS = 10.0      # playback rate of image folders, which have no timing


class PacedSource:
    """A FrameSource wrapper that yields frames no faster than real time x speed.

    Files decode much faster than real time; the live pipeline keeps only the newest frame, so
    pacing the reader is what makes playback run at the video's own rate. Cameras are paced
    by the device and pass straight through. close() only ends this wrapper's iteration: the
    controller owns the wrapped source and reuses it for the next play segment.
    """

    def __init__(self, source: Any, speed: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self._speed = max(0.01, float(speed))
        self._clock = clock
        self._stop = threading.Event()
        self._anchor: tuple[float, float] | None = None   # (wall clock, media time)

    def __getattr__(self, name: str) -> Any:          # fps, frame_count, name, warnings...
        return getattr(self.source, name)

    @property
    def speed(self) -> float:
        return self._speed

    @speed.setter
    def speed(self, value: float) -> None:
        self._speed = max(0.01, float(value))
        self._anchor = None                           # re-anchor: no jump after a change

    def seek(self, index: int) -> None:
        self.source.seek(index)
        self._anchor = None

    def close(self) -> None:
        self._stop.set()

    def _media_time(self, frame: Frame) -> float:
        if getattr(self.source, "fps", None):
            return float(frame.time_s)
        return frame.index / DEFAULT_FOLDER_FPS

    def _wait_for(self, frame: Frame) -> None:
        t = self._media_time(frame)
        while not self._stop.is_set():
            now = self._clock()
            if self._anchor is None:
                self._anchor = (now, t)
                return
            wall0, t0 = self._anchor
            delay = wall0 + (t - t0) / self._speed - now
            if delay <= 0:
                if delay < -0.25 or t < t0:
                    # behind (slow decode) or moved backwards: restart the clock rather
                    # than racing to catch up
                    self._anchor = (now, t)
                return
            self._stop.wait(min(delay, 0.05))         # short waits: speed changes apply fast

    def __iter__(self) -> Iterator[Frame]:
        for frame in self.source:
            if self._stop.is_set():
                return
            if not getattr(self.source, "is_live", False):
                self._wait_for(frame)
                if self._stop.is_set():
                    return
            yield frame
