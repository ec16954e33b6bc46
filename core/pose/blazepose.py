"""BlazePoseEstimator: MediaPipe's BlazePose GHUM landmark model ("full") on person boxes.

A drop-in alternative to TransPoseEstimator with the same call and result:
``estimator(image_bgr, boxes) -> PoseEstimate`` (17 COCO keypoints in image pixels).

MediaPipe's own pipeline first runs its pose detector on the whole frame and follows one
person. Here the landmark model (``pose_landmark_full.tflite`` from the mediapipe 0.10.21
wheel, run with LiteRT) is applied directly to a crop around each given person box, so
any detector and any number of people can be used.

How a crop is made (MediaPipe's ``pose_detection_to_roi`` / ``pose_landmark_by_roi``):

* a square ROI centred on the box centre, side ``max(w, h) * crop_scale`` (1.5).
  MediaPipe expands its detector's square (a circle about the hips that encloses the
  body, about as tall as the person) by 1.5 (``RectTransformationCalculator`` scale 1.5,
  ``square_long``), so 1.5 x a tight person box frames people the same way; on the
  public evaluation set 1.5 is also the best factor for tight boxes (1.4: 0.376, 1.5:
  0.391, 1.6: 0.382 mean OKS). Boxes are taken to be tight, like a detector's (the
  TransPose estimator also pads them itself);
* the ROI is resampled to 256x256 (bilinear, the image edges replicated), RGB scaled to
  [0, 1] (``output_tensor_float_range {min: 0 max: 1}`` in pose_landmark_by_roi; [-1, 1]
  lands keypoints on the body too but scores 0.04 OKS lower), no rotation;
* the model's landmarks (input pixels) are mapped back with the inverse of the same
  affine, to image coordinates in which the box (x, y, w, h) spans x..x+w. As MediaPipe does, each landmark is refined from the model's heatmap output
  (weighted mean of sigmoid(heatmap) in a 7x7 window when its maximum is >= 0.5).

Model outputs (checked by shape and by experiment): ``Identity`` (1, 195) = 39 landmarks
x (x, y, z, visibility logit, presence logit) in input pixels; ``Identity_1`` (1, 1) the
pose presence, already a probability; ``Identity_2`` (1, 256, 256, 1) segmentation
logits; ``Identity_3`` (1, 64, 64, 39) landmark heatmap logits; ``Identity_4`` (1, 117)
world landmarks. The interpreter is resized to run several crops per invoke.

BlazePose expects crops centred on the hips. When a person is cut off by the frame, the
box centre is not the body centre and the model folds a whole body into the box (hips on
the chest, ankles in the frame). For boxes that touch the image border (``recrop``), the
model therefore runs a second time on the ROI MediaPipe's tracking derives from the first
result (``pose_landmarks_to_roi``: centred on the predicted hip centre, auxiliary
landmark 33, side 1.5 x twice its distance to the scale point, landmark 34). On the
astronaut photo this moves the hips down to the frame edge and the ankles out of the
image. On the evaluation set (tight boxes) it is neutral: 0.392 mean OKS against 0.391
without it; re-cropping every box (0.382) or twice (0.383) did worse.

Scores: ``sigmoid(visibility) * pose_presence`` for each keypoint, where visibility is
the landmark's "in the image and not occluded" logit and pose_presence the model's
person-present probability; a keypoint outside the image gets 0. The landmarks' own
presence is not used: it is near 1 for almost every joint, and multiplying it in ranks
correct keypoints no better (ROC AUC of correct vs wrong or unlabelled keypoints on the
evaluation set: visibility alone 0.68, visibility x pose presence 0.79).

Attention maps are a TransPose feature; ``attention=True`` is accepted for a uniform
call signature and the result's ``attention`` is always None.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from ..errors import InputError, StudioError
from ..keypoints import NUM_KEYPOINTS
from ..threads import landmark_threads
from ..tflite import load_interpreter, mediapipe_model_path
from ..types import PoseEstimate, validate_boxes

NAME = "mediapipe-blazepose-full"
INPUT_SIZE = 256
NUM_LANDMARKS = 39              # 33 body landmarks + 6 auxiliary
LANDMARK_FIELDS = 5             # x, y, z, visibility logit, presence logit

# BlazePose landmark index of each COCO keypoint (MediaPipe's pose_landmark topology:
# 0 nose, 2 left eye (centre), 5 right eye (centre), 7 left ear, 8 right ear,
# 11/12 shoulders, 13/14 elbows, 15/16 wrists, 23/24 hips, 25/26 knees, 27/28 ankles;
# left/right are the person's, as in COCO).
BLAZEPOSE_TO_COCO: tuple[int, ...] = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16,
                                      23, 24, 25, 26, 27, 28)
AUX_HIP_CENTER, AUX_SCALE_POINT = 33, 34

# output -> (its tensor name in pose_landmark_full.tflite, its shape without the batch)
_OUTPUTS = {"landmarks": ("Identity", (NUM_LANDMARKS * LANDMARK_FIELDS,)),
            "presence": ("Identity_1", (1,)),
            "heatmap": ("Identity_3", (64, 64, NUM_LANDMARKS))}


@dataclass(frozen=True)
class BlazePoseConfig:
    crop_scale: float = 1.5        # ROI side = max(box w, h) * crop_scale
    input_range: tuple[float, float] = (0.0, 1.0)
    border: str = "replicate"      # "replicate" (MediaPipe's default) or "zero"
    heatmap_refine: bool = True    # MediaPipe's RefineLandmarksFromHeatmapCalculator
    recrop: str = "border"         # second pass on the landmark-derived ROI: for boxes
                                   # at the image border ("border"), "always" or "never"
    recrop_passes: int = 1         # how many second passes (more lowered the score)
    border_margin: float = 0.01    # "at the border": within this fraction of the image
                                   # size (at least 2 px) of an image edge
    color: str = "bgr"             # channel order of the images given to __call__
    batch_size: int = 8            # crops per interpreter invoke
    num_threads: int = 0           # LiteRT threads; 0: all CPU cores (at most 4)
    model_path: str | None = None  # another pose_landmark_*.tflite; default: mediapipe's full


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function without overflow warnings (also for +-inf)."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))


@dataclass(frozen=True)
class _Roi:
    cx: float
    cy: float
    side: float

    def to_crop(self) -> np.ndarray:
        """2x3 matrix, image pixel index -> crop pixel index (pixel centres at integers).

        Both are continuous coordinates shifted by half a pixel: an image point X (edges
        at integers, as boxes are given) lies at crop position (X - c) * s + 128.
        """
        s = INPUT_SIZE / self.side
        t = lambda c: s * (0.5 - c) + INPUT_SIZE / 2 - 0.5  # noqa: E731
        return np.array([[s, 0.0, t(self.cx)], [0.0, s, t(self.cy)]], dtype=np.float64)

    def to_image(self, pts: np.ndarray) -> np.ndarray:
        """Crop coordinates (0..256 spans the ROI) -> image coordinates."""
        pts = np.asarray(pts, dtype=np.float64)
        return (pts - INPUT_SIZE / 2) * (self.side / INPUT_SIZE) + np.array([self.cx, self.cy])


class BlazePoseEstimator:
    """MediaPipe BlazePose (full) keypoints for person boxes; see the module docstring.

    ``estimator(image, boxes)`` with an HxWx3 uint8 image (BGR by default) and (N, 4)
    xywh boxes (None: the whole image) returns a PoseEstimate with keypoints (N, 17, 2)
    in image pixels (COCO order) and scores (N, 17) in [0, 1].
    """

    name = NAME
    variant = NAME

    def __init__(self, config: BlazePoseConfig = BlazePoseConfig()) -> None:
        if config.color not in ("bgr", "rgb"):
            raise InputError(f"color must be 'bgr' or 'rgb', not {config.color!r}")
        if config.border not in ("replicate", "zero"):
            raise InputError(f"border must be 'replicate' or 'zero', not {config.border!r}")
        if config.recrop not in ("border", "always", "never"):
            raise InputError(f"recrop must be 'border', 'always' or 'never', not "
                             f"{config.recrop!r}")
        if not config.crop_scale > 0:
            raise InputError(f"crop_scale must be positive, not {config.crop_scale!r}")
        self.config = config
        self.model_path = config.model_path or str(mediapipe_model_path("pose_landmark_full"))
        threads = config.num_threads or landmark_threads()
        self.interpreter = load_interpreter(self.model_path, num_threads=threads)
        inp = self.interpreter.get_input_details()
        if len(inp) != 1 or list(inp[0]["shape"][1:]) != [INPUT_SIZE, INPUT_SIZE, 3]:
            raise StudioError(f"{self.model_path}: not a BlazePose landmark model (input "
                              f"{[list(d['shape']) for d in inp]}, expected 1x256x256x3)")
        self._input_index = inp[0]["index"]
        self._batch = 1
        self._resolve_outputs()
        self.weights_name = self.model_path

    def _resolve_outputs(self) -> None:
        """Find the outputs by shape (then by name where shapes are ambiguous)."""
        details = self.interpreter.get_output_details()
        found = {}
        for key, (name, shape) in _OUTPUTS.items():
            match = [d for d in details if tuple(d["shape"][1:]) == shape]
            if len(match) > 1:
                match = [d for d in match if d["name"] == name] or match[:1]
            if not match:
                raise StudioError(
                    f"{self.model_path}: not a BlazePose landmark model (outputs "
                    f"{[(d['name'], list(d['shape'])) for d in details]}; none shaped "
                    f"{list(shape)} for the {key})")
            found[key] = match[0]["index"]
        self._outputs = found
        # 3-D world landmarks (39 x 3: metres, origin between the hips); optional
        world = [d for d in details if tuple(d["shape"][1:]) == (NUM_LANDMARKS * 3,)]
        self._world_output = world[0]["index"] if world else None

    def __repr__(self) -> str:
        return f"BlazePoseEstimator({self.config})"

    # ---------------------------------------------------------------- model
    def _set_batch(self, n: int) -> None:
        if n != self._batch:
            self.interpreter.resize_tensor_input(self._input_index, [n, INPUT_SIZE, INPUT_SIZE, 3])
            self.interpreter.allocate_tensors()
            self._resolve_outputs()
            self._batch = n

    def crop(self, rgb: np.ndarray, roi: _Roi) -> np.ndarray:
        """uint8 RGB 256x256 crop of one ROI."""
        border = cv2.BORDER_REPLICATE if self.config.border == "replicate" else cv2.BORDER_CONSTANT
        return cv2.warpAffine(rgb, roi.to_crop(), (INPUT_SIZE, INPUT_SIZE),
                              flags=cv2.INTER_LINEAR, borderMode=border, borderValue=0)

    def run_crops(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N, 256, 256, 3) uint8 RGB crops -> landmarks (N, 39, 5) in crop pixels, with
        visibility and presence as probabilities, pose presence (N,), and the world
        landmarks (N, 39, 3) in metres (NaN when the model has none)."""
        n = len(crops)
        lms = np.zeros((n, NUM_LANDMARKS, LANDMARK_FIELDS), np.float64)
        pres = np.zeros(n, np.float64)
        world = np.full((n, NUM_LANDMARKS, 3), np.nan, np.float64)
        lo, hi = self.config.input_range
        bs = max(1, self.config.batch_size)
        for i in range(0, n, bs):
            chunk = crops[i:i + bs]
            self._set_batch(len(chunk))
            x = chunk.astype(np.float32) * np.float32((hi - lo) / 255.0) + np.float32(lo)
            self.interpreter.set_tensor(self._input_index, x)
            self.interpreter.invoke()
            lm = self.interpreter.get_tensor(self._outputs["landmarks"]).reshape(
                len(chunk), NUM_LANDMARKS, LANDMARK_FIELDS).astype(np.float64)
            if self.config.heatmap_refine:
                hm = self.interpreter.get_tensor(self._outputs["heatmap"])
                for j in range(len(chunk)):
                    lm[j, :, :2] = refine_from_heatmap(lm[j, :, :2], hm[j])
            lm[..., 3:5] = _sigmoid(lm[..., 3:5])
            lms[i:i + len(chunk)] = lm
            pres[i:i + len(chunk)] = self.interpreter.get_tensor(
                self._outputs["presence"]).reshape(-1)
            if self._world_output is not None:
                world[i:i + len(chunk)] = self.interpreter.get_tensor(
                    self._world_output).reshape(len(chunk), NUM_LANDMARKS, 3)
        return lms, pres, world

    # ---------------------------------------------------------------- ROIs
    def box_roi(self, box: np.ndarray) -> _Roi:
        x, y, w, h = (float(v) for v in box)
        return _Roi(x + w / 2, y + h / 2, max(w, h) * self.config.crop_scale)

    def _recrop(self, box: np.ndarray, image_hw: tuple[int, int]) -> bool:
        if self.config.recrop != "border":
            return self.config.recrop == "always"
        h, w = image_hw
        m = max(2.0, self.config.border_margin * max(h, w))
        x, y, bw, bh = (float(v) for v in box)
        return x <= m or y <= m or x + bw >= w - m or y + bh >= h - m

    @staticmethod
    def landmark_roi(points: np.ndarray) -> _Roi:
        """MediaPipe's pose_landmarks_to_roi (without the rotation): centre on the hip
        centre (aux landmark 33), side 1.5 x twice its distance to the scale point (34)."""
        c, p = points[AUX_HIP_CENTER], points[AUX_SCALE_POINT]
        return _Roi(float(c[0]), float(c[1]), float(2.0 * np.hypot(*(p - c)) * 1.5))

    # ---------------------------------------------------------------- call
    def _infer(self, rgb: np.ndarray, rois: list[_Roi]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """-> landmarks (N, 39, 5) with x, y in image pixels, pose presence (N,), world
        landmarks (N, 39, 3)."""
        if not rois:
            return (np.zeros((0, NUM_LANDMARKS, LANDMARK_FIELDS)), np.zeros(0),
                    np.zeros((0, NUM_LANDMARKS, 3)))
        crops = np.stack([self.crop(rgb, r) for r in rois])
        lms, pres, world = self.run_crops(crops)
        for lm, roi in zip(lms, rois):
            lm[:, :2] = roi.to_image(lm[:, :2])
            lm[:, 2] *= roi.side / INPUT_SIZE
        return lms, pres, world

    def landmarks(self, image: np.ndarray, boxes=None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """All 39 BlazePose landmarks: boxes (N, 4), landmarks (N, 39, 5) with x, y in
        image pixels, z (depth, hips at 0) in image pixels, visibility and presence as
        probabilities, the pose presence (N,), and the world landmarks (N, 39, 3) in metres
        (origin between the hips; NaN when the model has none)."""
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 \
                or image.dtype != np.uint8:
            raise InputError("image must be an HxWx3 uint8 array")
        # one OpenCV conversion (0.5 ms per HD frame) instead of a numpy reversal copy (17 ms)
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if self.config.color == "bgr" \
            else np.ascontiguousarray(image)
        b = validate_boxes(boxes, image.shape[:2])
        rois = [self.box_roi(box) for box in b]
        lms, pres, world = self._infer(rgb, rois)
        redo = [i for i, box in enumerate(b) if self._recrop(box, image.shape[:2])]
        for _ in range(self.config.recrop_passes):
            new = [self.landmark_roi(lms[i, :, :2]) for i in redo]
            keep = [k for k, r in enumerate(new) if np.isfinite(r.side) and r.side > 1]
            redo, new = [redo[k] for k in keep], [new[k] for k in keep]
            if not redo:
                break
            lms[redo], pres[redo], world[redo] = self._infer(rgb, new)
        return b, lms, pres, world

    def __call__(self, image: np.ndarray,
                 boxes: np.ndarray | Sequence[Sequence[float]] | None = None,
                 *, attention: bool = False) -> PoseEstimate:
        """Keypoints of the people in ``boxes``; ``attention`` is accepted and ignored
        (BlazePose has no attention maps: the result's ``attention`` is None)."""
        b, lms, pres, world = self.landmarks(image, boxes)
        idx = list(BLAZEPOSE_TO_COCO)
        kpts = lms[:, idx, :2]
        scores = lms[:, idx, 3] * pres[:, None]
        h, w = image.shape[:2]
        outside = (kpts[..., 0] < 0) | (kpts[..., 0] > w) | (kpts[..., 1] < 0) | (kpts[..., 1] > h)
        scores = np.where(outside, 0.0, scores)
        world = world[:, idx] if self._world_output is not None else None
        return PoseEstimate(
            boxes=b, keypoints=kpts.astype(np.float32).reshape(-1, NUM_KEYPOINTS, 2),
            scores=scores.astype(np.float32).reshape(-1, NUM_KEYPOINTS), attention=None,
            world=None if world is None else world.astype(np.float32).reshape(
                -1, NUM_KEYPOINTS, 3))


def refine_from_heatmap(points: np.ndarray, heatmap: np.ndarray, kernel_size: int = 7,
                        min_confidence: float = 0.5) -> np.ndarray:
    """MediaPipe's RefineLandmarksFromHeatmapCalculator on one crop.

    points: (K, 2) in crop pixels; heatmap: (H, W, K) logits. Each point inside the
    heatmap moves to the sigmoid-weighted mean cell of the kernel around it (cells off
    the heatmap count as zero) when the kernel's maximum is at least min_confidence.
    As in MediaPipe, cell (r, c) stands for crop point (c, r) * 256 / W: measured on the
    evaluation set, cell centres (+half a cell) shift keypoints 2 px down and right.
    """
    hh, hw, k = heatmap.shape
    out = np.array(points, dtype=np.float64, copy=True)
    k = min(k, len(out))
    sx, sy = hw / INPUT_SIZE, hh / INPUT_SIZE
    off = (kernel_size - 1) // 2
    with np.errstate(invalid="ignore"):
        col = np.floor(out[:k, 0] * sx)
        row = np.floor(out[:k, 1] * sy)
    inside = np.isfinite(col) & np.isfinite(row) & (col >= 0) & (col < hw) & (row >= 0) & (row < hh)
    if not inside.any():
        return out
    j = np.flatnonzero(inside)
    col, row = col[j].astype(np.int64), row[j].astype(np.int64)
    padded = np.pad(np.asarray(heatmap, np.float64), ((off, off), (off, off), (0, 0)),
                    constant_values=-np.inf)
    span = np.arange(kernel_size)
    rows = row[:, None] + span[None, :]                  # padded indices (n, ks)
    cols = col[:, None] + span[None, :]
    conf = _sigmoid(padded[rows[:, :, None], cols[:, None, :], j[:, None, None]])
    total = conf.sum(axis=(1, 2))
    ok = (conf.max(axis=(1, 2)) >= min_confidence) & (total > 0)
    real_rows, real_cols = rows - off, cols - off          # heatmap cell indices
    mean_c = (conf * real_cols[:, None, :]).sum(axis=(1, 2)) / np.where(ok, total, 1)
    mean_r = (conf * real_rows[:, :, None]).sum(axis=(1, 2)) / np.where(ok, total, 1)
    out[j[ok], 0] = mean_c[ok] / sx
    out[j[ok], 1] = mean_r[ok] / sy
    return out
