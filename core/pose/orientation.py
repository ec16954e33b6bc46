"""Which way a person's body points, and boxes in a turned person's own upright frame.

Top-down pose models are trained on upright people (give or take the ~30-45 degrees of
rotation augmentation); a cartwheel, a back-flip or a person lying down comes out as noise
from an upright crop. Following a person with a crop turned by their body angle (as
MediaPipe's BlazePose tracks its region of interest) keeps them upright for the network.

Angles are degrees a body leans clockwise in the image (y down): 0 upright, 90 lying with
the head to the right, -90 with the head to the left, +-180 upside down. ``crop_person``
and ``affine_matrix`` take the same angle as ``rotation`` and undo the lean.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .preprocess import contexts_for

# COCO indices of the shoulders, hips, knees and ankles
_SHOULDERS, _HIPS, _KNEES, _ANKLES = (5, 6), (11, 12), (13, 14), (15, 16)


def wrap_degrees(angle: float) -> float:
    """An angle in degrees -> the same direction in (-180, 180]."""
    a = (float(angle) + 180.0) % 360.0 - 180.0
    return 180.0 if a == -180.0 else a


def body_angle(keypoints: np.ndarray, scores: np.ndarray, min_score: float) -> float | None:
    """(K, 2) COCO keypoints -> the lean (module docstring) of the line from the lowest
    confident part of the body (the middle of the ankles, else of the knees, else of the
    hips) to the middle of the shoulders; None without a confident shoulder and one of
    those, or for another keypoint layout.

    From the feet rather than the hips: someone bending forward (the torso 60 degrees
    over, the legs upright) is still upright for a pose model, and turning their crop by
    the torso's angle lost the leaping jumper of the Sports2D clip; a whole body turned
    (lying, a cartwheel, upside down) turns feet and torso alike."""
    if len(keypoints) != 17:
        return None
    ok = np.isfinite(keypoints).all(1) & (scores >= min_score)
    top = [i for i in _SHOULDERS if ok[i]]
    if not top:
        return None
    for pair in (_ANKLES, _KNEES, _HIPS):
        base = [i for i in pair if ok[i]]
        if base:
            break
    else:
        return None
    v = keypoints[top].mean(0) - keypoints[base].mean(0)
    if not np.any(v):
        return None
    return wrap_degrees(np.degrees(np.arctan2(v[0], -v[1])))


def turned_box(keypoints: np.ndarray, scores: np.ndarray, min_score: float, angle: float,
               margin: float) -> np.ndarray | None:
    """(4,) xywh box around the confident keypoints in the frame of a person leaning by
    `angle` degrees: its centre is an image point, its width and height are measured
    across and along the body; enlarged by `margin` about its centre. None with fewer
    than 3 confident keypoints."""
    ok = np.isfinite(keypoints).all(1) & (scores >= min_score)
    if ok.sum() < 3:
        return None
    pts = keypoints[ok].astype(np.float64)
    mid = (pts.min(0) + pts.max(0)) / 2
    rad = np.radians(angle)
    across = np.array([np.cos(rad), np.sin(rad)])      # the body's "right" in the image
    down = np.array([-np.sin(rad), np.cos(rad)])       # from the head towards the feet
    q = np.stack([(pts - mid) @ across, (pts - mid) @ down], 1)
    lo, hi = q.min(0), q.max(0)
    centre = mid + (lo[0] + hi[0]) / 2 * across + (lo[1] + hi[1]) / 2 * down
    w, h = np.maximum(hi - lo, 8.0) * margin
    return np.array([centre[0] - w / 2, centre[1] - h / 2, w, h], np.float32)


def turned_box_hulls(boxes: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """(N, 4) xywh boxes turned by `rotations` degrees about their centres -> the upright
    (N, 4) xywh boxes around them."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    rad = np.radians(np.asarray(rotations, np.float32).reshape(-1))
    c, s = np.abs(np.cos(rad)), np.abs(np.sin(rad))
    w = b[:, 2] * c + b[:, 3] * s
    h = b[:, 2] * s + b[:, 3] * c
    cx, cy = b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2
    return np.stack([cx - w / 2, cy - h / 2, w, h], 1).astype(np.float32)


