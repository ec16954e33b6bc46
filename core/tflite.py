"""MediaPipe's pose models (shipped inside the mediapipe 0.10.21 wheel) run with LiteRT.

We decode the raw model outputs ourselves (all people, our own box rules), so we need the
.tflite files and an interpreter, not MediaPipe's single-person graph.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from .errors import StudioError

MEDIAPIPE_MODELS = {
    "pose_detection": "modules/pose_detection/pose_detection.tflite",
    "pose_landmark_full": "modules/pose_landmark/pose_landmark_full.tflite",
}


def mediapipe_model_path(name: str) -> Path:
    """Path of a .tflite model inside the installed mediapipe package (not imported)."""
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise StudioError("mediapipe is not installed; install mediapipe==0.10.21, the last "
                          "release whose wheel ships the pose models")
    path = Path(list(spec.submodule_search_locations)[0]) / MEDIAPIPE_MODELS[name]
    if not path.exists():
        raise StudioError(f"{path}: not found; mediapipe==0.10.21 ships it (newer wheels do "
                          f"not include pose models)")
    return path


def load_interpreter(path: str | Path, num_threads: int = 2):
    """A ready LiteRT interpreter (tensors allocated)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise StudioError("ai-edge-litert is not installed (pip install ai-edge-litert); it "
                          "runs MediaPipe's .tflite pose models") from None
    try:
        interp = Interpreter(model_path=str(path), num_threads=num_threads)
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise StudioError(f"{path}: not a loadable TFLite model ({e})") from None
    return interp
