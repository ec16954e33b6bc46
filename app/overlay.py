"""Pure numpy/OpenCV drawing of the GUI's overlays from a PoseFrame and the view settings.

No Qt here: the renderer thread calls `render_frame` and only wraps the result in a QImage.
Everything is drawn at *display* size (the frame is scaled down first), which keeps the work
per frame small and the line widths readable whatever the video's resolution. A zoomed view
(`Viewport`) renders only the part of the frame it shows, at the zoomed scale.

Explanations: TransPose's encoder attention (AttentionMaps) is blended as a heatmap; TFPose's
decoder attention (DecoderAttention) is drawn as lines between joints and sampling points,
and its joint-dependency matrix goes to the view as a `JointMatrix` (the view paints it).
What the view says about the attention (the legend's caption, "computing…", "delta hides
everything") travels with the rendered image as an `AttentionLegend` in its `ViewMapping`.
What is computed from the attention (links, matching people) lives in core.
"""
from __future__ import annotations

import dataclasses
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from core.keypoints import COCO_KEYPOINT_NAMES
from core.pose.decoder_attention import DecoderAttention
from core.types import PersonPose, PoseFrame
from core.visualization import (LABEL_BACKGROUND, blend_heatmap, bone_color, draw_label,
                                draw_skeleton)

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
    attention_layer: int = -1            # encoder (TransPose) or decoder (TFPose) layer, -1 = last
    attention_delta: float = 0.0         # the paper's threshold delta on attention values
    attention_opacity: float = 0.6
    attention_scale: str = "sqrt"        # colour scale: "sqrt" (shows the spread) or "linear"
    click_xy: tuple[float, float] | None = None   # image px: show this point's affected area
    attention_matrix: bool = True        # TFPose: the joint-dependency matrix inset
    angles: tuple[str, ...] = ()         # angles listed beside the person (docs/angles.md)
    angle_track: int | None = None       # the selected track (None: beside everyone)


SELECTED_COLOR = (0, 215, 255)           # BGR: the followed person's box and ID label


@dataclass(frozen=True)
class AttentionLegend:
    """What the view says about the attention drawn on a frame (no Qt here): the caption
    of its colour legend and, when nothing shows, why."""

    kind: str                     # "encoder" (TransPose heatmap), "decoder" (TFPose), "" unknown
    state: str                    # SHOWN, PENDING, HIDDEN (delta above every value), NOBODY
    what: str                     # "all keypoints", "left wrist", "the point (120, 80)"
    layer: str                    # "layer 3/3", "last layer"
    delta: float                  # the threshold in use (TransPose)
    peak: float | None = None     # the strongest attention value considered, before delta
    scale: str = "sqrt"           # the colour scale

    SHOWN = "shown"
    PENDING = "pending"
    HIDDEN = "hidden"
    NOBODY = "nobody"

    @property
    def text(self) -> str:
        """The legend's caption: what is explained, the layer, the delta, the colour scale."""
        parts = [f"{'TFPose attention' if self.kind == 'decoder' else 'Attention'} of "
                 f"{self.what}", self.layer]
        if self.kind != "decoder":
            parts.append(f"δ = {self.delta:.4f}")
        parts.append(f"{self.scale} colour scale")
        return " · ".join(parts)

    @property
    def message(self) -> str:
        """Said over the frame when the attention does not show; empty when it does."""
        if self.state == self.PENDING:
            return "Computing attention for this frame…"
        if self.state == self.HIDDEN:
            peak = f" (the strongest value here is {self.peak:.4f})" if self.peak else ""
            return f"δ = {self.delta:.4f} hides all attention{peak}: lower δ to see the map."
        if self.state == self.NOBODY:
            return "No person in this frame, so no attention to show."
        return ""


@dataclass(frozen=True)
class ViewMapping:
    """How a rendered image sits over the source frame: display = (image - origin) * scale,
    and what the view paints over it (the attention legend, the followed person)."""

    scale: float
    image_hw: tuple[int, int]
    display_hw: tuple[int, int]
    origin: tuple[float, float] = (0.0, 0.0)     # source px at the image's top-left corner
    legend: AttentionLegend | None = None        # None: attention is off
    followed_box: tuple[float, float, float, float] | None = None   # x, y, w, h source px

    def to_image(self, x: float, y: float) -> tuple[float, float]:
        return x / self.scale + self.origin[0], y / self.scale + self.origin[1]

    def to_display(self, pts: np.ndarray) -> np.ndarray:
        """Source pixels (..., 2) -> this image's pixels."""
        return (np.asarray(pts, np.float64) - self.origin) * self.scale


