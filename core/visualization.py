"""Drawing skeletons and attention maps on frames (OpenCV, BGR images)."""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from .detection.base import intersection_areas
from .keypoints import COCO_SKELETON

# Person's left in blue-ish, right in orange-ish, centre line in green (BGR).
_LEFT, _RIGHT, _CENTRE = (230, 160, 40), (40, 140, 255), (80, 200, 80)


def _side(i: int) -> int:
    return 0 if i == 0 else (1 if i % 2 == 1 else 2)


def bone_color(a: int, b: int) -> tuple[int, int, int]:
    sides = {_side(a), _side(b)}
    if sides == {1}:
        return _LEFT
    if sides == {2}:
        return _RIGHT
    return _CENTRE


# a person this many pixels tall (or wide) gets bones one pixel wide, twice it two, ...
PX_PER_LINE_WIDTH = 60


def draw_skeleton(image: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                  threshold: float = 0.3, label: str | None = None,
                  box: np.ndarray | None = None,
                  labels: list[tuple[int, int, int, int]] | None = None) -> np.ndarray:
    """Draw one person in place: bones coloured by side, joints by confidence; `label`
    (the track id) above the highest joint, white on a dark box (readable on any frame),
    where it went appended to `labels` when given."""
    thick = max(2, round(max(image.shape[:2]) / 400))
    ok = np.isfinite(keypoints).all(axis=1) & (scores >= threshold)
    pts = np.nan_to_num(keypoints).round().astype(int)
    # Bones and joints as thick as the person is large, up to the frame's width: on a
    # pedestrian 80 px tall the frame's 2 px lines and 4 px dots merged the face and the
    # limbs into one blob. (The id label keeps the frame's size: it must stay readable.)
    bone = thick
    if ok.sum() >= 2:
        extent = float(np.ptp(pts[ok], axis=0).max())
        bone = int(np.clip(round(extent / PX_PER_LINE_WIDTH), 1, thick))
    if box is not None:
        x, y, w, h = (int(round(v)) for v in box)
        cv2.rectangle(image, (x, y), (x + w, y + h), (200, 200, 200), 1, cv2.LINE_AA)
    for a, b in COCO_SKELETON:
        if ok[a] and ok[b]:
            cv2.line(image, tuple(pts[a]), tuple(pts[b]), bone_color(a, b), bone, cv2.LINE_AA)
    for i in np.flatnonzero(ok):
        s = float(np.clip(scores[i], 0, 1))
        color = (0, int(255 * s), int(255 * (1 - s)))          # red (weak) -> green (sure)
        cv2.circle(image, tuple(pts[i]), bone + 1 + (bone > 1), color, -1, cv2.LINE_AA)
    if label and ok.any():
        top = pts[ok][np.argmin(pts[ok][:, 1])]
        scale, weight = 0.45 + thick * 0.12, max(1, thick - 1)
        (tw, th), base = cv2.getTextSize(label, LABEL_FONT, scale, weight)
        pad = max(2, int(round(th * 0.3)))
        # centred over the highest joint, its box clear of the joint's dot
        at = draw_label(image, label, (int(top[0]) - tw // 2,
                                       int(top[1]) - thick - 4 - base - pad),
                        scale=scale, thickness=weight, pad=pad, avoid=labels)
        if labels is not None:
            labels.append(at)
    return image


LABEL_FONT = cv2.FONT_HERSHEY_SIMPLEX
LABEL_BACKGROUND = (24, 24, 24)          # BGR: near black, behind white text


Box = tuple[int, int, int, int]          # (x0, y0, x1, y1), pixels, x1 and y1 exclusive


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def free_offset(box: Box, taken: Sequence[Box], image_hw: tuple[int, int],
                gap: int = 2) -> tuple[int, int]:
    """How far to move `box` so that it covers none of `taken` and stays in the image: the
    smallest move among those that put it just beside (left, right, above, below; `gap`
    pixels apart) one of the boxes it would cover. (0, 0) when it covers none, or when no
    such move is free (a crowd: it stays where it belongs)."""
    clashes = [t for t in taken if _overlaps(box, t)]
    if not clashes:
        return 0, 0
    h, w = image_hw
    x0, y0, x1, y1 = box
    moves = []
    for t in clashes:
        moves += [(t[2] + gap - x0, 0), (t[0] - gap - x1, 0), (0, t[1] - gap - y1),
                  (0, t[3] + gap - y0)]
    for dx, dy in sorted(moves, key=lambda m: m[0] ** 2 + m[1] ** 2):
        moved = (x0 + dx, y0 + dy, x1 + dx, y1 + dy)
        if moved[0] >= 0 and moved[1] >= 0 and moved[2] <= w and moved[3] <= h and \
                not any(_overlaps(moved, t) for t in taken):
            return dx, dy
    return 0, 0


