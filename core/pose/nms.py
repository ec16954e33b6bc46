"""Pose-level non-maximum suppression (OKS-NMS), as top-down pose methods use it.

Two person boxes around one person (e.g. a detector's upright and lying box, or a
propagated box beside a fresh detection) give two near-identical skeletons; without this
step both become tracks that never die.
"""
from __future__ import annotations

import numpy as np

from ..keypoints import COCO_SIGMAS


def pose_oks(kp_a: np.ndarray, kp_b: np.ndarray, valid: np.ndarray, area: float,
             sigmas: np.ndarray) -> float:
    """OKS between two poses over the keypoints valid in both (0 when none are)."""
    if not valid.any() or area <= 0:
        return 0.0
    d2 = ((kp_a - kp_b) ** 2).sum(-1)
    var = (2 * sigmas) ** 2
    e = d2 / (var * (area + np.spacing(1)) * 2)
    return float(np.exp(-e[valid]).mean())


def pose_nms(keypoints: np.ndarray, scores: np.ndarray, boxes: np.ndarray,
             oks_threshold: float = 0.7, kp_threshold: float = 0.3,
             min_keypoints: int = 3) -> np.ndarray:
    """Indices of the poses to keep, best first.

    A pose needs `min_keypoints` keypoints scoring >= kp_threshold; among poses whose OKS
    exceeds oks_threshold only the one with the highest mean confident score is kept.
    """
    n, k = scores.shape[:2]
    if n == 0:
        return np.zeros(0, np.int64)
    sigmas = np.asarray(COCO_SIGMAS if k == len(COCO_SIGMAS) else [0.07] * k, np.float64)
    valid = (scores >= kp_threshold) & np.isfinite(keypoints).all(-1)
    counts = valid.sum(1)
    quality = np.where(valid, scores, 0).sum(1) / np.maximum(counts, 1)
    order = [i for i in np.argsort(-quality, kind="stable") if counts[i] >= min_keypoints]
    keep: list[int] = []
    for i in order:
        area = float(boxes[i][2] * boxes[i][3]) * 0.53     # COCO-like area from the box
        if all(pose_oks(keypoints[i], keypoints[j], valid[i] & valid[j], area, sigmas)
               <= oks_threshold for j in keep):
            keep.append(int(i))
    return np.array(keep, np.int64)