@dataclass(frozen=True)
class Viewport:
    """Which part of the frame the view shows: `zoom` times the fit-to-view scale with the
    source pixel `center` in the middle of the view (None: the frame's centre)."""

    zoom: float = 1.0
    center: tuple[float, float] | None = None

    @property
    def zoomed(self) -> bool:
        return self.zoom > 1.0 + 1e-6


def fit_scale(image_hw: tuple[int, int], target_wh: tuple[int, int]) -> float:
    """Largest scale (never above 1:1 by more than 4x) that fits the image in the target."""
    h, w = image_hw
    tw, th = max(1, target_wh[0]), max(1, target_wh[1])
    return max(1e-3, min(tw / w, th / h, 4.0))


def view_geometry(image_hw: tuple[int, int], target_wh: tuple[int, int],
                  viewport: Viewport | None) -> tuple[float, tuple[float, float]]:
    """(scale, centre) of a view of target_wh pixels: view pixels per source pixel, and the
    source point in the view's middle. At zoom 1 that is the frame's centre; zoomed, any
    point of the frame (so zooming about the cursor keeps the point under it, and a pan
    can bring an edge of the frame to the middle). The renderer and the view both use
    this, so they agree on what is shown."""
    h, w = image_hw
    zoom = max(1.0, float(viewport.zoom)) if viewport is not None else 1.0
    scale = fit_scale(image_hw, target_wh) * zoom
    if zoom <= 1.0 or viewport is None or viewport.center is None:
        return scale, (w / 2, h / 2)
    cx, cy = (float(v) for v in viewport.center)
    return scale, (float(np.clip(cx, 0.0, w)) if np.isfinite(cx) else w / 2,
                   float(np.clip(cy, 0.0, h)) if np.isfinite(cy) else h / 2)


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


def _scaled_attention(attention: Any, scale: float,
                      origin: tuple[float, float] = (0.0, 0.0)) -> Any:
    """The same maps for an image scaled by `scale` (and shifted so `origin` is its corner):
    crop centres and sizes follow, so `to_image` can warp straight to display size (one
    small warp instead of a full-resolution warp and a resize)."""
    centers = (np.asarray(attention.centers, np.float64) - np.asarray(origin, np.float64)) * scale
    return dataclasses.replace(attention, centers=centers,
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
                   display_hw: tuple[int, int],
                   origin: tuple[float, float] = (0.0, 0.0)) -> np.ndarray | None:
    """(h, w) float32 map at display size, or None when there is nothing to show.

    With a clicked point: that point's affected area for the person it belongs to.
    Otherwise: the dependency area of the chosen keypoint (or the strongest of all
    keypoints) for every person, combined by maximum. Each person's map is relative to its
    own peak (so everyone is visible), then shown on the chosen colour scale; delta applies
    to the raw attention values first. `origin`: the source pixel at the display's corner
    (a zoomed view shows part of the frame; colours are relative to each person's whole
    map, so they do not change as the view pans)."""
    return _attention_heat(frame, settings, scale, display_hw, origin)[0]