def turned_crops_for(pose: Any, image: np.ndarray, boxes: np.ndarray, est: Any,
                     rows: np.ndarray | None = None, *, min_score: float = 0.3,
                     turn_start: float = 50.0, min_mean: float = 0.4, look_mean: float = 0.35,
                     min_size: float = 96.0, margin: float = 1.25, max_disagree: float = 30.0,
                     max_growth: float = 2.0) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """People cropped upright (`boxes`, their poses `est`) whose own pose says they are
    turned: the crops that stand them upright, where those are better.

    A person (of `rows`, default all) is looked at again when their body angle is beyond
    `turn_start` degrees, from a pose with a mean score of at least `look_mean` and a box
    side of at least `min_size` px (a weak or small pose's angle is noise; cut black
    outside its box, the upside-down basketball player's upright crop scores 0.37 and
    still gives his angle within 3 degrees). Their box
    measured along the body, turned by that angle, is posed once (without flip test);
    it is kept when it gives at least as many confident keypoints at a higher mean score
    (and at least `min_mean`), and its pose's body angle is within `max_disagree` degrees
    of the crop's turn (the body stands upright in it).
    Measured on the basketball photo (tests/test_turned_people.py): upside down, the
    upright crop gave 15 keypoints at a mean score of 0.47, the turned one 17 at 0.92.

    Returns (rows, boxes (n, 4), turns (n,) degrees) of the people whose crop changes, or
    None; the caller poses them again with ``rotations``."""
    rows = np.arange(len(boxes)) if rows is None else np.asarray(rows, np.int64)
    h, w = image.shape[:2]
    tries: list[tuple[int, float, np.ndarray]] = []
    for r in rows:
        kps, scores = est.keypoints[r], est.scores[r]
        if scores.mean() < look_mean or max(boxes[r][2:]) < min_size:
            continue
        angle = body_angle(kps, scores, min_score)
        if angle is None or abs(angle) < turn_start:
            continue
        box = turned_box(kps, scores, min_score, angle, margin)
        # a sane box: centred in the image, not much larger than the upright one (a body
        # seen at 45 degrees is about 1.4x its upright box's longer side, with the margin)
        if box is None or not (0 <= box[0] + box[2] / 2 < w and 0 <= box[1] + box[3] / 2 < h):
            continue
        if max(box[2:]) > max_growth * max(boxes[r][2:]):
            continue
        tries.append((int(r), angle, box))
    if not tries:
        return None
    probe = pose.without_flip() if hasattr(pose, "without_flip") else pose
    got = probe(image, np.stack([b for _, _, b in tries]),
                rotations=np.array([a for _, a, _ in tries], np.float32),
                **contexts_for(pose, np.zeros(len(tries), bool)))   # boxes from keypoints

    def stands_upright(j: int) -> bool:
        r, angle, _ = tries[j]
        after, before = got.scores[j], est.scores[r]
        if not ((after >= min_score).sum() >= (before >= min_score).sum()
                and after.mean() > max(before.mean(), min_mean)):
            return False
        # the turned crop must stand the body upright (its pose's angle is the crop's):
        # a noisy pose gives an angle and a turned crop that agree by chance only
        again = body_angle(got.keypoints[j], after, min_score)
        return again is not None and abs(wrap_degrees(again - angle)) < max_disagree

    better = [j for j in range(len(tries)) if stands_upright(j)]
    if not better:
        return None
    return (np.array([tries[j][0] for j in better], np.int64),
            np.stack([tries[j][2] for j in better]).astype(np.float32),
            np.array([tries[j][1] for j in better], np.float32))
