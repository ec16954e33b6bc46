"""Live cameras through OpenCV (`camera:N` or /dev/videoN), with reconnection and listing."""
from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from ..errors import InputError
from ..types import Frame
from .base import FrameSource


@dataclass(frozen=True)
class CameraConfig:
    reconnect_attempts: int = 3      # after a failed read, reopen this many times...
    reconnect_delay_s: float = 0.5   # ...waiting this long before each attempt
    buffer_size: int = 1             # driver queue length: 1 = always the freshest frame
    width: int | None = None         # requested capture size (the driver may ignore it)
    height: int | None = None
    fps: float | None = None         # requested capture rate


_CAMERA_SPEC = re.compile(r"^camera:(\d+)$", re.IGNORECASE)
_DEVICE_PATH = re.compile(r"^/dev/video\d+$")


def is_camera_spec(spec: str | Path) -> bool:
    s = str(spec).strip()
    return bool(_CAMERA_SPEC.match(s) or _DEVICE_PATH.match(s))


def _camera_backend() -> int:
    # V4L2 directly on Linux: GStreamer/FFmpeg backends add latency and their own buffering.
    return cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY


class _QuietOpenCV:
    """Silence OpenCV's own warnings while probing devices (we report problems ourselves)."""

    def __enter__(self) -> None:
        self._level = None
        try:
            self._level = cv2.utils.logging.getLogLevel()
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        except (AttributeError, cv2.error):
            pass

    def __exit__(self, *exc: object) -> None:
        if self._level is not None:
            cv2.utils.logging.setLogLevel(self._level)


class CameraSource(FrameSource):
    """A live camera: `camera:N` or a device path like /dev/video0."""

    def __init__(self, spec: str | Path, config: CameraConfig | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        spec = str(spec).strip()
        super().__init__(spec)
        self.config = config or CameraConfig()
        self._clock = clock
        m = _CAMERA_SPEC.match(spec)
        if m:
            self._target: int | str = int(m.group(1))
        elif _DEVICE_PATH.match(spec):
            self._target = spec
        else:
            raise InputError(f"{spec}: not a camera (use camera:N or /dev/videoN)")
        self._cap = self._open_capture()
        if self._cap is None:
            raise InputError(f"no camera at {spec} (OpenCV could not open it: not connected, "
                             f"busy in another program, or no permission)")
        ok, image = self._safe_read(self._cap)
        if not ok:
            self._cap.release()
            raise InputError(f"{spec}: the camera opened but delivered no frame")
        self._size_hw = (int(image.shape[0]), int(image.shape[1]))
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self._fps = fps if fps > 0 else None
        self._index = 0
        self._t0: float | None = None
        self.reconnects = 0               # successful reconnections so far

    def _open_capture(self) -> Any | None:
        with _QuietOpenCV():
            try:
                cap = cv2.VideoCapture(self._target, _camera_backend())
            except cv2.error:
                return None
            if not cap.isOpened():
                cap.release()
                return None
            cfg = self.config
            cap.set(cv2.CAP_PROP_BUFFERSIZE, cfg.buffer_size)
            if cfg.width:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.width)
            if cfg.height:
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.height)
            if cfg.fps:
                cap.set(cv2.CAP_PROP_FPS, cfg.fps)
            return cap

    @staticmethod
    def _safe_read(cap: Any) -> tuple[bool, np.ndarray | None]:
        try:
            ok, image = cap.read()
        except cv2.error:
            return False, None
        if not ok or image is None or image.size == 0:
            return False, None
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        elif image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        return True, image

    @property
    def fps(self) -> float | None:
        return self._fps

    @property
    def frame_count(self) -> None:
        return None

    @property
    def size_hw(self) -> tuple[int, int]:
        return self._size_hw

    @property
    def is_live(self) -> bool:
        return True

    def _read_next(self) -> Frame | None:
        ok, image = (False, None) if self._cap is None else self._safe_read(self._cap)
        if not ok:
            image = self._reconnect()
            if image is None:
                return None
        now = self._clock()
        if self._t0 is None:
            self._t0 = now
        frame = Frame(index=self._index, time_s=now - self._t0, image=image)
        self._index += 1
        return frame

    def _reconnect(self) -> np.ndarray | None:
        """Reopen the device a few times; the first good frame, or None (reason recorded)."""
        attempts = self.config.reconnect_attempts
        for attempt in range(1, attempts + 1):
            # Event.wait instead of sleep: close() from another thread cuts the wait short.
            if self._stop.wait(self.config.reconnect_delay_s):
                return None
            self._warn(f"{self.name}: read failed, reconnecting ({attempt}/{attempts})")
            if self._cap is not None:
                self._cap.release()
            self._cap = self._open_capture()
            if self._cap is None:
                continue
            ok, image = self._safe_read(self._cap)
            if ok:
                self.reconnects += 1
                return image
        self.stopped_reason = (f"{self.name} stopped delivering frames after frame "
                               f"{self._index - 1}; {attempts} reconnection attempts failed")
        self._warn(self.stopped_reason)
        return None

    def _seek(self, index: int) -> None:
        raise InputError(f"{self.name}: a live camera cannot seek")

    def _release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def list_cameras(max_index: int = 8, devices: Path = Path("/dev")) -> list[str]:
    """Specs (`camera:N`) of the cameras OpenCV can open, probing indices below max_index
    (on Linux only those with a `video<N>` node in `devices`)."""
    if sys.platform.startswith("linux"):
        # Only probe device nodes that exist: quick, and no noise about missing ones.
        nodes = (int(m.group(1)) for p in Path(devices).glob("video*")
                 if (m := re.fullmatch(r"video(\d+)", p.name)))
        indices = sorted(i for i in nodes if i < max_index)
    else:
        indices = list(range(max_index))
    found = []
    with _QuietOpenCV():
        for i in indices:
            try:
                cap = cv2.VideoCapture(i, _camera_backend())
            except cv2.error:
                continue
            try:
                if cap.isOpened():
                    found.append(f"camera:{i}")
            finally:
                cap.release()
    return found
