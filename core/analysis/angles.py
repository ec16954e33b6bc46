"""Joint and segment angles in the image plane (the convention is in docs/angles.md).

Everything is computed in a y-up frame (image y is flipped), in degrees:

* segment angles: direction of the segment from its proximal to its distal end, measured
  anticlockwise from the horizontal (the floor line when a floor angle is given), in
  (-180, 180]. A segment hanging straight down is -90, the trunk upright is +90.
* joint angles: signed, 0 in the upright standing pose, positive in flexion, using the
  person's facing direction in the image (+1 facing image-right, -1 facing image-left)
  to decide which rotation is flexion. Range (-180, 180].

Left and right are the pose model's labels (the person's left), never swapped here.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from ..errors import InputError
from ..keypoints import COCO_KEYPOINT_NAMES

_K = {n: i for i, n in enumerate(COCO_KEYPOINT_NAMES)}

# A segment: (proximal point, distal point); a point is a keypoint or the mid-point of two.
Point = tuple[str, ...]
SEGMENTS: dict[str, tuple[Point, Point]] = {
    "trunk_segment": (("left_hip", "right_hip"), ("left_shoulder", "right_shoulder")),
    **{f"{s}_{name}": ((f"{s}_{a}",), (f"{s}_{b}",))
       for s in ("left", "right")
       for name, (a, b) in {"thigh": ("hip", "knee"), "shank": ("knee", "ankle"),
                            "upper_arm": ("shoulder", "elbow"),
                            "forearm": ("elbow", "wrist")}.items()},
}
# trunk_segment points from the hips' centre up to the shoulders' centre (its proximal end
# is the pelvis): upright is +90, as a person would describe it.

# A joint angle = facing x (angle of segment `moving` - angle of segment `reference`),
# plus an offset so that standing upright gives 0. Segments here are (from, to) points.
JointDef = tuple[Point, Point, Point, Point, float]
JOINTS: dict[str, JointDef] = {}
for _s in ("left", "right"):
    sh, el, wr = (f"{_s}_shoulder",), (f"{_s}_elbow",), (f"{_s}_wrist",)
    hi, kn, an = (f"{_s}_hip",), (f"{_s}_knee",), (f"{_s}_ankle",)
    # hip flexion: the thigh (hip->knee) rotates forward from the trunk line (shoulder->hip)
    JOINTS[f"{_s}_hip"] = (sh, hi, hi, kn, 0.0)
    # knee flexion: the shank (knee->ankle) folds backward from the thigh (hip->knee), so
    # the shank is the reference and the thigh the moving segment
    JOINTS[f"{_s}_knee"] = (kn, an, hi, kn, 0.0)
    # shoulder flexion: the upper arm (shoulder->elbow) rotates forward from the trunk line
    JOINTS[f"{_s}_shoulder"] = (sh, hi, sh, el, 0.0)
    # elbow flexion: the forearm (elbow->wrist) rotates forward from the upper arm
    JOINTS[f"{_s}_elbow"] = (sh, el, el, wr, 0.0)
_HIPS, _SHOULDERS = ("left_hip", "right_hip"), ("left_shoulder", "right_shoulder")
# trunk: forward lean of the trunk (hips' centre -> shoulders' centre) from the vertical
JOINTS["trunk"] = (_HIPS, _SHOULDERS, ("vertical",), ("vertical",), 0.0)

JOINT_ANGLE_NAMES: tuple[str, ...] = ("left_knee", "right_knee", "left_hip", "right_hip",
                                      "left_elbow", "right_elbow", "left_shoulder",
                                      "right_shoulder", "trunk")
SEGMENT_ANGLE_NAMES: tuple[str, ...] = ("trunk_segment", "left_thigh", "right_thigh",
                                        "left_shank", "right_shank", "left_upper_arm",
                                        "right_upper_arm", "left_forearm", "right_forearm")
ANGLE_NAMES: tuple[str, ...] = JOINT_ANGLE_NAMES + SEGMENT_ANGLE_NAMES
AngleKind = Literal["joint", "segment"]


def angle_kind(name: str) -> AngleKind:
    return "joint" if name in JOINT_ANGLE_NAMES else "segment"


def parse_angle_names(text: str | Sequence[str], option: str = "--angles") -> tuple[str, ...]:
    """'all', 'none', 'joints', 'segments' or a comma list of names -> names (InputError)."""
    items = [s.strip() for s in (text.split(",") if isinstance(text, str) else text)]
    items = [s for s in items if s]
    out: list[str] = []
    for item in items:
        group = {"all": ANGLE_NAMES, "joints": JOINT_ANGLE_NAMES,
                 "segments": SEGMENT_ANGLE_NAMES, "none": ()}.get(item)
        if group is not None:
            out.extend(group)
        elif item in ANGLE_NAMES:
            out.append(item)
        else:
            raise InputError(f"{option}: unknown angle {item!r}; expected all, joints, segments, "
                             f"none or names from: {', '.join(ANGLE_NAMES)}")
    return tuple(dict.fromkeys(out))


def _point(kp: np.ndarray, point: Point) -> np.ndarray:
    """(T, 2) position of a keypoint or of the mid-point of two (NaN if any is missing)."""
    return np.mean([kp[:, _K[n]] for n in point], axis=0)


def _direction_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle of a->b anticlockwise from image +x with y up, in degrees (T,)."""
    d = b - a
    return np.degrees(np.arctan2(-d[:, 1], d[:, 0]))


