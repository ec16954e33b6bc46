"""The COCO 17-keypoint layout shared by every model, tracker and exporter."""
from __future__ import annotations

COCO_KEYPOINT_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
NUM_KEYPOINTS = len(COCO_KEYPOINT_NAMES)

# Left/right pairs swapped by a horizontal flip (person's left is image right).
COCO_FLIP_PAIRS: tuple[tuple[int, int], ...] = (
    (1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16),
)

# Bones as pairs of keypoint indices (COCO's skeleton, 0-based).
COCO_SKELETON: tuple[tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12),
    (5, 6), (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2),
    (1, 3), (2, 4), (3, 5), (4, 6),
)

# COCO OKS per-keypoint sigmas (pycocotools), used by tracking and evaluation.
COCO_SIGMAS: tuple[float, ...] = (
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
    0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
)


def flip_permutation(num_joints: int = NUM_KEYPOINTS,
                     pairs: tuple[tuple[int, int], ...] = COCO_FLIP_PAIRS) -> list[int]:
    """Index permutation that swaps left and right joints."""
    perm = list(range(num_joints))
    for a, b in pairs:
        if a < num_joints and b < num_joints:
            perm[a], perm[b] = b, a
    return perm


def keypoint_index(name_or_index: str | int) -> int:
    """Accept a COCO keypoint name ('left_wrist') or an index; raise ValueError otherwise."""
    if isinstance(name_or_index, int) or str(name_or_index).isdigit():
        i = int(name_or_index)
        if 0 <= i < NUM_KEYPOINTS:
            return i
        raise ValueError(f"keypoint index {i} is out of range 0..{NUM_KEYPOINTS - 1}")
    try:
        return COCO_KEYPOINT_NAMES.index(str(name_or_index))
    except ValueError:
        raise ValueError(f"unknown keypoint {name_or_index!r}; expected one of "
                         f"{', '.join(COCO_KEYPOINT_NAMES)}") from None
