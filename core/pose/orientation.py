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

import numpy as np

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