def _attention_heat(frame: PoseFrame, settings: OverlaySettings, scale: float,
                    display_hw: tuple[int, int], origin: tuple[float, float] = (0.0, 0.0)
                    ) -> tuple[np.ndarray | None, float | None]:
    """attention_heat's map and the strongest raw attention value it considered (before
    delta; None when it considered none): delta at or above it hides the whole map."""
    att = frame.attention
    if att is None or not settings.attention or isinstance(att, DecoderAttention):
        return None, None                    # TFPose explains with lines and points instead
    layers = int(att.num_layers)
    layer = settings.attention_layer if -layers <= settings.attention_layer < layers else -1
    delta = float(settings.attention_delta)
    with _layers_lock:
        att = _layers.get(att, layer % layers)
    layer, head = 0, 0                       # the reduced maps: one layer, one (mean) head
    shown = _scaled_attention(att, scale, origin)
    n_att = len(np.asarray(att.centers).reshape(-1, 2))
    heat = np.zeros(display_hw, np.float32)
    if settings.click_xy is not None:
        idx = pick_person(frame.people, settings.click_xy)
        # each person carries the row of the estimate (and of its attention) it came from
        a = frame.people[idx].row if idx is not None else -1
        if not 0 <= a < n_att:
            return None, None
        grid = att.affected_area(a, settings.click_xy, layer, head)
        top = float(np.max(grid))
        if top < delta or top <= 0:
            return None, top
        return _on_scale(shown.to_image(grid, a, display_hw, delta) / top, settings), top
    peak: float | None = None
    for a in range(n_att):
        if settings.attention_keypoint is None:
            grids = [att.dependency_area(a, k, layer, head)
                     for k in range(att.keypoint_tokens.shape[1])]
            grid = np.max(grids, axis=0)     # thresholding commutes with max: one warp
        else:
            grid = att.dependency_area(a, settings.attention_keypoint, layer, head)
        top = float(np.max(grid))            # a small grid: cheap
        peak = top if peak is None else max(peak, top)
        if top < delta or top <= 0:
            continue                         # nothing of this person passes delta
        # relative to the person's peak in the grid, not in what is visible: the colours
        # stay put while a zoomed view pans across them
        np.maximum(heat, shown.to_image(grid, a, display_hw, delta) / top, out=heat)
    return _on_scale(heat, settings), peak


def _what_explained(settings: OverlaySettings, decoder: bool) -> str:
    if settings.click_xy is not None and not decoder:
        return f"the point ({settings.click_xy[0]:.0f}, {settings.click_xy[1]:.0f})"
    k = settings.attention_keypoint
    if k is None:
        return "all keypoints"
    return COCO_KEYPOINT_NAMES[k].replace("_", " ") if 0 <= k < len(COCO_KEYPOINT_NAMES) \
        else f"joint {k}"