def wrap_deg(a: np.ndarray) -> np.ndarray:
    """Angles wrapped into (-180, 180]."""
    a = np.asarray(a, float)
    return 180.0 - np.mod(180.0 - a, 360.0)


def facing_direction(keypoints: np.ndarray) -> tuple[np.ndarray, str]:
    """(T,) +1 (facing image-right) or -1 (facing image-left), and how it was found.

    Per frame: the sign of the nose's x relative to the ears' centre (or the eyes' when the
    ears are missing) - a profile view's nose points where the person looks. Frames
    without a head take the nearest frame that has one. A track that never shows a head
    is taken to face right ("assumed"); a frontal or back view makes this unreliable, and
    so are sagittal angles there.
    """
    kp = np.asarray(keypoints, float)
    nose = kp[:, _K["nose"], 0]
    with warnings.catch_warnings():          # frames without any ear/eye: NaN, as wanted
        warnings.simplefilter("ignore", RuntimeWarning)
        ears = np.nanmean(kp[:, [_K["left_ear"], _K["right_ear"]], 0], axis=1)
        eyes = np.nanmean(kp[:, [_K["left_eye"], _K["right_eye"]], 0], axis=1)
    head = np.where(np.isfinite(ears), ears, eyes)
    f = np.sign(nose - head)
    known = np.isfinite(f) & (f != 0)
    if not known.any():
        return np.ones(len(kp)), "assumed"
    idx = np.flatnonzero(known)
    nearest = idx[np.abs(np.arange(len(kp))[:, None] - idx[None, :]).argmin(axis=1)]
    return f[nearest], "head"


def segment_angles(keypoints: np.ndarray, names: Sequence[str] = SEGMENT_ANGLE_NAMES,
                   floor_angle_deg: float = 0.0) -> dict[str, np.ndarray]:
    """Segment angles (T,) per name for keypoints (T, 17, 2) in image pixels (y down)."""
    kp = np.asarray(keypoints, float)
    out = {}
    for name in names:
        a, b = SEGMENTS[name]
        out[name] = wrap_deg(_direction_deg(_point(kp, a), _point(kp, b)) - floor_angle_deg)
    return out


def joint_angles(keypoints: np.ndarray, names: Sequence[str] = JOINT_ANGLE_NAMES,
                 facing: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Signed joint angles (T,) per name for keypoints (T, 17, 2) in image pixels (y down).

    `facing` (T,) of +1/-1; by default from `facing_direction`.
    """
    kp = np.asarray(keypoints, float)
    f = facing_direction(kp)[0] if facing is None else np.asarray(facing, float)
    out = {}
    for name in names:
        ref_a, ref_b, mov_a, mov_b, offset = JOINTS[name]
        if name == "trunk":
            trunk = _direction_deg(_point(kp, _HIPS), _point(kp, _SHOULDERS))
            # leaning forward tilts the trunk from +90 towards the facing side
            out[name] = wrap_deg(f * (90.0 - trunk))
            continue
        ref = _direction_deg(_point(kp, ref_a), _point(kp, ref_b))
        mov = _direction_deg(_point(kp, mov_a), _point(kp, mov_b))
        out[name] = wrap_deg(f * (mov - ref) + offset)
    return out


def compute_angles(keypoints: np.ndarray, names: Sequence[str],
                   floor_angle_deg: float = 0.0, facing: np.ndarray | None = None
                   ) -> dict[str, np.ndarray]:
    """The named angles (T,) in degrees, in the order given (NaN where a point is missing)."""
    joints = joint_angles(keypoints, [n for n in names if angle_kind(n) == "joint"], facing)
    segments = segment_angles(keypoints, [n for n in names if angle_kind(n) == "segment"],
                              floor_angle_deg)
    both = {**joints, **segments}
    return {n: both[n] for n in names}


@dataclass(frozen=True)
class AngleConvention:
    """Recorded in the outputs so a reader knows what the numbers mean."""

    units: str = "degrees"
    range: str = "(-180, 180]"
    segments: str = ("proximal->distal direction, anticlockwise from the horizontal (floor), "
                     "y up; hanging down = -90, trunk upright = +90")
    joints: str = ("0 standing upright, positive = flexion, sign from the facing direction "
                   "(nose vs ears); trunk = forward lean from vertical")
    sides: str = "left/right are the person's, as labelled by the pose model"
    reference: str = "docs/angles.md"
