"""YOLOX person detector: an ONNX export run with OpenCV's DNN module, person class only.

I/O (Megvii's tools/export_onnx.py without --decode_in_inference, YOLOX >= 0.1.1rc0; see
../shared/models/README.md): input `images` float32 (1, 3, S, S), BGR, 0..255, no
normalisation, the frame letterboxed to the TOP-LEFT of an S x S canvas filled with 114;
output (1, A, 5 + C) raw rows [tx, ty, tw, th, obj, p_0 .. p_C-1] (obj and p already
sigmoided) on grids of strides 8, 16, 32, row-major; decode cx = (tx + gx) * s,
cy = (ty + gy) * s, w = exp(tw) * s, h = exp(th) * s; score = obj * p_person (class 0);
divide by the letterbox ratio; NMS.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.errors import DownloadError, InputError
from core.models import zoo
from core.types import Detections

from .base import PersonDetector, check_image, clip_boxes, config_from_kwargs, make_detections, nms

# Megvii's own export, attached to the YOLOX 0.1.1rc0 release. Its sha256 is not published
# (and could not be fetched here), so the first complete download records it in a
# `yolox_nano.onnx.sha256` sidecar and every later use is checked against that.
YOLOX_NANO_URL = ("https://github.com/Megvii-BaseDetection/YOLOX/releases/download/0.1.1rc0/"
                  "yolox_nano.onnx")
YOLOX_NANO_FILENAME = "yolox_nano.onnx"
YOLOX_NANO_SHA256: str | None = None
PERSON_CLASS = 0
STRIDES = (8, 16, 32)


def fetch_yolox_nano(*, base_url: str | None = None, progress: bool = True) -> Path:
    """Path of the cached yolox_nano.onnx, downloaded on first use into models_dir().

    `base_url` replaces the release folder (tests, mirrors). With TRANSPOSE_STUDIO_OFFLINE=1
    nothing is downloaded: a missing file raises DownloadError saying what to fetch and where.
    """
    url = YOLOX_NANO_URL if base_url is None else base_url.rstrip("/") + "/" + YOLOX_NANO_FILENAME
    dest = zoo.models_dir() / YOLOX_NANO_FILENAME
    if dest.is_file():
        return zoo.verify_cached(dest, YOLOX_NANO_SHA256)
    if zoo.is_offline():
        raise DownloadError(
            f"The YOLOX-Nano detector is not in the cache and {zoo.ENV_OFFLINE} is set, so nothing "
            f"is downloaded; download {url} and save it as {dest} (or pass the detector "
            f"onnx:PATH to a YOLOX ONNX file you have)."
        )
    return zoo.download(url, dest, expected_sha256=YOLOX_NANO_SHA256, progress=progress)


@dataclass
class YoloxConfig:
    score_threshold: float = 0.3
    nms_iou: float = 0.45
    input_size: int = 416           # the export's fixed square input (416 for nano/tiny)
    max_detections: int = 100
    min_box_size: float = 2.0       # px; smaller boxes are dropped

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.score_threshold) < 1.0:
            raise InputError(f"score_threshold must be in [0, 1), not {self.score_threshold}.")
        if int(self.input_size) % 32 or int(self.input_size) < 32:
            raise InputError(f"input_size must be a positive multiple of 32, not {self.input_size}.")


def yolox_grids(size: int, strides=STRIDES) -> tuple[np.ndarray, np.ndarray]:
    """(A, 2) grid cell offsets (gx, gy) and (A,) strides, in the export's row order."""
    cells, strd = [], []
    for s in strides:
        n = size // s
        gy, gx = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        cells.append(np.stack([gx, gy], -1).reshape(-1, 2))
        strd.append(np.full(n * n, s))
    return np.concatenate(cells).astype(np.float32), np.concatenate(strd).astype(np.float32)


class YoloxDetector(PersonDetector):
    """YOLOX (ONNX through cv2.dnn), people only."""

    name = "yolox"

    def __init__(self, path: str | Path, config: YoloxConfig | None = None, **cfg) -> None:
        if config is not None and cfg:
            raise InputError("Give the YOLOX detector either a config or options, not both.")
        self.config = config if config is not None else config_from_kwargs(YoloxConfig, "yolox", cfg)
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such ONNX model file.")
        try:
            self.net = cv2.dnn.readNetFromONNX(str(self.path))
        except cv2.error:
            raise InputError(f"{self.path}: not an ONNX model OpenCV can load (is it a YOLOX "
                             f".onnx export?).") from None
        if self.net.empty():
            raise InputError(f"{self.path}: not an ONNX model OpenCV can load.")
        self.name = f"yolox:{self.path.name}"
        size = int(self.config.input_size)
        self._grid, self._stride = yolox_grids(size)

    def preprocess(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """(1, 3, S, S) float32 blob and the letterbox ratio r (model px = image px * r)."""
        size = int(self.config.input_size)
        h, w = image.shape[:2]
        r = min(size / h, size / w)
        nw, nh = max(1, int(round(w * r))), max(1, int(round(h * r)))
        canvas = np.full((size, size, 3), 114, np.uint8)
        interp = cv2.INTER_LINEAR
        canvas[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=interp)
        blob = canvas.transpose(2, 0, 1)[None].astype(np.float32)
        return np.ascontiguousarray(blob), r

    def decode(self, out: np.ndarray, r: float, width: int, height: int) -> Detections:
        out = np.asarray(out, np.float32).reshape(-1, out.shape[-1])
        if len(out) != len(self._grid) or out.shape[1] < 6:
            raise InputError(
                f"{self.path}: output has shape {out.shape}, not ({len(self._grid)}, 5 + classes) "
                f"as a raw YOLOX export at input {self.config.input_size} has (set input_size, or "
                f"export without --decode_in_inference).")
        scores = out[:, 4] * out[:, 5 + PERSON_CLASS]
        sel = np.nonzero(scores >= self.config.score_threshold)[0]
        if sel.size == 0:
            return Detections()
        o, g, s = out[sel], self._grid[sel], self._stride[sel]
        cx = (o[:, 0] + g[:, 0]) * s
        cy = (o[:, 1] + g[:, 1]) * s
        bw = np.exp(np.clip(o[:, 2], -20, 20)) * s
        bh = np.exp(np.clip(o[:, 3], -20, 20)) * s
        boxes = np.stack([cx - bw / 2, cy - bh / 2, bw, bh], axis=1) / r
        boxes = clip_boxes(boxes, width, height)
        sc = scores[sel]
        keep = nms(boxes, sc, self.config.nms_iou)[: self.config.max_detections]
        return make_detections(boxes[keep], sc[keep], self.config.min_box_size)

    def __call__(self, image_bgr: np.ndarray) -> Detections:
        image = check_image(image_bgr)
        blob, r = self.preprocess(image)
        self.net.setInput(blob)
        try:
            out = self.net.forward()
        except cv2.error as e:
            raise InputError(f"{self.path}: OpenCV could not run this model on a "
                             f"{self.config.input_size}x{self.config.input_size} input ({e.err}).") from None
        return self.decode(out, r, image.shape[1], image.shape[0])
