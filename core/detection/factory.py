"""`create_detector`: a person detector from its name (the names are core.catalogue's)."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from .. import catalogue
from ..errors import InputError
from .base import PersonDetector


def create_detector(spec: str, device: str = "cpu", **cfg: Any) -> PersonDetector:
    """A detector from its command-line spec.

    * ``auto``: YOLOX-Nano shipped in resources/models (run with onnxruntime) when that file
      is there, else MediaPipe's BlazePose detector. On COCO128 (benchmarks/detector_recall.py)
      YOLOX finds 0.55 of the people (AP50 0.53) against BlazePose's 0.19 (AP50 0.16), in
      about a third of BlazePose's time per frame (27 vs 77 ms, 2 busy CPU cores);
    * ``blazepose``: MediaPipe's pose detector (shipped with mediapipe);
    * ``hog``: OpenCV's HOG people detector (no model file at all);
    * ``yolox-nano``: YOLOX-Nano, the shipped resources/models/yolox_nano_416x416.onnx, or
      (when that is missing) downloaded once into the model cache;
    * ``onnx:PATH`` or a path ending in ``.onnx``: a YOLOX ONNX export at PATH.

    `cfg` are the detector's options (its config dataclass fields, e.g. score_threshold;
    for YOLOX also runtime="onnxruntime" | "opencv"). The detector's `description` says
    which one ``auto`` chose. `device` ("cpu", "cuda", "cuda:N": the pose model's) is where
    YOLOX may run (YoloxConfig.device); the other detectors run on the CPU.
    """
    if not isinstance(spec, (str, Path)) or not str(spec).strip():
        raise catalogue.unknown("detector", "")
    raw = str(spec).strip()
    entry = catalogue.find("detector", raw)
    key = entry.name if entry is not None else catalogue.normalise_name(raw)
    if key == "auto":
        from .yolox import shipped_yolox_nano
        shipped = shipped_yolox_nano()
        if shipped is not None:
            from .yolox import YoloxDetector
            if "runtime" not in cfg and importlib.util.find_spec("onnxruntime") is None:
                cfg = {**cfg, "runtime": "opencv"}
            det: PersonDetector = YoloxDetector(shipped, **_on(device, cfg))
            det.description = f"auto: shipped YOLOX-Nano, {det.description}"
            return det
        from .blazepose import BlazePoseDetector
        det = BlazePoseDetector(**cfg)
        det.description = (f"auto: {det.name} (MediaPipe's BlazePose detector; no "
                           f"resources/models/yolox_nano_416x416.onnx)")
        return det
    if key == "blazepose":
        from .blazepose import BlazePoseDetector
        return BlazePoseDetector(**cfg)
    if key == "hog":
        from .hog import HogDetector
        return HogDetector(**cfg)
    if key == "yolox-nano":
        from .yolox import YoloxDetector, yolox_nano_path
        fetch_opts = {k: cfg.pop(k) for k in ("base_url", "progress") if k in cfg}
        return YoloxDetector(yolox_nano_path(**fetch_opts), **_on(device, cfg))
    if key.startswith("onnx:") or key.endswith(".onnx"):
        path = raw[5:] if key.startswith("onnx:") else raw
        if not path.strip():
            raise InputError("The detector spec 'onnx:' names no file; write onnx:PATH/TO/model.onnx.")
        from .yolox import YoloxDetector
        return YoloxDetector(Path(path).expanduser(), **_on(device, cfg))
    raise catalogue.unknown("detector", raw)


def _on(device: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """YOLOX's options with the device it may use (an explicit device option wins)."""
    return {"device": str(device), **cfg} if str(device) != "cpu" else cfg
