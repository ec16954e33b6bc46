"""MediaPipe's BlazePose person detector (pose_detection.tflite), decoded for every person.

MediaPipe's own graph keeps only the best pose; we run the same model and decode it the
way its graph does, but keep every person above the threshold. Sources, read from
google-ai-edge/mediapipe (master, 2026):

* mediapipe/modules/pose_detection/pose_detection_cpu.pbtxt
  - ImageToTensorCalculator: 224x224, keep_aspect_ratio (centred letterbox), BORDER_ZERO
    (black padding), RGB values mapped to [-1, 1];
  - SsdAnchorsCalculator: num_layers 5, min_scale 0.1484375, max_scale 0.75, input 224x224,
    anchor_offset 0.5, strides 8, 16, 32, 32, 32, aspect_ratios 1.0, fixed_anchor_size;
    (interpolated_scale_aspect_ratio defaults to 1.0 in ssd_anchors_calculator.proto, so
    every layer has 2 anchors per cell: 28*28*2 + 14*14*2 + 7*7*2*3 = 2254);
  - TensorsToDetectionsCalculator: num_boxes 2254, num_coords 12, box_coord_offset 0,
    keypoint_coord_offset 4, num_keypoints 4, 2 values per keypoint, sigmoid_score,
    score_clipping_thresh 100, reverse_output_order (=> x, y, w, h order), x/y/w/h scale
    224, min_score_thresh 0.5;
  - NonMaxSuppressionCalculator: min_suppression_threshold 0.3, IoU, WEIGHTED
    (non_max_suppression_calculator.cc: the score-weighted mean of the box and keypoints of
    every candidate with IoU > 0.3 to the best one; the score stays the best one's);
  - DetectionLetterboxRemovalCalculator: back to the un-padded image.
  The detection's box is the FACE; keypoint 0 is the mid-hip centre, keypoint 1 encodes the
  size and rotation of the full body, keypoints 2 and 3 the same for the upper body.
* mediapipe/modules/pose_landmark/pose_detection_to_roi.pbtxt
  - AlignmentPointsRectsCalculator (start keypoint 0, end keypoint 1): a square centred on
    keypoint 0 with side 2 x |kp1 - kp0| (alignment_points_to_rects_calculator.cc), rotated
    so kp0 -> kp1 points up (90 degrees);
  - RectTransformationCalculator: scale 1.25 x 1.25, square_long.

Person boxes, from the body circle (centre keypoint 0, radius r = |kp1 - kp0|), never from
the face box:
* ``box="body"`` (default): the box a top-down pose model wants (COCO-style, tight): 2r tall
  and 2r * `body_aspect` wide, centred on the hips, upright (or lying, when the body axis
  kp0 -> kp1 is nearer horizontal than vertical), clipped to the image. On COCO128 people,
  GT boxes have median height 0.85 * 2r and width 0.42 * 2r around the hips (many are cut
  by the frame edge), top edge at hips - 0.95 r.
* ``box="roi"``: exactly MediaPipe's ROI, axis-aligned (the rotation dropped): a square of
  side 2r x `roi_scale` (1.25) centred on the hips, clipped to the image. It holds the body
  with margin, as MediaPipe's landmark model wants it; its IoU with a standing person's box
  is low (about 0.3), and the pose stage adds its own 1.25 margin anyway.

Tiling (small people): besides the whole letterboxed frame, overlapping tiles (grid x
overlap) are run through the same model; their detections are mapped back to the frame and
merged with a greedy NMS, best score first (see `_merge_passes`); duplicates are found on
the body circles and body boxes, not on the face boxes. (Preferring the whole-frame view of
a person over a tile that cuts them made no difference on COCO128.) ``tiling="auto"``
tiles only frames whose longer side is at least `auto_tile_min_side` (640) pixels, where a
full-frame pass shrinks people by 224/640 or more. Tiling costs one model run per tile
(2x2: five runs in all).

The face box: documented by MediaPipe as the face, it sits lower in practice (its centre
near the chin or neck) and its size varies a lot; it is used only where MediaPipe uses it,
for the NMS within one pass.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from core.errors import InputError
from core.tflite import load_interpreter, mediapipe_model_path
from core.types import Detections

from .base import (PersonDetector, box_containment, box_iou, check_image, clip_boxes,
                   config_from_kwargs, make_detections, nms)

INPUT_SIZE = 224
NUM_BOXES = 2254
NUM_COORDS = 12
NUM_KEYPOINTS = 4
SCORE_CLIP = 100.0


def ssd_anchors(input_size: int = INPUT_SIZE, strides=(8, 16, 32, 32, 32),
                aspect_ratios=(1.0,), interpolated_scale_aspect_ratio: float = 1.0,
                offset: float = 0.5) -> np.ndarray:
    """(N, 2) anchor centres (x, y), normalised, as SsdAnchorsCalculator makes them.

    With fixed_anchor_size every anchor is 1 x 1, so only the centres matter. Layers with the
    same stride are merged (their anchors interleaved per cell), as in the calculator.
    """
    centres = []
    layer = 0
    while layer < len(strides):
        per_cell = 0
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            per_cell += len(aspect_ratios) + (1 if interpolated_scale_aspect_ratio > 0 else 0)
            last += 1
        fm = int(np.ceil(input_size / strides[layer]))
        ys, xs = np.meshgrid(np.arange(fm), np.arange(fm), indexing="ij")
        c = np.stack([(xs + offset) / fm, (ys + offset) / fm], axis=-1).reshape(-1, 1, 2)
        centres.append(np.repeat(c, per_cell, axis=1).reshape(-1, 2))
        layer = last
    return np.concatenate(centres).astype(np.float32)


ANCHORS = ssd_anchors()
assert len(ANCHORS) == NUM_BOXES


@dataclass
class BlazePoseConfig:
    score_threshold: float = 0.5        # MediaPipe's min_score_thresh
    nms_iou: float = 0.3                # MediaPipe's min_suppression_threshold (face boxes)
    weighted_nms: bool = True           # MediaPipe's WEIGHTED algorithm; False = hard NMS
    tiling: str | bool = "auto"         # "auto", "on"/True, "off"/False
    tile_grid: tuple[int, int] = (2, 2)  # rows, columns
    tile_overlap: float = 0.25          # fraction of a tile shared with its neighbour
    auto_tile_min_side: int = 640       # "auto" tiles frames whose longer side is >= this
    tile_merge_iou: float = 0.5         # NMS across passes (body-circle squares)
    tile_merge_containment: float = 0.8  # ... or a body box this much inside another
    box: str = "body"                   # "body" (tight) or "roi" (MediaPipe's square)
    roi_scale: float = 1.25             # RectTransformationCalculator scale_x/scale_y
    body_aspect: float = 0.5            # width / height of the "body" box (upright)
    max_detections: int = 100
    num_threads: int = 2
    model_path: str | None = None       # default: the pose_detection.tflite of mediapipe

    def __post_init__(self) -> None:
        t = self.tiling
        if isinstance(t, bool):
            self.tiling = "on" if t else "off"
        elif isinstance(t, str) and t.strip().lower() in ("auto", "on", "off", "true", "false"):
            self.tiling = {"true": "on", "false": "off"}.get(t.strip().lower(), t.strip().lower())
        else:
            raise InputError(f"tiling must be 'auto', 'on' or 'off', not {t!r}.")
        try:
            rows, cols = (int(v) for v in self.tile_grid)
        except (TypeError, ValueError):
            raise InputError(f"tile_grid must be (rows, columns), not {self.tile_grid!r}.") from None
        if not (1 <= rows <= 8 and 1 <= cols <= 8):
            raise InputError(f"tile_grid must have 1 to 8 rows and columns, not {rows}x{cols}.")
        self.tile_grid = (rows, cols)
        if not 0.0 <= float(self.tile_overlap) < 0.9:
            raise InputError(f"tile_overlap must be in [0, 0.9), not {self.tile_overlap}.")
        if self.box not in ("roi", "body"):
            raise InputError(f"box must be 'roi' or 'body', not {self.box!r}.")
        if not 0.0 < float(self.score_threshold) < 1.0:
            raise InputError(f"score_threshold must be in (0, 1), not {self.score_threshold}.")


@dataclass
class _Raw:
    """Detections of one or more passes, in frame pixels."""

    face: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))   # x, y, w, h
    kps: np.ndarray = field(default_factory=lambda: np.zeros((0, 4, 2), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))

    @staticmethod
    def cat(parts: list["_Raw"]) -> "_Raw":
        if not parts:
            return _Raw()
        return _Raw(np.concatenate([p.face for p in parts]), np.concatenate([p.kps for p in parts]),
                    np.concatenate([p.scores for p in parts]))

    def take(self, idx) -> "_Raw":
        return _Raw(self.face[idx], self.kps[idx], self.scores[idx])


def weighted_nms(boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray, iou_thr: float,
                 max_out: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's WEIGHTED non-max suppression.

    Take the best remaining detection; every remaining one whose IoU with it is > iou_thr
    (itself included) is a candidate; the output is the score-weighted mean of the
    candidates' boxes (as corners) and keypoints, with the best one's score.
    """
    order = np.argsort(-scores, kind="stable")
    boxes, kps, scores = boxes[order], kps[order], scores[order]
    out_b, out_k, out_s = [], [], []
    remaining = np.arange(len(scores))
    while remaining.size and len(out_s) < max_out:
        best = remaining[0]
        iou = box_iou(boxes[best:best + 1], boxes[remaining])[0]
        cand = remaining[iou > iou_thr]
        if cand.size == 0:          # a degenerate box (zero area): keep it alone
            cand = remaining[:1]
        w = scores[cand].astype(np.float64)
        corners = np.concatenate([boxes[cand, :2], boxes[cand, :2] + boxes[cand, 2:]], axis=1)
        mean = (corners * w[:, None]).sum(0) / w.sum()
        out_b.append(np.array([mean[0], mean[1], mean[2] - mean[0], mean[3] - mean[1]]))
        out_k.append((kps[cand] * w[:, None, None]).sum(0) / w.sum())
        out_s.append(scores[best])
        remaining = remaining[~np.isin(remaining, cand)]
    if not out_s:
        return boxes[:0], kps[:0], scores[:0]
    return (np.asarray(out_b, np.float32), np.asarray(out_k, np.float32),
            np.asarray(out_s, np.float32))