def attention_legend(frame: PoseFrame, settings: OverlaySettings,
                     peak: float | None = None, shown: bool = True) -> AttentionLegend | None:
    """The legend of the attention drawn on this frame (None while attention is off).

    peak: the strongest attention value considered (see `_attention_heat`); shown: whether
    anything was drawn. A frame that should have attention but has none yet is PENDING
    (its maps are being computed), one without people is NOBODY, a map that delta removed
    entirely is HIDDEN."""
    if not settings.attention:
        return None
    att = frame.attention
    decoder = isinstance(att, DecoderAttention)
    kind = "decoder" if decoder else "encoder" if att is not None else ""
    if att is not None:
        n = int(att.num_layers)
        layer = f"layer {_layer_index(settings.attention_layer, n) + 1}/{n}"
    else:
        layer = ("last layer" if settings.attention_layer == -1
                 else f"layer {settings.attention_layer + 1}")
    delta = float(settings.attention_delta)
    if not frame.people:
        state = AttentionLegend.NOBODY
    elif att is None:
        state = AttentionLegend.PENDING if frame.image is not None else AttentionLegend.SHOWN
    elif (not decoder and not shown and peak is not None and delta > 0 and peak < delta):
        state = AttentionLegend.HIDDEN
    else:
        state = AttentionLegend.SHOWN
    return AttentionLegend(kind, state, _what_explained(settings, decoder), layer, delta,
                           peak, str(settings.attention_scale))


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

    def draw(self, image: np.ndarray, scale: float,
             origin: tuple[float, float] = (0.0, 0.0)) -> None:
        for history in self._trails.values():
            if len(history) < 2:
                continue
            pts = (np.stack(history) - np.asarray(origin, np.float32)) * scale   # (n, joints, 2)
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
                 trails: TrailBuffer | None = None,
                 viewport: Viewport | None = None) -> tuple[np.ndarray, ViewMapping]:
    """The frame scaled to fit target_wh with every overlay drawn; BGR uint8, contiguous.

    A zoomed `viewport` renders only the part of the frame the view shows, at the zoomed
    scale: the work stays proportional to the view's size, not to the zoom."""
    if frame.image is None:
        h, w = frame.size_hw
        image = np.zeros((h, w, 3), np.uint8)
    else:
        image = frame.image
    h, w = image.shape[:2]
    scale, (cx, cy) = view_geometry((h, w), target_wh, viewport)
    if viewport is not None and viewport.zoomed:
        half_w, half_h = max(1, target_wh[0]) / (2 * scale), max(1, target_wh[1]) / (2 * scale)
        x0, x1 = max(0, int(np.floor(cx - half_w))), min(w, int(np.ceil(cx + half_w)))
        y0, y1 = max(0, int(np.floor(cy - half_h))), min(h, int(np.ceil(cy + half_h)))
        source = image[y0:y1, x0:x1]                # a view, not a copy
        origin = (float(x0), float(y0))
    else:
        source, origin = image, (0.0, 0.0)
    sh, sw = source.shape[:2]
    dw, dh = max(1, int(round(sw * scale))), max(1, int(round(sh * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    canvas = cv2.resize(source, (dw, dh), interpolation=interp) if (dw, dh) != (sw, sh) \
        else source.copy()
    off = np.asarray(origin, np.float32)

    heat, peak = _attention_heat(frame, settings, scale, (dh, dw), origin)
    if heat is not None:
        blend_heatmap(canvas, heat, float(settings.attention_opacity))
    if settings.trails and trails is not None:
        trails.update(frame, settings.trail_length)
        trails.draw(canvas, scale, origin)
    labels: list[tuple[int, int, int, int]] = []    # id labels drawn (angle lists avoid them)
    if settings.skeleton or settings.boxes:
        for p in frame.people:
            scores = np.nan_to_num(np.asarray(p.keypoint_scores, np.float32), nan=0.0)
            kps = (np.asarray(p.keypoints, np.float32) - off) * scale
            if not settings.skeleton:
                scores = np.zeros_like(scores)      # box only: no joint passes the threshold
            box = _display_box(p.box, scale, origin)
            draw_skeleton(canvas, kps, scores, settings.threshold, label=None,
                          box=box if settings.boxes else None)
            if settings.ids and _on_canvas(box, canvas):   # a zoomed view: people in it
                ok = np.isfinite(kps).all(axis=1) & (scores >= settings.threshold)
                if ok.any():                        # above the highest visible joint
                    top = kps[ok][np.argmin(kps[ok][:, 1])]
                    at = (int(top[0]) - 10, int(top[1]) - 12)
                elif settings.boxes:
                    at = (int(box[0]) + 3, int(box[1]) + 18)
                else:
                    continue
                labels.append(_id_label(canvas, f"#{p.track_id}", at,
                                        p.track_id == settings.angle_track, labels))
    if settings.angles or settings.angle_track is not None:
        _draw_person_angles(canvas, frame, settings, scale, origin, labels)
    decoder = settings.attention and isinstance(frame.attention, DecoderAttention)
    if decoder:                              # over the skeleton: its lines join the joints
        draw_decoder_explanation(canvas, frame, settings, scale, origin)
    if (settings.attention and settings.click_xy is not None and frame.attention is not None
            and not decoder):
        cx_d, cy_d = (int(round((v - o) * scale)) for v, o in zip(settings.click_xy, origin))
        cv2.drawMarker(canvas, (cx_d, cy_d), (255, 255, 255), cv2.MARKER_CROSS, 18, 2,
                       cv2.LINE_AA)
        cv2.drawMarker(canvas, (cx_d, cy_d), (0, 0, 0), cv2.MARKER_CROSS, 18, 1, cv2.LINE_AA)
    followed = None
    if settings.angle_track is not None:
        for p in frame.people:
            if p.track_id == settings.angle_track and np.isfinite(np.asarray(p.box, float)).all():
                followed = tuple(float(v) for v in p.box)
                break
    legend = attention_legend(frame, settings, peak, shown=heat is not None)
    mapping = ViewMapping(scale=scale, image_hw=(h, w), display_hw=(dh, dw), origin=origin,
                          legend=legend, followed_box=followed)
    return np.ascontiguousarray(canvas), mapping


def _display_box(box: Any, scale: float, origin: tuple[float, float]) -> np.ndarray:
    """An (x, y, w, h) source box in display pixels."""
    b = np.asarray(box, np.float64).copy()
    b[:2] -= origin
    return b * scale


def _on_canvas(box: np.ndarray, canvas: np.ndarray, margin: float = 0.0) -> bool:
    """Whether a display box (x, y, w, h) overlaps the canvas (grown by `margin`)."""
    h, w = canvas.shape[:2]
    x, y, bw, bh = (float(v) for v in box)
    return (np.isfinite([x, y, bw, bh]).all() and x + bw >= -margin and y + bh >= -margin
            and x <= w + margin and y <= h + margin)


def _draw_person_angles(canvas: np.ndarray, frame: PoseFrame, settings: OverlaySettings,
                        scale: float, origin: tuple[float, float] = (0.0, 0.0),
                        labels: tuple | list = ()) -> None:
    """The selected person's box highlighted and their chosen angles listed beside it (or
    everyone's angles while nobody is selected, lowest id first, each where it covers no
    list already drawn nor an id label in `labels`: in a crowd some are left out until
    someone is selected)."""
    from core.analysis.angles import compute_angles
    from core.visualization import draw_angles
    taken = list(labels)                  # lists and id labels drawn: none is covered
    for p in frame.people:
        if settings.angle_track is not None and p.track_id != settings.angle_track:
            continue
        box = _display_box(p.box, scale, origin)
        if not _on_canvas(box, canvas):
            continue                           # outside a zoomed view
        if settings.angle_track is not None:
            x, y, w, h = (int(round(v)) for v in box)
            cv2.rectangle(canvas, (x, y), (x + w, y + h), SELECTED_COLOR, 2, cv2.LINE_AA)
        if settings.angles:
            values = compute_angles(np.asarray(p.keypoints, float)[None], settings.angles)
            others = [_display_box(o.box, scale, origin) for o in frame.people if o is not p]
            draw_angles(canvas, box, {n: float(v[0]) for n, v in values.items()}, taken=taken,
                        others=others)


def _id_label(image: np.ndarray, text: str, at: tuple[int, int], selected: bool,
              others: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    """A track ID on a dark box (the followed person's on the highlight colour), so it
    reads on white walls and dark shadows alike; kept inside the image and beside the ids
    already drawn (`others`) rather than over them. Returns where."""
    if selected:
        return draw_label(image, text, at, scale=0.55, color=(20, 20, 20),
                          background=SELECTED_COLOR, avoid=others)
    return draw_label(image, text, at, scale=0.55, background=LABEL_BACKGROUND, avoid=others)


def _label(image: np.ndarray, text: str, at: tuple[int, int], size: float = 0.55) -> None:
    """White text with a dark outline: readable on sky and on shadow alike (skipped when
    its anchor is out of a zoomed view)."""
    h, w = image.shape[:2]
    if 0 <= at[0] <= w + 10 and -10 <= at[1] <= h + 20:     # its joint is in the image
        draw_label(image, text, at, scale=size, outline=True)


# ----------------------------------------------------------------------------------------------
# TFPose: the decoder's attention, drawn as lines between joints and sampling points

SAMPLING_POINTS = 48            # the strongest sampling points drawn for one keypoint
SAMPLING_POINTS_ALL = 6         # ... per keypoint when every keypoint is shown
NAMED_LINKS = 3                 # the strongest links of one keypoint get the joint's name
LINK_COLOR_WEAK = np.array((40, 40, 230), np.float64)     # BGR: red (weak) -> white (strong)
LINK_COLOR_STRONG = np.array((255, 255, 255), np.float64)


def short_joint_name(name: str) -> str:
    """"left_shoulder" -> "L sho", "nose" -> "nose": labels for the matrix inset."""
    side, _, part = name.partition("_")
    return f"{side[0].upper()} {part[:3]}" if part else name


JOINT_LABELS: tuple[str, ...] = tuple(short_joint_name(n) for n in COCO_KEYPOINT_NAMES)


def _layer_index(layer: int, layers: int) -> int:
    return (layer if -layers <= layer < layers else -1) % max(1, layers)


def _weight_scale(rel: np.ndarray | float, scale: str) -> np.ndarray:
    rel = np.clip(np.asarray(rel, np.float64), 0.0, 1.0)
    return np.sqrt(rel) if scale == "sqrt" else rel


def _link_color(r: float) -> tuple[int, int, int]:
    return tuple(int(v) for v in LINK_COLOR_WEAK + (LINK_COLOR_STRONG - LINK_COLOR_WEAK) * r)


def _jet(rel: np.ndarray) -> np.ndarray:
    """(n, 3) BGR uint8 colours of values in [0, 1] (the heatmaps' colour map)."""
    v = (np.clip(rel, 0, 1) * 255).astype(np.uint8).reshape(-1, 1)
    return cv2.applyColorMap(v, cv2.COLORMAP_JET).reshape(-1, 3)


def _pt(xy: np.ndarray) -> tuple[int, int]:
    return int(round(float(xy[0]))), int(round(float(xy[1])))


def _draw_points(image: np.ndarray, pts: np.ndarray, rel: np.ndarray, radius: float) -> None:
    """Sampling points, weakest first (the strongest on top), sized and coloured by weight."""
    colors = _jet(rel)
    for i in np.argsort(rel, kind="stable"):
        if not np.isfinite(pts[i]).all():
            continue
        r = max(2, int(round(radius * (0.6 + 1.4 * rel[i]))))
        c = _pt(pts[i])
        cv2.circle(image, c, r + 1, (235, 235, 235), -1, cv2.LINE_AA)   # seen on dark ground
        cv2.circle(image, c, r, tuple(int(v) for v in colors[i]), -1, cv2.LINE_AA)


def _draw_link(image: np.ndarray, a: np.ndarray, b: np.ndarray, r: float, thick: int,
               arrow: bool = False) -> None:
    """One dependency, a dark outline under a red (weak) to white (strong) line."""
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return
    width = max(1, int(round(thick * (0.5 + 1.5 * r))))
    pa, pb = _pt(a), _pt(b)
    if arrow and pa != pb:
        tip = min(0.35, 12.0 * max(1, thick) / max(1.0, float(np.hypot(*(b - a)))))
        cv2.arrowedLine(image, pa, pb, (20, 20, 20), width + 2, cv2.LINE_AA, tipLength=tip)
        cv2.arrowedLine(image, pa, pb, _link_color(r), width, cv2.LINE_AA, tipLength=tip)
    else:
        cv2.line(image, pa, pb, (20, 20, 20), width + 2, cv2.LINE_AA)
        cv2.line(image, pa, pb, _link_color(r), width, cv2.LINE_AA)


def colour_bar(name: str, n: int = 256) -> np.ndarray:
    """(n, 3) RGB uint8 colours from weak to strong, for the view's legend: "jet" (the
    heatmaps and sampling points) or "links" (TFPose's joint links)."""
    rel = np.linspace(0.0, 1.0, n)
    if name == "links":
        bgr = np.array([_link_color(float(r)) for r in rel], np.uint8)
    else:
        bgr = _jet(rel)
    return np.ascontiguousarray(bgr[:, ::-1])


def draw_decoder_explanation(canvas: np.ndarray, frame: PoseFrame, settings: OverlaySettings,
                             scale: float, origin: tuple[float, float] = (0.0, 0.0)) -> None:
    """TFPose's explanation over a display-size canvas, in place, for every person.

    One keypoint: lines from it to the joints its query attended to (thickness and colour
    by weight) and its query's strongest sampling points (JET colours, size by weight).
    All keypoints: each joint's strongest dependency as an arrow to the joint it attended to
    most, and a few sampling points per keypoint, fainter. Drawn with the overlay opacity;
    weights are relative to the strongest shown, on the chosen colour scale."""
    att = frame.attention
    if not isinstance(att, DecoderAttention) or att.num_people == 0:
        return
    layer = _layer_index(settings.attention_layer, att.num_layers)
    thick = max(2, round(max(canvas.shape[:2]) / 350))
    opacity = float(np.clip(settings.attention_opacity, 0.0, 1.0))
    colour_scale = settings.attention_scale
    k = settings.attention_keypoint
    off = np.asarray(origin, np.float64)
    points = canvas.copy()
    links: list[tuple[np.ndarray, np.ndarray, float, bool]] = []   # from, to, weight, arrow
    marks: list[tuple[np.ndarray, str]] = []
    names: list[tuple[np.ndarray, str]] = []
    for person in frame.people:
        a = att.person_for(person.box, layer)
        if a is None:
            continue
        kps = (np.asarray(person.keypoints, np.float64) - off) * scale
        shown = range(min(len(kps), att.joint_weights.shape[-1])) if k is None else [k]
        for j in shown:
            pts, w = att.sampling(a, j, layer,
                                  top=SAMPLING_POINTS if k is not None else SAMPLING_POINTS_ALL)
            if len(w) and float(w.max()) > 0:
                _draw_points(points, (np.asarray(pts, np.float64) - off) * scale,
                             _weight_scale(w / float(w.max()), colour_scale),
                             thick if k is not None else max(1, thick - 1))
        if k is not None:
            top = float(att.joint_dependencies(a, layer)[k].max()) or 1.0
            joints, weights = att.joint_links(a, k, layer)
            links += [(kps[k], kps[j], float(_weight_scale(wj / top, colour_scale)), False)
                      for j, wj in zip(joints, weights)]
            names += [(kps[j], f"{JOINT_LABELS[j] if j < len(JOINT_LABELS) else j} {wj:.0%}")
                      for j, wj in zip(joints[:NAMED_LINKS], weights[:NAMED_LINKS])
                      if np.isfinite(kps[j]).all()]
            if np.isfinite(kps[k]).all():
                marks.append((kps[k], COCO_KEYPOINT_NAMES[k].replace("_", " ")
                              if k < len(COCO_KEYPOINT_NAMES) else f"joint {k}"))
        else:
            src, dst, w = att.strongest_links(a, layer, per_joint=1)
            top = float(w.max()) if len(w) else 0.0
            links += [(kps[s], kps[d], float(_weight_scale(wi / (top or 1.0), colour_scale)), True)
                      for s, d, wi in zip(src, dst, w)]
    faint = opacity * (0.5 if k is None else 1.0)
    cv2.addWeighted(points, faint, canvas, 1.0 - faint, 0.0, dst=canvas)
    if links:
        drawn = canvas.copy()
        for a_xy, b_xy, r, arrow in sorted(links, key=lambda link: link[2]):  # strongest on top
            _draw_link(drawn, a_xy, b_xy, r, thick, arrow)
            if not arrow and np.isfinite(b_xy).all():
                cv2.circle(drawn, _pt(b_xy), thick + 1, _link_color(r), -1, cv2.LINE_AA)
        cv2.addWeighted(drawn, opacity, canvas, 1.0 - opacity, 0.0, dst=canvas)
    for xy, name in names:
        c = _pt(xy)
        _label(canvas, name, (c[0] + thick + 3, c[1] - thick - 2), size=0.4)
    for xy, name in marks:
        c = _pt(xy)
        cv2.circle(canvas, c, thick * 3, (20, 20, 20), thick + 2, cv2.LINE_AA)
        cv2.circle(canvas, c, thick * 3, (255, 255, 255), thick, cv2.LINE_AA)
        _label(canvas, name, (c[0] + thick * 3 + 4, c[1] + 5))


@dataclass(frozen=True)
class JointMatrix:
    """What the video view paints as TFPose's joint-dependency inset (no Qt here)."""

    colors: np.ndarray            # (K, K, 3) RGB uint8 cell colours
    values: np.ndarray            # (K, K) the weights: row k = joint k's query, rows sum to 1
    labels: tuple[str, ...]       # short joint names
    names: tuple[str, ...]        # full joint names (tooltips)
    track_id: int
    layer: int                    # 0-based decoder layer
    num_layers: int
    keypoint: int | None          # the highlighted row (the chosen keypoint)


def joint_matrix(frame: PoseFrame, settings: OverlaySettings) -> JointMatrix | None:
    """The joint-dependency matrix of the first person with a TFPose explanation, in the
    chosen layer, coloured (viridis, relative to its largest weight, on the colour scale)."""
    att = frame.attention
    if (not settings.attention or not settings.attention_matrix
            or not isinstance(att, DecoderAttention) or att.num_people == 0):
        return None
    layer = _layer_index(settings.attention_layer, att.num_layers)
    for person in frame.people:
        a = att.person_for(person.box, layer)
        if a is None:
            continue
        values = np.asarray(att.joint_dependencies(a, layer), np.float32)
        k = len(values)
        top = float(values.max()) or 1.0
        rel = _weight_scale(values / top, settings.attention_scale)
        bgr = cv2.applyColorMap((rel * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS)
        names = tuple(n.replace("_", " ") for n in COCO_KEYPOINT_NAMES[:k]) + tuple(
            f"joint {i}" for i in range(len(COCO_KEYPOINT_NAMES), k))
        labels = JOINT_LABELS[:k] + tuple(str(i) for i in range(len(JOINT_LABELS), k))
        kp = settings.attention_keypoint
        return JointMatrix(np.ascontiguousarray(bgr[..., ::-1]), values, labels, names,
                           int(person.track_id), layer, int(att.num_layers),
                           kp if kp is not None and 0 <= kp < k else None)
    return None
