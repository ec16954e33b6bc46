"""Small immutable data types that flow between the pipeline's stages.

source -> Frame -> detector -> Detections -> pose backend -> PoseEstimate -> tracker ->
PoseFrame (people with track ids) -> sinks (GUI, CSV/JSON, overlay).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import numpy as np

from .errors import InputError


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
class PoseEstimate:
    """People of one image, as a pose model gives them (before tracking). Coordinates are
    image pixels, keypoints in COCO order; rows stay aligned: ``est[keep]`` subsets boxes,
    keypoints, scores and the explanation together."""

    boxes: np.ndarray              # (N, 4) x, y, w, h
    keypoints: np.ndarray          # (N, K, 2)
    scores: np.ndarray             # (N, K) heatmap maxima (TransPose), score head (TFPose)
    attention: Any = None          # the model's explanation: AttentionMaps | DecoderAttention
    world: np.ndarray | None = None  # (N, K, 3) 3-D keypoints in metres, origin between the
                                     # hips, where the model gives them (BlazePose)

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, keep: Any) -> "PoseEstimate":
        """The same people subset by an index array, a boolean mask or a slice."""
        rows = np.arange(len(self.boxes))[keep]
        att = self.attention.select(rows) if self.attention is not None else None
        world = self.world[rows] if self.world is not None else None
        return dataclasses.replace(self, boxes=self.boxes[rows], keypoints=self.keypoints[rows],
                                   scores=self.scores[rows], attention=att, world=world)

    def extended(self, more: "PoseEstimate") -> "PoseEstimate":
        """These people followed by `more`'s (estimates without an explanation: the
        attention of two model calls does not join)."""
        if self.attention is not None or more.attention is not None:
            raise ValueError("estimates with attention cannot be joined")
        if (self.world is None) != (more.world is None) and len(self) and len(more):
            raise ValueError("only one of the estimates has world keypoints")
        world = None
        if self.world is not None or more.world is not None:
            world = np.concatenate([w for w in (self.world, more.world) if w is not None])
        return PoseEstimate(np.concatenate([self.boxes, more.boxes]),
                            np.concatenate([self.keypoints, more.keypoints]),
                            np.concatenate([self.scores, more.scores]), world=world)


def validate_boxes(boxes: np.ndarray | Sequence[Sequence[float]] | None,
                   image_hw: tuple[int, int]) -> np.ndarray:
    """(N, 4) float32 xywh boxes; None means the whole image. Raises InputError."""
    h, w = image_hw
    if boxes is None:
        return np.array([[0.0, 0.0, float(w), float(h)]], dtype=np.float32)
    b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    for x, y, bw, bh in b:
        if not np.all(np.isfinite([x, y, bw, bh])) or bw <= 0 or bh <= 0:
            raise InputError(f"box ({x:g}, {y:g}, {bw:g}, {bh:g}) must have a positive width "
                             f"and height")
        if x >= w or y >= h or x + bw <= 0 or y + bh <= 0:
            raise InputError(f"box ({x:g}, {y:g}, {bw:g}, {bh:g}) lies outside the "
                             f"{w}x{h} image")
    return b


@dataclass(frozen=True)
class PersonPose:
    """One tracked person in one frame. Missing keypoints are NaN (never invented)."""

    track_id: int
    box: np.ndarray            # (4,) x, y, w, h
    score: float               # person confidence
    keypoints: np.ndarray      # (K, 2) image pixels, NaN when missing
    keypoint_scores: np.ndarray  # (K,), NaN when missing
    row: int = -1              # this person's row in the frame's PoseEstimate (attention)
    world: np.ndarray | None = None  # (K, 3) metres, hip-centred, as the model gave them
                                     # (unsmoothed; NaN where the 2-D keypoint is missing)
    turn: float = 0.0          # degrees the pose model's crop was turned (core.step:
                               # people lying, flipping); 0 for an upright crop
    crop_box: np.ndarray | None = None   # (4,) the box the pose model's crop was cut
                                         # from (in the person's own frame when turned);
                                         # None where not known: `box`
    measured_box: bool = True  # crop_box is the detector's box on this frame (a model
                               # with crop_context "box" saw black outside it), not one
                               # predicted from the last frame's keypoints (whole crop)


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


# ---------------------------------------------------------------------------- the stages
# One Protocol per interface; core.step.PoseStep and the threaded pipeline take any object
# that fits (core.detection's detectors, core.pose's backends, core.tracking.PoseTracker).
class PersonDetector(Protocol):
    """Image (BGR uint8) -> the people in it."""

    def __call__(self, image: np.ndarray) -> Detections: ...


class PoseBackend(Protocol):
    """Image (BGR uint8) and person boxes (N, 4) xywh -> one PoseEstimate row per box.

    What only some backends can do, each declared by an attribute and used only where it
    is there (core.step): ``rotates_crops`` True (the call takes ``rotations=``, degrees per
    box: turned crops), ``crop_context`` "box" (the call takes ``contexts=``, "box" or
    "image" per box: preprocess.contexts_for), ``without_flip()`` (the same model without
    its flip test) and ``predict_many(requests)`` (several images in shared batches)."""

    def __call__(self, image: np.ndarray,
                 boxes: np.ndarray | Sequence[Sequence[float]] | None = None,
                 *, attention: bool = False) -> PoseEstimate: ...


class Tracker(Protocol):
    """Estimates of consecutive frames -> people with stable IDs. Optional: ``start_shot()``
    (the next update starts a new shot, a cut: core.step calls it where a tracker has it),
    ``wants_appearance`` (core.step then passes each person's clothes)."""

    def update(self, estimate: PoseEstimate, time_s: float,
               lineage: np.ndarray | None = None,
               frame_hw: tuple[int, int] | None = None,
               appearance: np.ndarray | None = None) -> Sequence[PersonPose]: ...

    def reset(self) -> None: ...
