"""Where a new shot starts: a cut in an edited video, the next photo of a folder of photos.

Nobody on the frame before a cut can be followed into the frame after it: their boxes and
keypoints say nothing there. The step looks again with the detector instead, and the
tracker starts afresh (core.step).

The measure is PySceneDetect's content value (ContentDetector: the mean absolute change
of hue, saturation and value between consecutive frames, on OpenCV's scales: hue 0-179,
taken round its circle here, the others 0-255), computed on a 48x48-point grid of pixels
rather than on the whole frame: about 0.1 ms a frame on an HD frame instead of several ms
for a colour conversion of the whole frame, and no dependency for one comparison.
Measured on the shared clips (largest value between two consecutive frames): Pose2Sim 1.8
and 2.4, the pedestrians 7.4, Sports2D 18.8 (the jumper passing in front of the sun, whose
glare goes); between unrelated photos of the COCO set, 59 to 72. A frame of another size
always starts a new shot.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class ShotConfig:
    threshold: float | None = 30.0   # content value from which a frame starts a new shot
    #                                # (None: only a change of frame size does)
    grid: int = 48                   # pixels sampled per row and per column


class ShotChange:
    """``shots(image) -> bool`` for consecutive frames: whether `image` starts a new shot
    after the frame given before. The first frame after construction or `forget()`
    starts none (there is nothing to compare it with)."""

    def __init__(self, config: ShotConfig = ShotConfig()) -> None:
        self.config = config
        self._last: np.ndarray | None = None
        self._last_hw: tuple[int, int] | None = None
        self.last_value = 0.0             # the content value of the last comparison

    def forget(self) -> None:
        """The next frame is not the one after the last (a seek, a new source)."""
        self._last, self._last_hw = None, None

    def __call__(self, image: np.ndarray) -> bool:
        hw = image.shape[:2]
        resized = self._last_hw is not None and hw != self._last_hw
        thumb = self._thumbnail(image) if self.config.threshold is not None else None
        last, self._last, self._last_hw = self._last, thumb, hw
        self.last_value = 0.0
        if resized:
            return True
        if thumb is None or last is None:
            return False
        self.last_value = content_value(last, thumb)
        return self.last_value >= self.config.threshold

    def _thumbnail(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        sy, sx = max(1, h // self.config.grid), max(1, w // self.config.grid)
        grid = np.ascontiguousarray(image[sy // 2::sy, sx // 2::sx])
        if grid.ndim == 2:
            grid = cv2.cvtColor(grid, cv2.COLOR_GRAY2BGR)
        return cv2.cvtColor(grid, cv2.COLOR_BGR2HSV).astype(np.float32)


def content_value(a: np.ndarray, b: np.ndarray) -> float:
    """The mean absolute change of H, S and V between two HSV images of one size (OpenCV's
    scales; hue taken round its circle), averaged over the three."""
    d = np.abs(a - b)
    d[..., 0] = np.minimum(d[..., 0], 180.0 - d[..., 0])
    return float(d.reshape(-1, 3).mean(axis=0).mean())
