"""What every person detector is, and the box helpers they share (the factory that builds
one by name is `core.detection.factory.create_detector`).

A detector is any callable `detector(image_bgr) -> Detections` with a `name`; boxes are
(x, y, w, h) in the pixels of the image it was given, scores in [0, 1], highest first.
"""
from __future__ import annotations

import abc
from typing import Any

import numpy as np

from core.errors import InputError
from core.types import Detections

class PersonDetector(abc.ABC):
    """Finds people in one BGR uint8 image (H, W, 3)."""

    name: str = "detector"

    @property
    def description(self) -> str:
        """A line saying which detector this is, for logs (its name unless set)."""
        return getattr(self, "_description", None) or self.name

    @description.setter
    def description(self, text: str) -> None:
        self._description = text

    @abc.abstractmethod
    def __call__(self, image_bgr: np.ndarray) -> Detections:
        """All people found, as Detections (empty when there are none)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


# --------------------------------------------------------------------------- helpers


def check_image(image: Any) -> np.ndarray:
    """The image as a contiguous uint8 (H, W, 3) BGR array; InputError when it cannot be one.

    A grey (H, W) or (H, W, 1) image is expanded to three channels, a BGRA one loses alpha.
    """
    if not isinstance(image, np.ndarray):
        raise InputError(f"A detector needs an image as a numpy array, not {type(image).__name__}.")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(f"A detector needs an (H, W, 3) BGR image, not an array of shape "
                         f"{image.shape}.")
    if image.dtype != np.uint8:
        if np.issubdtype(image.dtype, np.floating) and image.size and float(np.nanmax(image)) <= 1.0:
            image = image * 255.0
        image = np.clip(np.nan_to_num(image), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


def intersection_areas(a: np.ndarray, b: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, M) intersection areas of (N, 4) and (M, 4) x, y, w, h boxes, and their areas."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, 0][:, None], b[:, 0][None])
    ih = np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, 1][:, None], b[:, 1][None])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = np.clip(a[:, 2], 0, None) * np.clip(a[:, 3], 0, None)
    area_b = np.clip(b[:, 2], 0, None) * np.clip(b[:, 3], 0, None)
    return inter, area_a, area_b


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU between (N, 4) and (M, 4) boxes given as x, y, w, h."""
    inter, area_a, area_b = intersection_areas(a, b)
    union = area_a[:, None] + area_b[None] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou


def box_containment(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) share of the smaller box's area that lies inside the other (x, y, w, h):
    1 when one box is inside the other, whatever their sizes (IoU is low then)."""
    inter, area_a, area_b = intersection_areas(a, b)
    smaller = np.minimum(area_a[:, None], area_b[None])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(smaller > 0, inter / smaller, 0.0)


def within_reach(a: np.ndarray, b: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """(N, M) bool: box b[j] could be where the person of box a[i] is after a[i] was last
    seen well `gap[i]` frames ago (x, y, w, h): centres closer than the longer of the two
    boxes' longer sides times 0.75 + 0.25 per frame (at most 3), sizes within 3x. Where a
    person lost for a few frames (a leap, a fall, glare) may be found again without any
    box overlap left."""
    long_a = a[:, 2:].max(axis=1)[:, None]
    long_b = b[:, 2:].max(axis=1)[None]
    centre_a, centre_b = a[:, :2] + a[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2
    distance = np.linalg.norm(centre_a[:, None] - centre_b[None], axis=2)
    factor = np.minimum(0.75 + 0.25 * np.asarray(gap, np.float64).reshape(-1, 1), 3.0)
    return ((distance <= factor * np.maximum(long_a, long_b))
            & (long_b <= 3.0 * long_a) & (long_a <= 3.0 * long_b))


def nms(boxes_xywh: np.ndarray, scores: np.ndarray, iou_thr: float,
        containment: float | None = None) -> np.ndarray:
    """Greedy hard NMS: indices of the kept boxes, highest score first.

    A box is dropped when its IoU with an already kept, higher-scoring box exceeds iou_thr,
    or (with ``containment``) when more than that fraction of the smaller box's area lies
    inside the kept one: merging passes over tiles, a tile that cuts a person sees a
    smaller one.
    """
    boxes = np.asarray(boxes_xywh, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    if len(boxes) == 0:
        return np.zeros((0,), np.int64)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        if order.size == 1:
            break
        rest = order[1:]
        iou = box_iou(boxes[i:i + 1], boxes[rest])[0]
        dup = iou > iou_thr
        if containment is not None:
            dup |= box_containment(boxes[i:i + 1], boxes[rest])[0] > containment
        order = rest[~dup]
    return np.asarray(keep, np.int64)


def detect_thoroughly(detector: Any, image: np.ndarray, whole: Detections | None = None
                      ) -> Detections:
    """The detector's most thorough pass, for when nobody is known to be in the image (a
    still frame, a video's first frame): ``detect_tiled`` where the detector has it (YOLOX:
    tiles of a wide frame beside the whole), else its plain call. `whole`: the detector's
    plain call on this image, when it has already run (it is not run again)."""
    tiled = getattr(detector, "detect_tiled", None)
    if tiled is not None:
        return tiled(image) if whole is None else tiled(image, whole=whole)
    return detector(image) if whole is None else whole


def clip_boxes(boxes_xywh: np.ndarray, width: int, height: int) -> np.ndarray:
    """Boxes cut to the image rectangle [0, width] x [0, height] (w, h never negative)."""
    b = np.asarray(boxes_xywh, np.float32).reshape(-1, 4)
    x1 = np.clip(b[:, 0], 0, width)
    y1 = np.clip(b[:, 1], 0, height)
    x2 = np.clip(b[:, 0] + b[:, 2], 0, width)
    y2 = np.clip(b[:, 1] + b[:, 3], 0, height)
    return np.stack([x1, y1, np.maximum(x2 - x1, 0), np.maximum(y2 - y1, 0)], axis=1)


def make_detections(boxes_xywh: np.ndarray, scores: np.ndarray, min_size: float = 1.0
                    ) -> Detections:
    """Detections sorted by score (highest first), without boxes smaller than min_size px."""
    boxes = np.asarray(boxes_xywh, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float32).reshape(-1)
    ok = (boxes[:, 2] >= min_size) & (boxes[:, 3] >= min_size) & np.isfinite(boxes).all(1)
    boxes, scores = boxes[ok], scores[ok]
    order = np.argsort(-scores, kind="stable")
    return Detections(boxes[order], scores[order])


def config_from_kwargs(cls: type, owner: str, cfg: dict[str, Any]) -> Any:
    """cls(**cfg) for a config dataclass, with an InputError naming unknown options."""
    import dataclasses
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(cfg) - names)
    if unknown:
        raise InputError(f"Unknown {owner} detector option(s) {', '.join(unknown)}; valid ones are "
                         f"{', '.join(sorted(names))}.")
    return cls(**cfg)