class BlazePoseDetector(PersonDetector):
    """Every person MediaPipe's pose detector finds, as person boxes."""

    name = "blazepose"

    def __init__(self, config: BlazePoseConfig | None = None, **cfg) -> None:
        if config is not None and cfg:
            raise InputError("Give the BlazePose detector either a config or options, not both.")
        self.config = config if config is not None else config_from_kwargs(BlazePoseConfig, "blazepose", cfg)
        path = Path(self.config.model_path) if self.config.model_path else mediapipe_model_path("pose_detection")
        self.interpreter = load_interpreter(path, num_threads=int(self.config.num_threads))
        inp = self.interpreter.get_input_details()[0]
        if tuple(inp["shape"]) != (1, INPUT_SIZE, INPUT_SIZE, 3):
            raise InputError(f"{path}: expected a 1x224x224x3 input (MediaPipe's pose_detection), "
                             f"found {tuple(inp['shape'])}.")
        self._input_index = inp["index"]
        outs = self.interpreter.get_output_details()
        by_shape = {tuple(o["shape"][1:]): o["index"] for o in outs}
        try:
            self._reg_index = by_shape[(NUM_BOXES, NUM_COORDS)]
            self._score_index = by_shape[(NUM_BOXES, 1)]
        except KeyError:
            raise InputError(f"{path}: expected outputs (1, 2254, 12) and (1, 2254, 1) "
                             f"(MediaPipe's pose_detection), found "
                             f"{[tuple(o['shape']) for o in outs]}.") from None
        self.last_passes = 0      # how many model runs the last call made (1 + tiles)
        self._lock = threading.Lock()   # one LiteRT interpreter: one call at a time

    # ------------------------------------------------------------------ one model run

    def _run_region(self, image_rgb: np.ndarray, x0: int, y0: int, w: int, h: int) -> _Raw:
        """Detections in the region [x0, x0+w) x [y0, y0+h) of the frame, in frame pixels."""
        crop = image_rgb[y0:y0 + h, x0:x0 + w]
        s = INPUT_SIZE / max(w, h)
        nw, nh = max(1, round(w * s)), max(1, round(h * s))
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        resized = cv2.resize(crop, (nw, nh), interpolation=interp)
        # Centred letterbox with black (0 -> -1.0) borders, as ImageToTensorCalculator.
        px, py = (INPUT_SIZE - nw) // 2, (INPUT_SIZE - nh) // 2
        canvas = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), np.float32)
        canvas[py:py + nh, px:px + nw] = resized
        tensor = (canvas * np.float32(1 / 127.5) - np.float32(1.0))[None]
        self.interpreter.set_tensor(self._input_index, tensor)
        self.interpreter.invoke()
        reg = self.interpreter.get_tensor(self._reg_index)[0]
        logit = self.interpreter.get_tensor(self._score_index)[0, :, 0]
        logit = np.clip(logit.astype(np.float64), -SCORE_CLIP, SCORE_CLIP)
        scores = 1.0 / (1.0 + np.exp(-logit))
        sel = np.nonzero(scores >= self.config.score_threshold)[0]
        if sel.size == 0:
            return _Raw()
        reg, anchors, scores = reg[sel], ANCHORS[sel], scores[sel].astype(np.float32)
        # reverse_output_order: x, y, w, h; offsets in input pixels from the anchor centre.
        cx = reg[:, 0] / INPUT_SIZE + anchors[:, 0]
        cy = reg[:, 1] / INPUT_SIZE + anchors[:, 1]
        bw = reg[:, 2] / INPUT_SIZE
        bh = reg[:, 3] / INPUT_SIZE
        face = np.stack([cx - bw / 2, cy - bh / 2, bw, bh], axis=1) * INPUT_SIZE
        kps = (reg[:, 4:4 + 2 * NUM_KEYPOINTS].reshape(-1, NUM_KEYPOINTS, 2) / INPUT_SIZE
               + anchors[:, None, :]) * INPUT_SIZE
        if self.config.weighted_nms:
            face, kps, scores = weighted_nms(face, kps, scores, self.config.nms_iou,
                                             self.config.max_detections)
        else:
            keep = nms(face, scores, self.config.nms_iou)[: self.config.max_detections]
            face, kps, scores = face[keep], kps[keep], scores[keep]
        # Letterbox removal: input pixels -> frame pixels.
        sx, sy = nw / w, nh / h
        off = np.array([px, py], np.float32)
        scale = np.array([sx, sy], np.float32)
        org = np.array([x0, y0], np.float32)
        face = np.concatenate([(face[:, :2] - off) / scale + org, face[:, 2:] / scale], axis=1)
        kps = (kps - off) / scale + org
        return _Raw(face.astype(np.float32), kps.astype(np.float32), scores)

    # ------------------------------------------------------------------ tiles

    def tiles(self, width: int, height: int) -> list[tuple[int, int, int, int]]:
        """The tile regions (x, y, w, h) used for a frame of this size (empty: no tiling)."""
        mode = self.config.tiling
        if mode == "off" or (mode == "auto" and max(width, height) < self.config.auto_tile_min_side):
            return []
        rows, cols = self.config.tile_grid
        if rows == 1 and cols == 1:
            return []
        o = float(self.config.tile_overlap)
        out = []
        tw = width / (cols - (cols - 1) * o)
        th = height / (rows - (rows - 1) * o)
        for r in range(rows):
            for c in range(cols):
                x = round(c * tw * (1 - o))
                y = round(r * th * (1 - o))
                x2 = width if c == cols - 1 else round(c * tw * (1 - o) + tw)
                y2 = height if r == rows - 1 else round(r * th * (1 - o) + th)
                out.append((x, y, x2 - x, y2 - y))
        return out

    # ------------------------------------------------------------------ boxes

    def person_boxes(self, raw: _Raw, width: int | None = None, height: int | None = None
                     ) -> np.ndarray:
        """(N, 4) person boxes x, y, w, h from decoded detections (clipped when a size is given)."""
        if len(raw.scores) == 0:
            return np.zeros((0, 4), np.float32)
        hip = raw.kps[:, 0].astype(np.float64)
        axis = raw.kps[:, 1].astype(np.float64) - hip          # hips -> top of the body circle
        r = np.linalg.norm(axis, axis=1)
        if self.config.box == "roi":
            side = 2.0 * r * float(self.config.roi_scale)
            boxes = np.stack([hip[:, 0] - side / 2, hip[:, 1] - side / 2, side, side], axis=1)
        else:
            # A rectangle 2r long along the body axis and 2r * body_aspect across it, centred
            # on the hips. The axis (the ROI's rotation) is snapped to the nearest multiple of
            # 90 degrees: its exact tilt follows the pose more than the body's extent (the
            # exact rotation lowered recall on COCO128), but lying people need the swap.
            across = r * float(self.config.body_aspect)
            lying = np.abs(axis[:, 0]) > np.abs(axis[:, 1])
            half_w = np.where(lying, r, across)
            half_h = np.where(lying, across, r)
            boxes = np.stack([hip[:, 0] - half_w, hip[:, 1] - half_h, 2 * half_w, 2 * half_h], axis=1)
        boxes = boxes.astype(np.float32)
        return boxes if width is None else clip_boxes(boxes, width, height)

    # ------------------------------------------------------------------ call

    def _merge_passes(self, raw: _Raw, priority: np.ndarray) -> np.ndarray:
        """Indices kept by a greedy NMS across passes, in priority order.

        Two detections are one person when their body-circle squares (side 2r around the
        hips) overlap with IoU > tile_merge_iou (the same person seen in two passes has
        nearly the same circle, while their face boxes differ more), or when one's body box
        lies mostly (> tile_merge_containment of its area) inside the other's (a tile that
        sees only a person's upper body takes it for a smaller person).
        """
        hip = raw.kps[:, 0]
        r = np.linalg.norm(raw.kps[:, 1] - hip, axis=1)
        circles = np.stack([hip[:, 0] - r, hip[:, 1] - r, 2 * r, 2 * r], axis=1)
        body = self.person_boxes(raw)
        order = np.argsort(-priority, kind="stable")
        keep: list[int] = []
        while order.size:
            i = int(order[0])
            keep.append(i)
            rest = order[1:]
            if rest.size == 0:
                break
            iou = box_iou(circles[i:i + 1], circles[rest])[0]
            contain = box_containment(body[i:i + 1], body[rest])[0]
            dup = (iou > self.config.tile_merge_iou) | (contain > self.config.tile_merge_containment)
            order = rest[~dup]
        return np.asarray(keep, np.int64)

    def detect_raw(self, image_bgr: np.ndarray) -> _Raw:
        """Merged detections (face boxes, 4 keypoints, scores) in frame pixels."""
        image = check_image(image_bgr)
        h, w = image.shape[:2]
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        regions = [(0, 0, w, h)] + self.tiles(w, h)
        self.last_passes = len(regions)
        with self._lock:
            parts = [self._run_region(rgb, *reg) for reg in regions]
        raw = _Raw.cat(parts)
        if len(regions) > 1 and len(raw.scores):
            raw = raw.take(self._merge_passes(raw, raw.scores))
        return raw

    def __call__(self, image_bgr: np.ndarray) -> Detections:
        image = check_image(image_bgr)
        h, w = image.shape[:2]
        raw = self.detect_raw(image)
        boxes = self.person_boxes(raw, w, h)
        det = make_detections(boxes, raw.scores)
        return Detections(det.boxes[: self.config.max_detections], det.scores[: self.config.max_detections])
