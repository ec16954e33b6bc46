"""Pose similarity (OKS between poses) and pose-level NMS, as top-down methods use it.

Two person boxes around one person (e.g. a detector's upright and lying box, or a
propagated box beside a fresh detection) give two near-identical skeletons; without this
step both become tracks that never die.
"""
from __future__ import annotations

import numpy as np

from ..keypoints import COCO_SIGMAS


def oks_sigmas(num_keypoints: int) -> np.ndarray:
    """COCO's per-keypoint OKS sigmas for 17 keypoints, else a uniform 0.07."""
    k = num_keypoints
    return np.asarray(COCO_SIGMAS if k == len(COCO_SIGMAS) else [0.07] * k, np.float64)


def keypoint_oks(kp_a: np.ndarray, valid_a: np.ndarray, area_a: np.ndarray,
                 kp_b: np.ndarray, valid_b: np.ndarray, area_b: np.ndarray,
                 sigmas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, M) OKS between two sets of poses and (N, M) count of keypoints it used.

    COCO's formula with the object area taken as the mean of the two box areas; only
    keypoints valid in both poses count. OKS is 0 where no keypoint counts."""
    d2 = np.sum((kp_a[:, None] - kp_b[None]) ** 2, axis=-1)               # (N, M, K)
    area = 0.5 * (area_a[:, None] + area_b[None])                          # (N, M)
    var = (2.0 * sigmas) ** 2                                              # (K,)
    e = d2 / (2.0 * np.maximum(area, 1.0)[..., None] * var)
    both = valid_a[:, None] & valid_b[None]
    n = both.sum(-1)
    oks = np.where(both, np.exp(-np.where(both, e, 0.0)), 0.0).sum(-1) / np.maximum(n, 1)
    return oks, n


def pose_nms(keypoints: np.ndarray, scores: np.ndarray, boxes: np.ndarray,
             oks_threshold: float = 0.7, kp_threshold: float = 0.3,
             min_keypoints: int = 3) -> np.ndarray:
    """Indices of the poses to keep, best first.

    A pose needs `min_keypoints` keypoints scoring >= kp_threshold; among poses whose OKS
    exceeds oks_threshold only the one with the highest mean confident score is kept. The
    OKS scale is the mean of the two poses' areas (box area x 0.53), as in the official
    ``oks_nms``. With the candidate's own area (before), a box around part of a person (a
    detector's box of a lying man's upper body, of a woman's upper body seen from behind)
    judged its repeat of that person on its own small scale and survived as a second,
    partial skeleton.
    """
    n, k = scores.shape[:2]
    if n == 0:
        return np.zeros(0, np.int64)
    sigmas = oks_sigmas(k)
    kp, valid, areas = _for_oks(keypoints, scores, boxes, kp_threshold)
    counts = valid.sum(1)
    quality = np.where(valid, scores, 0).sum(1) / np.maximum(counts, 1)
    order = [i for i in np.argsort(-quality, kind="stable") if counts[i] >= min_keypoints]
    keep: list[int] = []
    for i in order:
        if keep:
            oks, _ = keypoint_oks(kp[i][None], valid[i][None], areas[i:i + 1], kp[keep],
                                  valid[keep], areas[keep], sigmas)
            if (oks > oks_threshold).any():
                continue
        keep.append(int(i))
    return np.array(keep, np.int64)


def _for_oks(keypoints: np.ndarray, scores: np.ndarray, boxes: np.ndarray,
             kp_threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keypoints (invalid ones zeroed), their validity and COCO-like areas (box x 0.53)."""
    valid = (scores >= kp_threshold) & np.isfinite(keypoints).all(-1)
    kp = np.where(valid[..., None], keypoints, 0.0)
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return kp, valid, b[:, 2] * b[:, 3] * 0.53


def twins(keypoints: np.ndarray, scores: np.ndarray, boxes: np.ndarray,
          others_keypoints: np.ndarray, others_scores: np.ndarray, others_boxes: np.ndarray,
          oks_threshold: float = 0.7, kp_threshold: float = 0.3) -> np.ndarray:
    """(N,) for each pose, the other it repeats most alike (pose_nms's measure), -1 where
    it repeats none."""
    n = len(keypoints)
    if n == 0 or len(others_keypoints) == 0:
        return np.full(n, -1, np.int64)
    sigmas = oks_sigmas(keypoints.shape[1])
    oks, _ = keypoint_oks(*_for_oks(keypoints, scores, boxes, kp_threshold),
                          *_for_oks(others_keypoints, others_scores, others_boxes, kp_threshold),
                          sigmas)
    return np.where((oks > oks_threshold).any(axis=1), oks.argmax(axis=1), -1)