def draw_label(image: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.55,
               thickness: int = 1, color: tuple[int, int, int] = (255, 255, 255),
               background: tuple[int, int, int] | None = LABEL_BACKGROUND,
               outline: bool = False, pad: int | None = None,
               avoid: Sequence[Box] | None = None) -> Box:
    """Text that stays readable on any frame, in place: on a filled box (`background`) or,
    with outline=True, with a dark outline (no box). `org` is the text's bottom-left as for
    cv2.putText; the label is moved inside the image when it would leave it, and beside
    any of the boxes in `avoid` it would cover (other people's id labels: two people side
    by side must not share one unreadable label; `free_offset`). Returns the
    (x0, y0, x1, y1) it covers. Cost: a few small rectangles, whatever the image size."""
    (tw, th), base = cv2.getTextSize(text, LABEL_FONT, scale, thickness)
    pad = max(2, int(round(th * 0.3))) if pad is None else int(pad)
    h, w = image.shape[:2]
    x = int(np.clip(org[0], pad, max(pad, w - tw - pad)))
    y = int(np.clip(org[1], th + pad, max(th + pad, h - base - pad)))
    if avoid:
        dx, dy = free_offset((x - pad, y - th - pad, x + tw + pad, y + base + pad), avoid,
                             (h, w))
        x, y = x + dx, y + dy
    x0, y0, x1, y1 = x - pad, y - th - pad, x + tw + pad, y + base + pad
    if outline or background is None:
        dark = background if background is not None else LABEL_BACKGROUND
        cv2.putText(image, text, (x, y), LABEL_FONT, scale, dark, thickness + 3, cv2.LINE_AA)
    else:
        cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), background, -1)
    cv2.putText(image, text, (x, y), LABEL_FONT, scale, color, thickness, cv2.LINE_AA)
    return x0, y0, x1, y1


def blend_heatmap(image: np.ndarray, heat: np.ndarray, opacity: float = 0.6) -> np.ndarray:
    """Blend a non-negative (H, W) map over a BGR image with a colour map, in place."""
    peak = float(heat.max())
    if peak <= 0:
        return image
    norm = (heat / peak * 255).astype(np.uint8)
    colored = cv2.applyColorMap(norm, cv2.COLORMAP_JET)
    alpha = (heat / peak * opacity)[..., None].astype(np.float32)
    image[:] = (image * (1 - alpha) + colored * alpha).astype(np.uint8)
    return image


def draw_pose_frame(image: np.ndarray, frame, threshold: float = 0.3,
                    show_boxes: bool = False,
                    labels: list[tuple[int, int, int, int]] | None = None) -> np.ndarray:
    """Draw every tracked person of a PoseFrame (skeleton + track id) in place; where the
    id labels went appended to `labels` when given. No id label covers another."""
    labels = [] if labels is None else labels
    for person in frame.people:
        scores = np.nan_to_num(person.keypoint_scores, nan=0.0)
        draw_skeleton(image, person.keypoints, scores, threshold, label=f"#{person.track_id}",
                      box=person.box if show_boxes else None, labels=labels)
    return image


def draw_decoder_attention(image: np.ndarray, explanation, person: int, keypoint: int,
                           keypoints: np.ndarray, layer: int = -1,
                           max_points: int = 48) -> np.ndarray:
    """TFPose's explanation of one keypoint, in place (explanation: DecoderAttention).

    Lines from the keypoint to every joint its query attended to (query-to-query
    attention, thickness and brightness by weight), and the query's deformable sampling
    points in the image (the strongest `max_points`, radius and colour by weight)."""
    thick = max(2, round(max(image.shape[:2]) / 400))
    kp = np.asarray(keypoints, np.float64)
    if np.isfinite(kp[keypoint]).all():
        top = float(explanation.joint_dependencies(person, layer)[keypoint].max()) or 1.0
        origin = tuple(int(round(v)) for v in kp[keypoint])
        joints, weights = explanation.joint_links(person, keypoint, layer, min_fraction=0.1)
        for j, wj in zip(joints[::-1], weights[::-1]):       # strongest drawn last, on top
            if not np.isfinite(kp[j]).all():
                continue
            r = float(wj / top)
            cv2.line(image, origin, tuple(int(round(v)) for v in kp[j]),
                     (int(255 * r), int(255 * r), 255), max(1, round(thick * 2 * r)), cv2.LINE_AA)
    pts, w = explanation.sampling(person, keypoint, layer, top=max_points)
    pts, w = pts[::-1], w[::-1]                              # strongest drawn last, on top
    top = float(w.max()) if len(w) else 1.0
    colors = cv2.applyColorMap((np.clip(w / top, 0, 1) * 255).astype(np.uint8)[:, None],
                               cv2.COLORMAP_JET)[:, 0]
    for (x, y), wi, c in zip(pts, w, colors):
        if np.isfinite([x, y]).all():
            cv2.circle(image, (int(round(x)), int(round(y))),
                       max(2, round(thick * (1 + 3 * wi / top))), tuple(int(v) for v in c), -1,
                       cv2.LINE_AA)
    return image


