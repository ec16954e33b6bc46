"""Pure numpy/OpenCV drawing of the GUI's overlays from a PoseFrame and the view settings.

No Qt here: the renderer thread calls `render_frame` and only wraps the result in a QImage.
Everything is drawn at *display* size (the frame is scaled down first), which keeps the work
per frame small and the line widths readable whatever the video's resolution.
"""
from __future__ import annotations

import dataclasses
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from core.types import PersonPose, PoseFrame
from core.visualization import blend_heatmap, bone_color, draw_skeleton

# Joints that get a trail: the extremities move the most, so their trails read best.
TRAIL_JOINTS: tuple[int, ...] = (9, 10, 15, 16)   # wrists and ankles


@dataclass(frozen=True)
class OverlaySettings:
    """What to draw over a frame (every field is a user-facing control)."""

    skeleton: bool = True
    boxes: bool = False
    ids: bool = True
    trails: bool = False
    trail_length: int = 12               # frames
    threshold: float = 0.3               # keypoints below this confidence are not drawn
    attention: bool = False
    attention_keypoint: int | None = None  # None: every keypoint
    attention_layer: int = -1            # encoder layer, -1 = the last
    attention_delta: float = 0.0         # the paper's threshold delta on attention values
    attention_opacity: float = 0.6
    attention_scale: str = "sqrt"        # colour scale: "sqrt" (shows the spread) or "linear"
    click_xy: tuple[float, float] | None = None   # image px: show this point's affected area


@dataclass(frozen=True)
class ViewMapping:
    """How a rendered image sits over the source frame: display = image * scale."""

    scale: float
    image_hw: tuple[int, int]
    display_hw: tuple[int, int]

    def to_image(self, x: float, y: float) -> tuple[float, float]:
        return x / self.scale, y / self.scale


def fit_scale(image_hw: tuple[int, int], target_wh: tuple[int, int]) -> float:
    """Largest scale (never above 1:1 by more than 4x) that fits the image in the target."""
    h, w = image_hw
    tw, th = max(1, target_wh[0]), max(1, target_wh[1])
    return max(1e-3, min(tw / w, th / h, 4.0))


def pick_person(people: tuple[PersonPose, ...] | list[PersonPose],
                xy: tuple[float, float]) -> int | None:
    """Index of the person whose box contains the point (the smallest such box), else of the
    person whose box centre is nearest; None without people."""
    if not people:
        return None
    x, y = xy
    inside = []
    dists = []
    for i, p in enumerate(people):
        bx, by, bw, bh = (float(v) for v in p.box)
        if bx <= x <= bx + bw and by <= y <= by + bh:
            inside.append((bw * bh, i))
        dists.append((np.hypot(bx + bw / 2 - x, by + bh / 2 - y), i))
    return min(inside)[1] if inside else min(dists)[1]


def attention_index_for(attention: Any, person: PersonPose) -> int | None:
    """Which person of the AttentionMaps is this tracked person: nearest crop centre.

    The tracker may reorder or drop people, so attention rows are matched by position."""
    centers = np.asarray(attention.centers, np.float64).reshape(-1, 2)
    if len(centers) == 0:
        return None
    bx, by, bw, bh = (float(v) for v in person.box)
    d = np.hypot(centers[:, 0] - (bx + bw / 2), centers[:, 1] - (by + bh / 2))
    i = int(np.argmin(d))
    # a crop centre further than the box's size away belongs to someone else
    return i if d[i] <= max(bw, bh) else None


def _scaled_attention(attention: Any, scale: float) -> Any:
    """The same maps for an image scaled by `scale`: crop centres and sizes scale with it,
    so `to_image` can warp straight to display size (one small warp instead of a
    full-resolution warp and a resize)."""
    return dataclasses.replace(attention, centers=np.asarray(attention.centers) * scale,
                               scales=np.asarray(attention.scales) * scale)


