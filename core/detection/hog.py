"""OpenCV's HOG + linear SVM people detector (Dalal & Triggs): no model file, no network.

The default people detector scans a 64 x 128 window, so people shorter than ~100 px are
missed: frames whose height is below `min_height` are upscaled first. The raw window hits
(SVM margins) are thresholded at `hit_threshold`, merged with NMS (a kept window needs
`min_hits` other windows overlapping it, which removes most one-off false hits), and the
margin becomes a score in (0, 1) through a logistic curve. The window is padded around the person (about
1/8 of its width each side, 1/16 of its height above and below), so boxes are shrunk by
`shrink` to fit the person.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.errors import InputError
from core.types import Detections

from .base import (PersonDetector, box_iou, check_image, clip_boxes, config_from_kwargs,
                   make_detections, nms)


@dataclass
class HogConfig:
    hit_threshold: float = 0.0      # SVM margin a window needs (0 = the SVM's own boundary)
    score_threshold: float = 0.0    # on the final (0, 1) score
    nms_iou: float = 0.4
    min_height: int = 600           # frames lower than this are upscaled to it
    max_upscale: float = 3.0
    win_stride: int = 8
    padding: int = 8
    scale: float = 1.05
    min_hits: int = 1               # other windows that must overlap (IoU > 0.3) a kept one
    shrink: tuple[float, float] = (0.125, 0.0625)  # fraction of w, h removed on each side
    score_temperature: float = 1.0  # score = sigmoid(margin / temperature)
    max_detections: int = 100

    def __post_init__(self) -> None:
        if float(self.scale) <= 1.0:
            raise InputError(f"scale must be > 1, not {self.scale}.")
        if int(self.win_stride) < 1 or int(self.win_stride) % 8 and int(self.win_stride) != 4:
            raise InputError(f"win_stride must be 4 or a multiple of 8 (HOG cell size), not {self.win_stride}.")


class HogDetector(PersonDetector):
    """cv2.HOGDescriptor with the default people SVM."""

    name = "hog"

    def __init__(self, config: HogConfig | None = None, **cfg) -> None:
        if config is not None and cfg:
            raise InputError("Give the HOG detector either a config or options, not both.")
        self.config = config if config is not None else config_from_kwargs(HogConfig, "hog", cfg)
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def __call__(self, image_bgr: np.ndarray) -> Detections:
        c = self.config
        image = check_image(image_bgr)
        h, w = image.shape[:2]
        f = min(max(1.0, c.min_height / h), float(c.max_upscale))
        work = image if f == 1.0 else cv2.resize(image, (round(w * f), round(h * f)),
                                                 interpolation=cv2.INTER_LINEAR)
        if work.shape[0] < 128 or work.shape[1] < 64:
            return Detections()
        # groupThreshold=0 / no mean-shift: the raw windows, merged by our own NMS below.
        rects, weights = self.hog.detectMultiScale(
            work, hitThreshold=float(c.hit_threshold), winStride=(c.win_stride, c.win_stride),
            padding=(c.padding, c.padding), scale=float(c.scale), groupThreshold=0,
            useMeanshiftGrouping=False)
        if len(rects) == 0:
            return Detections()
        boxes = np.asarray(rects, np.float32).reshape(-1, 4) / f
        margins = np.asarray(weights, np.float32).reshape(-1)
        keep = nms(boxes, margins, c.nms_iou)
        if c.min_hits > 0:
            support = (box_iou(boxes[keep], boxes) > 0.3).sum(1) - 1
            keep = keep[support >= c.min_hits]
        boxes, margins = boxes[keep], margins[keep]
        sx, sy = c.shrink
        boxes = np.stack([boxes[:, 0] + sx * boxes[:, 2], boxes[:, 1] + sy * boxes[:, 3],
                          boxes[:, 2] * (1 - 2 * sx), boxes[:, 3] * (1 - 2 * sy)], axis=1)
        scores = 1.0 / (1.0 + np.exp(-margins / float(c.score_temperature)))
        ok = scores >= c.score_threshold
        det = make_detections(clip_boxes(boxes[ok], w, h), scores[ok])
        return Detections(det.boxes[: c.max_detections], det.scores[: c.max_detections])
