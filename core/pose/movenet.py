"""MoveNetEstimator: Google's MoveNet SinglePose (Thunder) ONNX model on person boxes.

A drop-in alternative to TransPoseEstimator with the same call and result:
``estimator(image_bgr, boxes) -> PoseEstimate`` (17 COCO keypoints in image pixels). It
serves as an evaluation model and as the teacher that labels training images.

The model (``../shared/models/movenet_thunder.onnx``, see ``../shared/models/README.md``):
input ``input`` int32 [1, 256, 256, 3], RGB 0..255 (the graph normalises); output
``output_0`` float32 [1, 1, 17, 3], each keypoint (y, x, score) with y, x in 0..1 of the
input square. Lightning (192 px input) works the same way.

How a crop is made ("square crop with image context", the protocol of the shared
README's measured 0.589 mean OKS, on ground-truth boxes enlarged 1.25x):

* the box is squared first: a square centred on the box centre with side
  ``max(w, h) * crop_scale`` (crop_scale 1.0; the 1.25 enlargement is the caller's, as for
  every backend), snapped to whole pixels;
* the square is filled from the image (the people and scene around a narrow box stay
  visible); only where the square leaves the image it is zero-padded (black);
* resized to 256x256 (``interpolation``: "area" by default, antialiased for the usual
  downscale; "linear" is plain bilinear: both give 0.589 on the public set) and cast
  to int32;
* keypoints map back as ``x0 + x * side``, ``y0 + y * side`` ((x0, y0) the square's
  top-left in image pixels, edges at integers, as boxes are given).

``context="box"`` is the other reading of the README's pre-processing: cut the
(enlarged) box out alone and zero-pad it centred to a square (no image context). On the
public evaluation set it scores better: mean OKS 0.628 against 0.589, AP 0.444 against
0.412, PCK 0.815 against 0.771. The gain is in images with several people (+0.045 mean
OKS over 88 such people, -0.005 over the 13 alone in their image): the context of the
square shows neighbours, and the single-person model sometimes follows one of them. The
default stays "image", the protocol the shared README's figures were measured with.

One crop per model run (the graph's batch is fixed at 1). Attention maps are a TransPose
feature: ``attention=True`` is accepted and the result's ``attention`` is always None.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ..errors import InputError, StudioError
from ..keypoints import NUM_KEYPOINTS
from ..onnx_session import cpu_session
from ..types import PoseEstimate, validate_boxes

ROOT = Path(__file__).resolve().parents[2]
MODEL_FILE = "movenet_thunder.onnx"


def default_model_path() -> Path | None:
    """movenet_thunder.onnx in resources/models, else in ../shared/models (or
    $TRANSPOSE_SHARED/models); None when neither has it."""
    shared = Path(os.environ.get("TRANSPOSE_SHARED", ROOT.parent / "shared"))
    for cand in (ROOT / "resources" / "models" / MODEL_FILE, shared / "models" / MODEL_FILE):
        if cand.is_file():
            return cand
    return None


@dataclass(frozen=True)
class MoveNetConfig:
    crop_scale: float = 1.0        # square side = max(box w, h) * crop_scale
    context: str = "image"         # "image": the square is filled from the image;
                                   # "box": the box alone, zero-padded to a square
    interpolation: str = "area"    # resize to the input size: "area" or "linear"
    color: str = "bgr"             # channel order of the images given to __call__
    num_threads: int = 2           # onnxruntime intra-op threads
    spin: bool = False             # let idle onnxruntime threads busy-wait. Off: on the
                                   # busy 2-core machine (load ~5) spinning nearly doubled
                                   # the time per person on the public set (84-98 ms vs
                                   # 46-53 ms, three interleaved runs); not measured quiet


class MoveNetEstimator:
    """MoveNet SinglePose on person boxes; see the module docstring.

    ``estimator(image, boxes)`` with an HxWx3 uint8 image (BGR by default) and (N, 4)
    xywh boxes (None: the whole image) returns a PoseEstimate with keypoints (N, 17, 2)
    in image pixels (COCO order) and scores (N, 17) in [0, 1].
    """

    def __init__(self, path: str | os.PathLike, num_threads: int = 2,
                 config: MoveNetConfig | None = None, *, color: str | None = None) -> None:
        config = config or MoveNetConfig(num_threads=num_threads)
        if color is not None:
            config = dataclasses.replace(config, color=color)
        if config.color not in ("bgr", "rgb"):
            raise InputError(f"color must be 'bgr' or 'rgb', not {config.color!r}")
        if config.context not in ("image", "box"):
            raise InputError(f"context must be 'image' or 'box', not {config.context!r}")
        if config.interpolation not in ("area", "linear"):
            raise InputError(f"interpolation must be 'area' or 'linear', not "
                             f"{config.interpolation!r}")
        if not config.crop_scale > 0:
            raise InputError(f"crop_scale must be positive, not {config.crop_scale!r}")
        self.config = config
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such MoveNet .onnx model file")
        self.session = cpu_session(self.path, config.num_threads, spin=config.spin,
                                   what="the MoveNet pose model")
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        shape = list(inputs[0].shape) if len(inputs) == 1 else []
        if len(shape) != 4 or shape[3] != 3 or not isinstance(shape[1], int) \
                or shape[1] != shape[2] or len(outputs) != 1 \
                or list(outputs[0].shape)[-2:] != [NUM_KEYPOINTS, 3]:
            raise StudioError(
                f"{self.path}: not a MoveNet SinglePose model (inputs "
                f"{[(i.name, i.shape) for i in inputs]}, outputs "
                f"{[(o.name, o.shape) for o in outputs]}; expected one [1, S, S, 3] input and "
                f"a [1, 1, 17, 3] output)")
        self.input_size = int(shape[1])
        self._input_name = inputs[0].name
        self._input_dtype = np.float32 if "float" in inputs[0].type else np.int32
        self.name = self.variant = {256: "movenet-thunder", 192: "movenet-lightning"}.get(
            self.input_size, f"movenet-{self.input_size}")
        self.weights_name = str(self.path)

    def __repr__(self) -> str:
        return f"MoveNetEstimator({str(self.path)!r}, {self.config})"

    # ---------------------------------------------------------------- crops
    def square(self, box: np.ndarray) -> tuple[int, int, int]:
        """The crop square (x0, y0, side) of one box in whole image pixels."""
        x, y, w, h = (float(v) for v in box)
        side = max(1, int(round(max(w, h) * self.config.crop_scale)))
        x0 = int(round(x + w / 2 - side / 2))
        y0 = int(round(y + h / 2 - side / 2))
        return x0, y0, side

    def crop(self, rgb: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int]]:
        """(S, S, 3) uint8 model input for one box and its square (x0, y0, side)."""
        H, W = rgb.shape[:2]
        x0, y0, side = self.square(box)
        canvas = np.zeros((side, side, 3), np.uint8)
        if self.config.context == "image":
            sx0, sy0, sx1, sy1 = x0, y0, x0 + side, y0 + side
        else:   # the box alone, centred in the square
            x, y, w, h = (float(v) for v in box)
            sx0, sy0 = int(round(x)), int(round(y))
            sx1, sy1 = int(round(x + w)), int(round(y + h))
        ix0, iy0 = max(sx0, x0, 0), max(sy0, y0, 0)
        ix1, iy1 = min(sx1, x0 + side, W), min(sy1, y0 + side, H)
        if ix1 > ix0 and iy1 > iy0:
            canvas[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = rgb[iy0:iy1, ix0:ix1]
        s = self.input_size
        if side != s:
            interp = cv2.INTER_AREA if (self.config.interpolation == "area" and side > s) \
                else cv2.INTER_LINEAR
            canvas = cv2.resize(canvas, (s, s), interpolation=interp)
        return canvas, (x0, y0, side)

    def run_crop(self, crop: np.ndarray) -> np.ndarray:
        """One (S, S, 3) uint8 RGB crop -> (17, 3) y, x (0..1 of the crop), score."""
        x = crop[None].astype(self._input_dtype)
        out = self.session.run(None, {self._input_name: x})[0]
        return np.asarray(out, np.float64).reshape(NUM_KEYPOINTS, 3)

    # ---------------------------------------------------------------- call
    def __call__(self, image: np.ndarray,
                 boxes: np.ndarray | Sequence[Sequence[float]] | None = None,
                 *, attention: bool = False) -> PoseEstimate:
        """Keypoints of the people in ``boxes``; ``attention`` is accepted and ignored."""
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 \
                or image.dtype != np.uint8:
            raise InputError("image must be an HxWx3 uint8 array")
        rgb = image[..., ::-1] if self.config.color == "bgr" else image
        b = validate_boxes(boxes, image.shape[:2])
        kpts = np.zeros((len(b), NUM_KEYPOINTS, 2), np.float32)
        scores = np.zeros((len(b), NUM_KEYPOINTS), np.float32)
        for i, box in enumerate(b):
            crop, (x0, y0, side) = self.crop(rgb, box)
            out = self.run_crop(crop)
            kpts[i, :, 0] = x0 + out[:, 1] * side
            kpts[i, :, 1] = y0 + out[:, 0] * side
            scores[i] = out[:, 2]
        return PoseEstimate(boxes=b, keypoints=kpts, scores=scores, attention=None)