class _LayerCache:
    """The head-averaged maps of one layer, kept for the frame being shown.

    AttentionMaps averages all heads of a layer on every query; for "all keypoints" that is
    17 averages of (people, heads, T, T) per frame (~250 ms on a CPU). Averaging the layer
    once and asking the reduced maps (one "head") for rows and columns gives the same values
    for a fraction of the work, and re-renders of a paused frame reuse it."""

    def __init__(self) -> None:
        self._key: tuple[int, int] | None = None
        self._att: Any = None            # keeps the source alive so its id stays unique
        self._reduced: Any = None

    def get(self, att: Any, layer: int) -> Any:
        key = (id(att), layer)
        if key != self._key:
            w = np.asarray(att.weights)[layer].mean(axis=1, keepdims=True)[None]
            self._key, self._att = key, att
            self._reduced = dataclasses.replace(att, weights=w)   # (1, people, 1, T, T)
        return self._reduced


_layers = _LayerCache()
_layers_lock = threading.Lock()


def attention_heat(frame: PoseFrame, settings: OverlaySettings, scale: float,
                   display_hw: tuple[int, int]) -> np.ndarray | None:
    """(h, w) float32 map at display size, or None when there is nothing to show.

    With a clicked point: that point's affected area for the person it belongs to.
    Otherwise: the dependency area of the chosen keypoint (or the strongest of all
    keypoints) for every person, combined by maximum. Each person's map is relative to its
    own peak (so everyone is visible), then shown on the chosen colour scale; delta applies
    to the raw attention values first."""
    att = frame.attention
    if att is None or not settings.attention:
        return None
    layers = int(att.num_layers)
    layer = settings.attention_layer if -layers <= settings.attention_layer < layers else -1
    delta = float(settings.attention_delta)
    with _layers_lock:
        att = _layers.get(att, layer % layers)
    layer, head = 0, 0                       # the reduced maps: one layer, one (mean) head
    shown = _scaled_attention(att, scale)
    n_att = len(np.asarray(att.centers).reshape(-1, 2))
    heat = np.zeros(display_hw, np.float32)
    if settings.click_xy is not None:
        idx = pick_person(frame.people, settings.click_xy)
        a = attention_index_for(att, frame.people[idx]) if idx is not None else None
        if a is None:
            a = 0 if n_att else None
        if a is None:
            return None
        grid = att.affected_area(a, settings.click_xy, layer, head)
        return _on_scale(_relative(shown.to_image(grid, a, display_hw, delta)), settings)
    for a in range(n_att):
        if settings.attention_keypoint is None:
            grids = [att.dependency_area(a, k, layer, head)
                     for k in range(att.keypoint_tokens.shape[1])]
            grid = np.max(grids, axis=0)     # thresholding commutes with max: one warp
        else:
            grid = att.dependency_area(a, settings.attention_keypoint, layer, head)
        np.maximum(heat, _relative(shown.to_image(grid, a, display_hw, delta)), out=heat)
    return _on_scale(heat, settings)


def _relative(m: np.ndarray) -> np.ndarray:
    peak = float(m.max())
    return m / peak if peak > 0 else m


def _on_scale(m: np.ndarray, settings: OverlaySettings) -> np.ndarray | None:
    if float(m.max()) <= 0:
        return None
    return np.sqrt(m) if settings.attention_scale == "sqrt" else m


