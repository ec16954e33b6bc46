"""Real-world units: a metres-per-pixel scale and an optional floor-angle correction.

Two sources of scale: the known height of a tracked person, or two image points a known
distance apart (clicked in the GUI, given as coordinates on the command line). Metric
coordinates put the origin at the image's bottom-left corner with y up, rotated so that
the floor line (at `floor_angle_deg` anticlockwise from the image horizontal) is level.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from ..errors import InputError
from ..keypoints import COCO_KEYPOINT_NAMES
from .tracks import Track

_K = {n: i for i, n in enumerate(COCO_KEYPOINT_NAMES)}

# Fraction of standing height spanned by the chain ankle -> knee -> hip -> shoulder -> nose:
# the ankle joint is at 0.039 H and the nose at about 0.92 H above the floor (Winter,
# Biomechanics and Motor Control of Human Movement, segment proportions), hence 0.88.
ANKLE_TO_NOSE_FRACTION = 0.88
# Segment lengths only shrink in projection (foreshortening), so each length is a high
# percentile over the track rather than the median.
_LENGTH_PERCENTILE = 90

# --person-height measures the tallest of the people tracked at least this fraction of the
# longest track's frames
LONGEST_FRACTION = 0.9

ScaleSource = Literal["person_height", "points"]


@dataclass(frozen=True)
class ScaleSpec:
    """What the user gave; resolved to a `Scale` once the tracks are known."""

    person_height_m: float | None = None
    points_px: tuple[float, float, float, float] | None = None   # x1, y1, x2, y2
    distance_m: float | None = None
    floor_angle_deg: float | None = None     # None: level; nan never allowed
    floor_from_points: bool = False          # the two points lie on the floor line

    def __post_init__(self) -> None:
        if self.person_height_m is not None and not (math.isfinite(self.person_height_m)
                                                     and self.person_height_m > 0):
            raise InputError(f"--person-height: must be a positive height in metres, "
                             f"not {self.person_height_m}")
        if (self.points_px is None) != (self.distance_m is None):
            raise InputError("--scale-points: give four coordinates and the distance in metres "
                             "(X1 Y1 X2 Y2 METRES)")
        if self.points_px is not None:
            if len(self.points_px) != 4 or not all(math.isfinite(v) for v in self.points_px):
                raise InputError(f"--scale-points: need four finite pixel coordinates, "
                                 f"not {self.points_px}")
            x1, y1, x2, y2 = self.points_px
            if math.hypot(x2 - x1, y2 - y1) == 0:
                raise InputError("--scale-points: the two points coincide (a scale of zero)")
            if not (math.isfinite(self.distance_m) and self.distance_m > 0):
                raise InputError(f"--scale-points: the distance must be positive metres, "
                                 f"not {self.distance_m} (a scale of zero)")
        if self.person_height_m is not None and self.points_px is not None:
            raise InputError("--person-height and --scale-points: give one scale, not both")
        if self.floor_angle_deg is not None and not (math.isfinite(self.floor_angle_deg)
                                                     and abs(self.floor_angle_deg) < 90):
            raise InputError(f"--floor-angle: must be between -90 and 90 degrees, "
                             f"not {self.floor_angle_deg}")
        if self.floor_from_points and self.points_px is None:
            raise InputError("--floor-angle points: needs --scale-points")

    @property
    def given(self) -> bool:
        return self.person_height_m is not None or self.points_px is not None

    def floor_angle(self) -> float:
        if self.floor_from_points and self.points_px is not None:
            x1, y1, x2, y2 = self.points_px
            if x2 < x1:
                x1, y1, x2, y2 = x2, y2, x1, y1
            return math.degrees(math.atan2(-(y2 - y1), x2 - x1))    # y up
        return float(self.floor_angle_deg or 0.0)


@dataclass(frozen=True)
class Scale:
    """A resolved scale, recorded in the outputs."""

    metres_per_pixel: float
    source: ScaleSource
    floor_angle_deg: float = 0.0
    person_height_m: float | None = None
    person_height_px: float | None = None
    track_id: int | None = None
    points_px: tuple[float, float, float, float] | None = None
    distance_m: float | None = None

    def as_metadata(self) -> dict:
        d = {"metres_per_pixel": self.metres_per_pixel, "source": self.source,
             "floor_angle_deg": self.floor_angle_deg,
             "origin": "image bottom-left corner, x right, y up (floor-levelled)"}
        if self.source == "person_height":
            d.update(person_height_m=self.person_height_m,
                     person_height_px=self.person_height_px, track_id=self.track_id,
                     method=f"ankle-knee-hip-shoulder-nose chain / {ANKLE_TO_NOSE_FRACTION}")
        else:
            d.update(points_px=list(self.points_px or ()), distance_m=self.distance_m)
        return d

    def to_metres(self, xy: np.ndarray, image_height: int) -> np.ndarray:
        """(..., 2) image pixels (y down) -> metres, origin bottom-left, y up, floor level."""
        xy = np.asarray(xy, float)
        x = xy[..., 0]
        y = image_height - xy[..., 1]
        a = math.radians(-self.floor_angle_deg)       # rotate the floor line onto the x axis
        xr = x * math.cos(a) - y * math.sin(a)
        yr = x * math.sin(a) + y * math.cos(a)
        return np.stack([xr, yr], axis=-1) * self.metres_per_pixel


def _segment_length(kp: np.ndarray, a: Sequence[str], b: Sequence[str]) -> float:
    pa = np.mean([kp[:, _K[n]] for n in a], axis=0)
    pb = np.mean([kp[:, _K[n]] for n in b], axis=0)
    d = np.hypot(*(pb - pa).T)
    d = d[np.isfinite(d)]
    return float(np.percentile(d, _LENGTH_PERCENTILE)) if len(d) else float("nan")


def person_height_px(track: Track) -> float:
    """Standing height of a tracked person in pixels, from their segment lengths.

    Shank + thigh (mean of both sides), hips' centre to shoulders' centre, shoulders'
    centre to nose, each the 90th percentile over the track, divided by
    ANKLE_TO_NOSE_FRACTION. NaN when a segment is never seen."""
    kp = track.keypoints
    legs = []
    for s in ("left", "right"):
        legs.append(_segment_length(kp, [f"{s}_ankle"], [f"{s}_knee"]) +
                    _segment_length(kp, [f"{s}_knee"], [f"{s}_hip"]))
    leg = float(np.nanmean(legs)) if np.isfinite(legs).any() else float("nan")
    trunk = _segment_length(kp, ["left_hip", "right_hip"], ["left_shoulder", "right_shoulder"])
    neck = _segment_length(kp, ["left_shoulder", "right_shoulder"], ["nose"])
    return (leg + trunk + neck) / ANKLE_TO_NOSE_FRACTION


def resolve_scale(spec: ScaleSpec, tracks: Sequence[Track], where: str) -> Scale | None:
    """The scale for one input, or None when no scale was asked for (InputError when the
    person's height cannot be measured)."""
    floor = spec.floor_angle()
    if spec.points_px is not None:
        x1, y1, x2, y2 = spec.points_px
        return Scale(spec.distance_m / math.hypot(x2 - x1, y2 - y1), "points", floor,
                     points_px=tuple(spec.points_px), distance_m=spec.distance_m)
    if spec.person_height_m is None:
        return None
    if not tracks:
        raise InputError(f"{where}: --person-height: nobody was tracked, so there is no "
                         f"person to measure")
    # the person seen longest sets the scale (a one-person recording is the usual case);
    # between people seen about as long, the tallest in the image: the subject in the
    # foreground, not someone walking by behind them the whole clip
    seen = {t.track_id: int(t.present.sum()) for t in tracks}
    longest = max(seen.values())
    about_as_long = [t for t in tracks if seen[t.track_id] >= LONGEST_FRACTION * longest]
    heights = {t.track_id: person_height_px(t) for t in about_as_long}
    track = max(about_as_long, key=lambda t: (
        heights[t.track_id] if math.isfinite(heights[t.track_id]) else -1.0, -t.track_id))
    px = heights[track.track_id]
    if not (math.isfinite(px) and px > 0):
        raise InputError(f"{where}: --person-height: track {track.track_id} never shows "
                         f"ankles, knees, hips, shoulders and nose, so its height cannot be "
                         f"measured")
    return Scale(spec.person_height_m / px, "person_height", floor,
                 person_height_m=spec.person_height_m, person_height_px=round(px, 3),
                 track_id=track.track_id)
