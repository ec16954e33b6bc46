"""Pose similarity (OKS between poses) and pose-level NMS, as top-down methods use it.

Two person boxes around one person (e.g. a detector's upright and lying box, or a
propagated box beside a fresh detection) give two near-identical skeletons; without this
step both become tracks that never die. A box followed through two people crossing gives
a skeleton pieced from both (`pieced`): a phantom stretched between them.
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
             min_keypoints: int = 3, joint_share: float = 0.7) -> np.ndarray:
    """Indices of the poses to keep, best first.

    A pose needs `min_keypoints` keypoints scoring >= kp_threshold; among poses whose OKS
    exceeds oks_threshold only the one with the highest mean confident score is kept. The
    OKS scale is the mean of the two poses' areas (box area x 0.53), as in the official
    ``oks_nms``. With the candidate's own area (before), a box around part of a person (a
    detector's box of a lying man's upper body, of a woman's upper body seen from behind)
    judged its repeat of that person on its own small scale and survived as a second,
    partial skeleton.

    A pose is a repeat too when at least `joint_share` of its confident keypoints each
    repeat the same keypoint of a stronger pose kept, or of two or more other poses kept
    whatever their strength (`pieced`; joint_share > 1: off). A crop followed through two
    people crossing gives a skeleton pieced from both, its head on one and its legs on the
    other (the OpenCV pedestrian clip, frames 132-138): its OKS with either is low, its
    keypoints are confident, and it stayed as a phantom stretched between them.
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
            share, _ = _repeated_joints(kp[i], valid[i], kp[keep], valid[keep],
                                        areas[keep], sigmas)
            if share >= joint_share:
                continue
        keep.append(int(i))
    kept = np.array(keep, np.int64)
    return kept[~_pieced(kp[kept], valid[kept], areas[kept], sigmas, joint_share)]


def pieced(keypoints: np.ndarray, scores: np.ndarray, boxes: np.ndarray,
           kp_threshold: float = 0.3, joint_share: float = 0.7) -> np.ndarray:
    """(N,) bool: poses pieced from others, whatever their strength: at least
    `joint_share` of a pose's confident keypoints each repeat the same keypoint of one of
    the others, two or more of them giving some. The most pieced goes first and the rest
    are judged again without it (a real person half covered by a phantom stays)."""
    return _pieced(*_for_oks(keypoints, scores, boxes, kp_threshold),
                   oks_sigmas(keypoints.shape[1]), joint_share)


def _pieced(kp: np.ndarray, valid: np.ndarray, areas: np.ndarray, sigmas: np.ndarray,
            joint_share: float) -> np.ndarray:
    """pieced, on _for_oks's keypoints, validity and areas."""
    out = np.zeros(len(kp), bool)
    if len(kp) < 3 or joint_share > 1:
        return out
    while True:
        left = np.flatnonzero(~out)
        if len(left) < 3:
            return out
        shares = np.zeros(len(left))
        for a, i in enumerate(left):
            others = left[left != i]
            share, donors = _repeated_joints(kp[i], valid[i], kp[others], valid[others],
                                             areas[others], sigmas)
            shares[a] = share if donors >= 2 else 0.0
        if shares.max() < joint_share:
            return out
        out[left[shares.argmax()]] = True


def _repeated_joints(kp: np.ndarray, valid: np.ndarray, others_kp: np.ndarray,
                     others_valid: np.ndarray, others_area: np.ndarray,
                     sigmas: np.ndarray) -> tuple[float, int]:
    """The share of one pose's valid keypoints (K,) that repeat the same keypoint of any of
    the others (M, K), and how many of the others give some: OKS's term for a keypoint
    above 1/2 on that other pose's scale (a pieced skeleton's own box spans both people
    it was pieced from)."""
    if not valid.any() or not len(others_kp):
        return 0.0, 0
    d2 = np.sum((others_kp - kp[None]) ** 2, axis=-1)                     # (M, K)
    e = d2 / (2.0 * np.maximum(others_area, 1.0)[:, None] * (2.0 * sigmas) ** 2)
    repeats = others_valid & valid[None] & (e < np.log(2.0))
    return float(repeats.any(axis=0)[valid].mean()), int(repeats.any(axis=1).sum())


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