class TrailBuffer:
    """Recent positions of a few joints per track id, for short motion trails."""

    def __init__(self, length: int = 12) -> None:
        self.length = length
        self._last_index: int | None = None
        self._trails: dict[int, deque[np.ndarray]] = {}

    def update(self, frame: PoseFrame, length: int) -> None:
        if self._last_index is not None and frame.index == self._last_index:
            return                                  # the same frame drawn again
        jumped = (self._last_index is not None and
                  not (0 < frame.index - self._last_index <= 10))
        if jumped or length != self.length:         # a seek: old positions mean nothing
            self._trails.clear()
            self.length = length
        self._last_index = frame.index
        seen = set()
        for p in frame.people:
            seen.add(p.track_id)
            pts = np.asarray(p.keypoints, np.float32)[list(TRAIL_JOINTS)].copy()
            self._trails.setdefault(p.track_id, deque(maxlen=self.length)).append(pts)
        for tid in list(self._trails):
            if tid not in seen:
                del self._trails[tid]

    def draw(self, image: np.ndarray, scale: float) -> None:
        for history in self._trails.values():
            if len(history) < 2:
                continue
            pts = np.stack(history) * scale          # (n, joints, 2)
            n = len(pts)
            for j, joint in enumerate(TRAIL_JOINTS):
                color = bone_color(joint, joint)
                for t in range(1, n):
                    a, b = pts[t - 1, j], pts[t, j]
                    if not (np.isfinite(a).all() and np.isfinite(b).all()):
                        continue
                    fade = t / (n - 1)               # older segments thinner
                    cv2.line(image, tuple(int(v) for v in a.round()),
                             tuple(int(v) for v in b.round()), color,
                             max(1, int(round(1 + 2 * fade))), cv2.LINE_AA)


def render_frame(frame: PoseFrame, settings: OverlaySettings, target_wh: tuple[int, int],
                 trails: TrailBuffer | None = None) -> tuple[np.ndarray, ViewMapping]:
    """The frame scaled to fit target_wh with every overlay drawn; BGR uint8, contiguous."""
    if frame.image is None:
        h, w = frame.size_hw
        image = np.zeros((h, w, 3), np.uint8)
    else:
        image = frame.image
    h, w = image.shape[:2]
    scale = fit_scale((h, w), target_wh)
    dw, dh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    canvas = cv2.resize(image, (dw, dh), interpolation=interp) if (dw, dh) != (w, h) \
        else image.copy()
    mapping = ViewMapping(scale=scale, image_hw=(h, w), display_hw=(dh, dw))

    heat = attention_heat(frame, settings, scale, (dh, dw))
    if heat is not None:
        blend_heatmap(canvas, heat, float(settings.attention_opacity))
    if settings.trails and trails is not None:
        trails.update(frame, settings.trail_length)
        trails.draw(canvas, scale)
    if settings.skeleton or settings.boxes:
        for p in frame.people:
            scores = np.nan_to_num(np.asarray(p.keypoint_scores, np.float32), nan=0.0)
            kps = np.asarray(p.keypoints, np.float32) * scale
            if not settings.skeleton:
                scores = np.zeros_like(scores)      # box only: no joint passes the threshold
            box = np.asarray(p.box, np.float32) * scale
            draw_skeleton(canvas, kps, scores, settings.threshold, label=None,
                          box=box if settings.boxes else None)
            if settings.ids:
                ok = np.isfinite(kps).all(axis=1) & (scores >= settings.threshold)
                if ok.any():                        # above the highest visible joint
                    top = kps[ok][np.argmin(kps[ok][:, 1])]
                    at = (int(top[0]) - 10, int(top[1]) - 12)
                elif settings.boxes:
                    at = (int(box[0]) + 3, int(box[1]) + 18)
                else:
                    continue
                _label(canvas, f"#{p.track_id}", at)
    if settings.attention and settings.click_xy is not None and frame.attention is not None:
        cx, cy = (int(round(v * scale)) for v in settings.click_xy)
        cv2.drawMarker(canvas, (cx, cy), (255, 255, 255), cv2.MARKER_CROSS, 18, 2, cv2.LINE_AA)
        cv2.drawMarker(canvas, (cx, cy), (0, 0, 0), cv2.MARKER_CROSS, 18, 1, cv2.LINE_AA)
    return np.ascontiguousarray(canvas), mapping


def _label(image: np.ndarray, text: str, at: tuple[int, int]) -> None:
    """White text with a dark outline: readable on sky and on shadow alike."""
    scale = 0.55
    x = int(np.clip(at[0], 2, max(2, image.shape[1] - 40)))
    y = int(np.clip(at[1], 16, image.shape[0] - 4))
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (20, 20, 20), 4, cv2.LINE_AA)
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                cv2.LINE_AA)
