"""YOLOX person detector: an ONNX export run with onnxruntime (or OpenCV's DNN), people only.

Runtime: ``YoloxConfig.runtime`` is "onnxruntime" (default: CPUExecutionProvider,
`num_threads` intra-op threads, core.threads.detector_threads() by default, idle threads
do not busy-wait) or "opencv" (cv2.dnn, kept so that benchmarks/detector_recall.py can compare the two).

Model: the ``yolox-nano`` spec (and ``auto``) use YOLOX-Nano shipped in
resources/models/yolox_nano_416x416.onnx (Megvii's COCO weights, Apache-2.0; see
resources/models/README.md); only when that file is missing is Megvii's own export
downloaded once into the model cache (`fetch_yolox_nano`).

I/O (Megvii's tools/export_onnx.py without --decode_in_inference, YOLOX >= 0.1.1rc0; see
resources/models/README.md): input `images` float32 (1, 3, S, S), BGR, 0..255, no
normalisation, the frame letterboxed to the TOP-LEFT of an S x S canvas filled with 114;
output (1, A, 5 + C) raw rows [tx, ty, tw, th, obj, p_0 .. p_C-1] (obj and p already
sigmoided) on grids of strides 8, 16, 32, row-major; decode cx = (tx + gx) * s,
cy = (ty + gy) * s, w = exp(tw) * s, h = exp(th) * s; score = obj * p_person (class 0);
divide by the letterbox ratio; NMS.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from core.errors import DownloadError, InputError
from core.models import zoo
from core.onnx_session import first_line, onnx_session
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

# YOLOX-Nano shipped with the repository (resources/models/README.md): Megvii's official
# COCO yolox_nano.pth exported to ONNX (Kazuhito00/YOLOX-ONNX-TFLite-Sample), Apache-2.0.
ROOT = Path(__file__).resolve().parents[2]
SHIPPED_YOLOX_NANO = ROOT / "resources" / "models" / "yolox_nano_416x416.onnx"
SHIPPED_YOLOX_NANO_SHA256 = "695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14"

Runtime = Literal["onnxruntime", "opencv"]
RUNTIMES: tuple[str, ...] = ("onnxruntime", "opencv")


def default_threads() -> int:
    """onnxruntime intra-op threads (core.threads.detector_threads): 2 up to 8 CPUs, a
    quarter of them beyond, at most 4; the detector shares the CPU with the pose model and
    the video decoder."""
    from ..threads import detector_threads
    return detector_threads()


def shipped_yolox_nano() -> Path | None:
    """resources/models/yolox_nano_416x416.onnx when it is there, else None."""
    return SHIPPED_YOLOX_NANO if SHIPPED_YOLOX_NANO.is_file() else None


def yolox_nano_path(*, base_url: str | None = None, progress: bool = True) -> Path:
    """The YOLOX-Nano model to use: the shipped file (offline, no download) when present,
    else the cached download (`fetch_yolox_nano`)."""
    shipped = shipped_yolox_nano()
    if shipped is not None:
        return shipped
    return fetch_yolox_nano(base_url=base_url, progress=progress)


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
    runtime: Runtime = "onnxruntime"  # or "opencv" (cv2.dnn)
    num_threads: int = field(default_factory=default_threads)  # onnxruntime intra-op threads
    spin: bool = False              # let idle onnxruntime threads busy-wait (off: they would
                                    # steal the CPU from the pose model on a 2-core machine)
    tile_min_side: int = 960        # detect_tiled: frames whose longer side is at least this
                                    # (and 1.3x the shorter) are also cut into square tiles
    tile_containment: float = 0.8   # merging tiles: a box this much inside another is one person
    # "cpu", or "cuda" / "cuda:N" (the engine passes the pose model's device): onnxruntime's
    # CUDA provider on that GPU when this onnxruntime has it (pip install onnxruntime-gpu),
    # else the CPU, and the description says so
    device: str = "cpu"

    def __post_init__(self) -> None:
        runtime = str(self.runtime).strip().lower()
        runtime = {"ort": "onnxruntime", "cv2": "opencv", "opencv-dnn": "opencv"}.get(runtime, runtime)
        if runtime not in RUNTIMES:
            raise InputError(f"runtime must be one of {', '.join(RUNTIMES)}, not {self.runtime!r}.")
        self.runtime = runtime  # type: ignore[assignment]
        if int(self.num_threads) < 1:
            raise InputError(f"num_threads must be at least 1, not {self.num_threads}.")
        if not 0.0 <= float(self.score_threshold) < 1.0:
            raise InputError(f"score_threshold must be in [0, 1), not {self.score_threshold}.")
        if int(self.input_size) % 32 or int(self.input_size) < 32:
            raise InputError(f"input_size must be a positive multiple of 32, not {self.input_size}.")
        self.device = str(self.device).strip().lower()
        if cuda_index(self.device) is None and self.device != "cpu":
            raise InputError(f"device must be cpu, cuda or cuda:N, not {self.device!r}.")


def cuda_index(device: str) -> int | None:
    """The GPU index of "cuda" / "cuda:N"; None for anything else."""
    name, _, index = str(device).partition(":")
    if name != "cuda" or (index and not index.isdigit()):
        return None
    return int(index or 0)


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
    """YOLOX (ONNX through onnxruntime, or cv2.dnn with runtime="opencv"), people only."""

    name = "yolox"

    def __init__(self, path: str | Path, config: YoloxConfig | None = None, **cfg) -> None:
        if config is not None and cfg:
            raise InputError("Give the YOLOX detector either a config or options, not both.")
        self.config = config if config is not None else config_from_kwargs(YoloxConfig, "yolox", cfg)
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such ONNX model file.")
        self.session = self.net = None
        if self.config.runtime == "onnxruntime":
            self._load_onnxruntime()
        else:
            self._load_opencv()
        self.name = f"yolox:{self.path.name}"
        size = int(self.config.input_size)
        self._grid, self._stride = yolox_grids(size)
        threads = f", {self.config.num_threads} threads" if self.config.runtime == "onnxruntime" else ""
        self.description = f"YOLOX {self.path.name} via {self.config.runtime} ({size}x{size}{threads})"
        if self.config.device != "cpu":
            self.description += (
                f", on {self.config.device}" if self.on_gpu else
                ", on the CPU (OpenCV's DNN runtime)" if self.session is None else
                ", on the CPU (this onnxruntime has no CUDA provider: pip install "
                "onnxruntime-gpu to run the detector on the GPU)")

    @property
    def on_gpu(self) -> bool:
        """Whether onnxruntime runs the detector on a GPU."""
        return self.session is not None and \
            self.session.get_providers()[0] == "CUDAExecutionProvider"

    def _load_onnxruntime(self) -> None:
        self.session = onnx_session(self.path, self.config.num_threads, spin=self.config.spin,
                                    cuda_device=cuda_index(self.config.device),
                                    what="the YOLOX person detector (a YOLOX .onnx export)")
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        shape = list(inputs[0].shape) if len(inputs) == 1 else []
        if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3) \
                or len(outputs) < 1 or "float" not in inputs[0].type:
            raise InputError(
                f"{self.path}: not a YOLOX model (inputs {[(i.name, i.shape) for i in inputs]}; "
                f"expected one float [1, 3, S, S] input).")
        h, w = shape[2], shape[3]
        if isinstance(h, int) and isinstance(w, int) and h == w and h != int(self.config.input_size):
            if h % 32 or h < 32:
                raise InputError(f"{self.path}: input size {h} is not a multiple of 32.")
            self.config = dataclasses.replace(self.config, input_size=h)  # the export's own size
        self._input_name = inputs[0].name

    def _load_opencv(self) -> None:
        try:
            self.net = cv2.dnn.readNetFromONNX(str(self.path))
        except cv2.error:
            raise InputError(f"{self.path}: not an ONNX model OpenCV can load (is it a YOLOX "
                             f".onnx export?).") from None
        if self.net.empty():
            raise InputError(f"{self.path}: not an ONNX model OpenCV can load.")

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
        size = self.config.input_size
        if self.session is not None:
            try:
                out = self.session.run(None, {self._input_name: blob})[0]
            except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
                raise InputError(f"{self.path}: onnxruntime could not run this model on a "
                                 f"{size}x{size} input ({first_line(e)}).") from None
        else:
            self.net.setInput(blob)
            try:
                out = self.net.forward()
            except cv2.error as e:
                raise InputError(f"{self.path}: OpenCV could not run this model on a "
                                 f"{size}x{size} input ({e.err}).") from None
        return self.decode(out, r, image.shape[1], image.shape[0])

    def tiles(self, width: int, height: int) -> list[tuple[int, int, int, int]]:
        """The overlapping tiles (x, y, w, h) of ``detect_tiled``: squares with the frame's
        shorter side, spread evenly along the longer one; none for small or squarish frames."""
        long_side, short_side = max(width, height), min(width, height)
        if long_side < self.config.tile_min_side or long_side < 1.3 * short_side:
            return []
        n = int(np.ceil(long_side / short_side))
        starts = np.round(np.linspace(0, long_side - short_side, n)).astype(int)
        if width >= height:
            return [(int(s), 0, short_side, height) for s in starts]
        return [(0, int(s), width, short_side) for s in starts]

    def detect_tiled(self, image_bgr: np.ndarray, whole: Detections | None = None
                     ) -> Detections:
        """The whole frame and its tiles (``tiles``), merged: for when nobody is known to be
        there yet (a still frame, a video's first frame). The letterbox shrinks a wide HD frame
        4.2x, a tile only 2.4x, so small or backlit people get found: on every 20th frame of
        the Sports2D clip the whole frame gave the backlit jumper on the roof in 4 of 12
        frames, whole + tiles in 10 (and nothing else new). Three detector runs, not one.
        `whole`: this detector's plain call on the image, when it has already run."""
        image = check_image(image_bgr)
        h, w = image.shape[:2]
        regions = self.tiles(w, h)
        if whole is None:
            whole = self(image)
        if not regions:
            return whole
        boxes, scores = [whole.boxes], [whole.scores]
        for x, y, tw, th in regions:
            part = self(image[y:y + th, x:x + tw])
            boxes.append(part.boxes + np.array([x, y, 0, 0], np.float32))
            scores.append(part.scores)
        b, s = np.concatenate(boxes), np.concatenate(scores)
        keep = nms(b, s, self.config.nms_iou, self.config.tile_containment)
        return make_detections(b[keep][: self.config.max_detections],
                               s[keep][: self.config.max_detections], self.config.min_box_size)
