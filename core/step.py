"""One frame, synchronously: detector schedule -> pose -> pose NMS -> tracker -> PoseFrame.

`PoseStep` is the whole per-frame logic as a plain callable (``step(frame) -> PoseFrame``),
in the spirit of rtmlib's ``PoseTracker``:

* **detector schedule**: the detector runs on the first frame and every ``detect_every``
  frames; in between, each person's box follows their previous keypoints
  (``boxes_from_keypoints``). A person lost after being followed for a while brings the
  detector back at once; one lost right after a detector pass (a false detection, or a
  pose too weak to follow) is dropped until the next scheduled pass, and an empty scene is
  searched on the schedule too, not on every frame (both used to re-run the detector on
  most frames of crowded or empty footage). While nobody is followed, a detector that has
  ``detect_tiled`` (YOLOX) also searches tiles of a wide frame. With ``keep_undetected``
  a followed person the detector misses stays while their pose stays confident
  (detectors miss backlit, leaping or lying people);
* **pose** on all of the frame's boxes in one batch (several frames at once when the
  detector runs on every frame and the backend has ``predict_many``);
* **pose NMS**: poses that are not people (under 3 confident keypoints) or repeat another
  are dropped, together with their rows of attention (``PoseEstimate[keep]``);
* **tracking and smoothing** by the tracker, each person keeping the row of the estimate
  it came from, so attention is linked to people by construction.

It is split in two halves, ``infer`` (detector + pose, the expensive part) and ``track``,
so the threaded `core.pipeline.PosePipeline` can run them on two threads; used alone,
``step(frame)`` does both. The GUI's still frames, ``predict`` and the benchmarks call the
same step, so every path sees the same people.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .detection.base import box_iou, detect_thoroughly
from .pose.nms import pose_nms
from .types import Frame, PersonDetector, PoseBackend, PoseEstimate, PoseFrame, Tracker

NO_BOXES = np.zeros((0, 4), np.float32)


@dataclass(frozen=True)
class StepConfig:
    detect_every: int = 5            # run the detector at least every N frames (1 = always)
    min_keypoint_score: float = 0.3  # a followed person needs this mean score to be kept
    box_margin: float = 1.25         # box from keypoints: enlarged by this about its centre
    max_people: int = 20
    pose_nms_oks: float = 0.7        # poses more alike than this (OKS) are one person
    keep_undetected: bool = True     # a followed person the detector misses stays while
                                     # their pose stays confident (with detect_every=1 the
                                     # detector alone decides)
    attention: bool = False          # keep the pose model's attention in each PoseFrame
    keep_images: bool = False        # keep the frame's image in each PoseFrame

    def __post_init__(self) -> None:
        if self.detect_every < 1:
            raise ValueError("detect_every must be >= 1")


@dataclass
class FrameInference:
    """A frame after detector and pose, before tracking (what ``infer`` hands ``track``)."""

    frame: Frame
    boxes: np.ndarray                # (N, 4) xywh the pose model saw
    estimate: PoseEstimate           # one row per kept person (after pose NMS)
    detected: bool                   # whether the detector ran on this frame
    detect_ms: float = 0.0
    pose_ms: float = 0.0


def boxes_from_keypoints(keypoints: np.ndarray, scores: np.ndarray, min_score: float,
                         margin: float, image_hw: tuple[int, int]) -> np.ndarray:
    """(N, K, 2) keypoints -> (N, 4) boxes around their confident points, enlarged.

    A person with fewer than 3 confident keypoints gets a NaN box (lost)."""
    out = np.full((len(keypoints), 4), np.nan, np.float32)
    h, w = image_hw
    for i, (kp, sc) in enumerate(zip(keypoints, scores)):
        ok = np.isfinite(kp).all(1) & (sc >= min_score)
        if ok.sum() < 3:
            continue
        x0, y0 = kp[ok].min(0)
        x1, y1 = kp[ok].max(0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        bw, bh = max(x1 - x0, 8.0) * margin, max(y1 - y0, 8.0) * margin
        # keep the box inside the frame (a crop beyond it only adds black)
        bx0, by0 = max(0.0, cx - bw / 2), max(0.0, cy - bh / 2)
        bx1, by1 = min(float(w), cx + bw / 2), min(float(h), cy + bh / 2)
        if bx1 - bx0 > 2 and by1 - by0 > 2:
            out[i] = (bx0, by0, bx1 - bx0, by1 - by0)
    return out


class PoseStep:
    """source frame -> PoseFrame (module docstring). Not thread-safe: ``infer`` and
    ``track`` may run on two threads, but each from one thread at a time."""

    def __init__(self, detector: PersonDetector, pose: PoseBackend, tracker: Tracker,
                 config: StepConfig = StepConfig()) -> None:
        self.detector = detector
        self.pose = pose
        self.tracker = tracker
        self.config = config
        self.detector_runs = 0
        self.stage = "detector"          # the stage now running (for error reports)
        self._followed = NO_BOXES        # boxes that follow the last frame's people
        self._since_detect = 0           # frames since the detector ran (0: run it now)
        self._lost = False               # someone followed was lost on the last frame

    # ---- the whole step ------------------------------------------------------------
    def __call__(self, frame: Frame) -> PoseFrame:
        return self.track(self.infer([frame])[0])

    def reset(self) -> None:
        """Forget everyone (a seek, a new video): the next frame runs the detector."""
        self.reset_inference()
        self.tracker.reset()

    def reset_inference(self) -> None:
        self._followed = NO_BOXES
        self._since_detect = 0
        self._lost = False

    def _detector_due(self) -> bool:
        c = self.config
        if self._since_detect == 0 or self._since_detect >= c.detect_every:
            return True
        # lost after being followed for a while: look again now; lost right after a
        # detector pass: that pass is what found them, wait for the schedule
        return self._lost and self._since_detect > 1

    # ---- first half: detector + pose -----------------------------------------------
    def infer(self, frames: Sequence[Frame]) -> list[FrameInference]:
        """Detector (when scheduled) and pose for consecutive frames. Several frames at
        once only make sense with detect_every=1 (batched frames cannot follow each
        other's keypoints); otherwise pass one at a time."""
        c = self.config
        if len(frames) > 1 and c.detect_every != 1:
            raise ValueError("several frames per call need detect_every=1")
        plans = []
        for frame in frames:
            if self._detector_due():
                boxes, ms = self._detect(frame, self._followed if c.detect_every > 1 else None)
                plans.append((frame, boxes, True, ms))
                self._since_detect = 1
            else:
                plans.append((frame, self._followed, False, 0.0))
                self._since_detect += 1
        self.stage = "pose"
        t0 = time.perf_counter()
        if len(plans) > 1 and hasattr(self.pose, "predict_many"):
            estimates = self.pose.predict_many([(f.image, b) for f, b, _, _ in plans],
                                               attention=c.attention)
        else:
            estimates = [self._pose(f.image, b) for f, b, _, _ in plans]
        pose_ms = (time.perf_counter() - t0) * 1e3 / max(1, len(plans))
        out = [FrameInference(f, b, self._dedupe(est), detected, ms, pose_ms)
               for (f, b, detected, ms), est in zip(plans, estimates)]
        last = out[-1]
        est = last.estimate
        followed = boxes_from_keypoints(
            est.keypoints, est.scores, c.min_keypoint_score, c.box_margin,
            last.frame.size_hw) if len(est.keypoints) else NO_BOXES
        found = np.isfinite(followed).all(axis=1)
        # lost: given to the pose model but not followed on (too weak to follow, or
        # dropped by pose NMS as not a person); they come back through the detector
        self._followed = followed[found]
        self._lost = len(self._followed) < len(last.boxes)
        self.stage = "detector"
        return out

    def _detect(self, frame: Frame, followed: np.ndarray | None) -> tuple[np.ndarray, float]:
        """Detector pass; `followed` boxes (people followed from the last frame) that no
        detection overlaps are kept with keep_undetected; pose NMS removes any duplicate
        afterwards."""
        self.stage = "detector"
        t0 = time.perf_counter()
        # Nobody followed into this frame (a still frame, a video's first frame, an empty
        # scene): the detector alone says who is there, so it looks harder where it can
        # (tiles). Followed people are kept by their keypoints, so other passes stay cheap.
        det = (detect_thoroughly(self.detector, frame.image) if not len(self._followed)
               else self.detector(frame.image))
        ms = (time.perf_counter() - t0) * 1e3
        self.detector_runs += 1
        c = self.config
        boxes = det.boxes[np.argsort(-det.scores)[: c.max_people]]
        if c.keep_undetected and followed is not None and len(followed):
            if len(boxes):
                followed = followed[box_iou(followed, boxes).max(axis=1) < 0.3]
            if len(followed):
                boxes = np.concatenate([boxes, followed.astype(boxes.dtype)])[: c.max_people]
        return boxes, ms

    def _pose(self, image: np.ndarray, boxes: np.ndarray) -> PoseEstimate:
        if len(boxes) == 0:
            return self.pose(image, NO_BOXES)
        return self.pose(image, boxes, attention=self.config.attention)

    def _dedupe(self, est: PoseEstimate) -> PoseEstimate:
        """Drop poses that are not people (< 3 confident keypoints) or repeat another."""
        if len(est.keypoints) == 0:
            return est
        c = self.config
        keep = pose_nms(est.keypoints, est.scores, est.boxes, c.pose_nms_oks,
                        c.min_keypoint_score)
        if len(keep) == len(est.keypoints) and np.array_equal(keep, np.arange(len(keep))):
            return est
        return est[keep]

    # ---- second half: tracking -------------------------------------------------------
    def track(self, inferred: FrameInference,
              timings_ms: dict[str, float] | None = None) -> PoseFrame:
        """IDs and smoothing for an inferred frame -> the immutable PoseFrame."""
        t0 = time.perf_counter()
        frame = inferred.frame
        people = tuple(self.tracker.update(inferred.estimate, frame.time_s))
        track_ms = (time.perf_counter() - t0) * 1e3
        c = self.config
        return PoseFrame(
            index=frame.index, time_s=frame.time_s, size_hw=frame.size_hw, people=people,
            attention=inferred.estimate.attention if c.attention else None,
            image=frame.image if c.keep_images else None,
            timings_ms={"detect": inferred.detect_ms, "pose": inferred.pose_ms,
                        "track": track_ms, **(timings_ms or {})})


def explain(pose: PoseBackend, frame: PoseFrame) -> PoseFrame:
    """A frame already tracked (its image kept) with its people's attention: the pose
    model once on their boxes, each person's ``row`` pointing at their maps. What a paused
    view needs when attention is switched on, without tracking the frame again."""
    if frame.image is None:
        raise ValueError("explain needs the frame's image (keep_images=True)")
    if not frame.people:
        return frame
    boxes = np.stack([np.asarray(p.box, np.float32) for p in frame.people])
    estimate = pose(frame.image, boxes, attention=True)
    if estimate.attention is None:
        return frame
    people = tuple(dataclasses.replace(p, row=i) for i, p in enumerate(frame.people))
    return dataclasses.replace(frame, people=people, attention=estimate.attention)