def angle_label(name: str) -> str:
    """Short label of an angle name for drawing: 'left_knee' -> 'L knee'."""
    side, _, rest = name.partition("_")
    if side in ("left", "right"):
        return f"{side[0].upper()} {rest.replace('_', ' ')}"
    return name.replace("_segment", " seg").replace("_", " ")


def draw_angles(image: np.ndarray, box: np.ndarray, angles: dict[str, float],
                color: tuple[int, int, int] = (255, 255, 255),
                taken: list[tuple[int, int, int, int]] | None = None,
                others: Sequence[np.ndarray] = ()) -> bool:
    """List a person's angles (degrees) beside their box, in place: to the right of the box,
    or to its left when the right side would leave the image; from the box's top down, or
    higher where the list would leave the image's bottom, in columns where it is taller
    than the image. NaN values show as '-'.

    ``taken``: what is drawn already and must stay readable (other lists, id labels),
    (x0, y0, x1, y1) each. The list goes to whichever side covers none of them (and is
    added to them); where both would, it is left out: in a crowd, numbers drawn over each
    other are read by nobody. ``others``: the other people's boxes (x, y, w, h); of two
    free sides the list takes the one that covers less of them (the right one when they
    tie), so that it darkens nobody else where it need not. Returns whether it was drawn."""
    if not angles or not np.isfinite(np.asarray(box, float)).all():
        return False
    h, w = image.shape[:2]
    scale = float(np.clip(h / 1400, 0.4, 1.0))     # readable on small and large frames
    thick = 1 if h < 700 else 2
    line_h = int(22 * scale / 0.6) + 2
    # (round() gives an int: -0.4 reads "0", where format(-0.4, ".0f") gives "-0")
    texts = [f"{angle_label(n)} {round(float(v))}" if np.isfinite(v) else
             f"{angle_label(n)} -" for n, v in angles.items()]
    pad = 3
    column_w = max(cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)[0][0]
                   for t in texts) + 2 * pad
    # a list taller than the frame (every angle on a small video) goes in columns
    fit = max(1, (h - 1 - 2 * pad) // line_h)
    columns = math.ceil(len(texts) / fit)
    rows = math.ceil(len(texts) / columns)                  # lines per column, balanced
    width = column_w * columns
    x, y, bw, _ = (float(v) for v in box)
    # from the box's top down, moved up as far as the frame's bottom needs (someone near
    # it: a long list was cut there)
    top = int(max(line_h, min(y + line_h, h - 1 - pad - line_h * (rows - 1))))
    y0, y1 = max(0, top - line_h + 2), min(h - 1, top + line_h * (rows - 1) + pad)
    right, left = max(0, int(x + bw + 6)), max(0, int(x - width + 2 * pad - 6))
    sides = [right, left] if right + width - 2 * pad <= w else [left]
    free = [a for a in sides
            if not any(_overlaps((a, y0, a + width, y1), t) for t in (taken or ()))]
    if not free:
        return False
    seen = [o for o in (np.asarray(o, float) for o in others) if np.isfinite(o).all()]
    # how much of the other people each free side covers; argmin keeps the first of a tie
    # (the right side)
    covered = intersection_areas([(a, y0, width, y1 - y0) for a in free], seen)[0]
    at = free[int(np.argmin(covered.sum(axis=1)))]
    if taken is not None:
        taken.append((at, y0, at + width, y1))
    sub = image[y0:y1, at:at + width]
    if sub.size:          # a dark backing so the numbers stay readable on any frame
        sub[:] = (sub * 0.45).astype(np.uint8)
    for i, t in enumerate(texts):
        cv2.putText(image, t, (at + pad + (i // rows) * column_w, top + (i % rows) * line_h),
                    cv2.FONT_HERSHEY_SIMPLEX, scale, color, thick, cv2.LINE_AA)
    return True
