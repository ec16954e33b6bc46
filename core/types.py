"""Small immutable data types that flow between the pipeline's stages.

source -> Frame -> detector -> Detections -> pose backend -> PoseEstimate -> tracker ->
PoseFrame (people with track ids) -> sinks (GUI, CSV/JSON, overlay).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One decoded frame. image is BGR uint8 (H, W, 3), already upright (rotation applied)."""

    index: int                 # 0-based position in the source
    time_s: float              # presentation time in seconds (pts x time_base for video)
    image: np.ndarray

    @property
    def size_hw(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])


@dataclass(frozen=True)
class Detections:
    """Person boxes of one frame: (N, 4) x, y, w, h in image pixels, and (N,) scores."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))

    def __post_init__(self) -> None:
        object.__setattr__(self, "boxes", np.asarray(self.boxes, np.float32).reshape(-1, 4))
        object.__setattr__(self, "scores", np.asarray(self.scores, np.float32).reshape(-1))
        if len(self.boxes) != len(self.scores):
            raise ValueError("boxes and scores differ in length")

    def __len__(self) -> int:
        return len(self.boxes)


@dataclass(frozen=True)
class PersonPose:
    """One tracked person in one frame. Missing keypoints are NaN (never invented)."""

    track_id: int
    box: np.ndarray            # (4,) x, y, w, h
    score: float               # person confidence
    keypoints: np.ndarray      # (K, 2) image pixels, NaN when missing
    keypoint_scores: np.ndarray  # (K,), NaN when missing


@dataclass(frozen=True)
class PoseFrame:
    """Everything the pipeline knows about one frame; what GUI and exporters consume."""

    index: int
    time_s: float
    size_hw: tuple[int, int]
    people: tuple[PersonPose, ...] = ()
    attention: Any = None      # the explanation when requested: AttentionMaps or DecoderAttention
    image: np.ndarray | None = None       # the frame itself, when the consumer wants it
    timings_ms: dict[str, float] = field(default_factory=dict)
