"""Choose a pose model by name: our TransPose weights, or MediaPipe BlazePose.

    backend, description = create_pose_backend("auto")
    estimate = backend(image_bgr, boxes)          # PoseEstimate, 17 COCO keypoints

Specs (case-insensitive names):

* ``auto``: official TransPose weights the user has already downloaded (the most accurate
  one, never a download), else our TransPose-M shipped in resources/models; MediaPipe
  BlazePose only when neither exists (a source checkout without resources/models), and
  then the description says so;
* ``mediapipe`` / ``blazepose`` (also ``mediapipe-blazepose-full``): BlazePose full, from
  the installed mediapipe wheel; a ``.tflite`` path: another BlazePose landmark model;
* ``movenet`` (also ``movenet-thunder``): Google's MoveNet Thunder ONNX model
  (movenet_thunder.onnx from resources/models or ../shared/models), run with onnxruntime;
  a ``.onnx`` path: that MoveNet SinglePose model (core/pose/movenet.py); ``movenet-box``:
  the same on each box alone, black around it (MoveNetConfig.context "box");
* a TransPose model-zoo name (``tp-r-a3``, ``tp-r-a4``, ``tp-h-s``, ``tp-h-a4``,
  ``tp-h-a6``; downloaded on first use) or a checkpoint path (``.pth``): TransPose or
  TFPose, recognised from the file.

The description always names the backend, the weights and where it runs, e.g.
"TransPose tp-r-a3 (resources/models/tp_r_a3.pth, shipped) on cpu" or
"MediaPipe BlazePose full (pose_landmark_full.tflite from mediapipe 0.10.21) on cpu via
LiteRT; no shipped TransPose weights found in resources/models".
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .. import catalogue, cpu
from ..errors import InputError, StudioError
from ..types import PoseBackend


_shown = catalogue.shown_path


def _mediapipe_version() -> str:
    try:
        from importlib.metadata import version
        return version("mediapipe")
    except Exception:  # noqa: BLE001 - metadata is only used in the description
        return "?"


def _blazepose(model_path: str | None, device: str, color: str, why: str = ""
               ) -> tuple[PoseBackend, str]:
    from .blazepose import BlazePoseConfig, BlazePoseEstimator
    if device not in ("auto", "cpu"):
        note = f"; device {device!r} does not apply, LiteRT runs it on the CPU"
    else:
        note = ""
    backend = BlazePoseEstimator(BlazePoseConfig(color=color, model_path=model_path))
    if model_path is None:
        weights = f"pose_landmark_full.tflite from mediapipe {_mediapipe_version()}"
    else:
        weights = _shown(model_path)
    desc = f"MediaPipe BlazePose full ({weights}) on cpu via LiteRT{note}"
    if why:
        desc += f"; {why}"
    return backend, desc


def _movenet(model_path: str | None, device: str, color: str,
             context: str = "image") -> tuple[PoseBackend, str]:
    from .movenet import MoveNetConfig, MoveNetEstimator, default_model_path
    if model_path is None:
        found = default_model_path()
        if found is None:
            raise InputError("MoveNet: movenet_thunder.onnx is neither in resources/models nor "
                             "in ../shared/models; pass the .onnx file's path")
        model_path = str(found)
    elif not Path(model_path).is_file():
        raise InputError(f"{model_path}: no such MoveNet .onnx model file")
    backend = MoveNetEstimator(model_path, config=MoveNetConfig(context=context), color=color)
    note = f"; device {device!r} does not apply, it runs on the CPU" \
        if device not in ("auto", "cpu") else ""
    alone = ", each box alone" if context == "box" else ""
    return backend, (f"MoveNet {backend.variant} ({_shown(model_path)}{alone}) on cpu via "
                     f"onnxruntime{note}")


def _transpose(weights: str | os.PathLike, device: str, how: str, *, flip_test: bool,
               refine: str, precision: str, color: str, progress: bool, cuda_graphs: bool,
               stem_int8: str | None = None) -> tuple[PoseBackend, str]:
    from .estimator import EstimatorConfig, TopDownEstimator
    config = EstimatorConfig(device=device, precision=precision, flip_test=flip_test,
                             refine=refine, color=color, cuda_graphs=cuda_graphs,
                             stem_int8=stem_int8)
    backend = TopDownEstimator.from_weights(weights, config, progress=progress)
    where = _shown(weights) + (f", {how}" if how else "")
    how_run = ("" if flip_test else ", without flip test") + \
        (", CUDA graphs" if cuda_graphs else "")
    if stem_int8:
        how_run += (f", int8 stem ({_shown(stem_int8)})" if backend.device.type == "cpu" else
                    f"; the int8 stem is for the CPU, the float32 stem runs on "
                    f"{backend.device}")
        if backend.device.type == "cpu" and cpu.int8_saturates():
            how_run += f"; {cpu.INT8_SATURATION_NOTE} than the float32 stem's"
    return backend, f"{backend.kind} {backend.variant} ({where}) on {backend.device}{how_run}"


def create_pose_backend(spec: str = "auto", device: str = "auto", *, flip_test: bool = True,
                        refine: str = "dark", precision: str = "auto", color: str = "bgr",
                        progress: bool = True, models_dir: str | os.PathLike | None = None,
                        cuda_graphs: bool = False) -> tuple[PoseBackend, str]:
    """-> (backend, description); see the module docstring for the specs.

    device/flip_test/refine/precision/cuda_graphs apply to TransPose (BlazePose runs on
    the CPU; cuda_graphs needs a CUDA device: EstimatorConfig.cuda_graphs);
    color is the channel order of the images the backend will get ("bgr" or "rgb").
    models_dir replaces resources/models for ``auto``. Raises StudioError subclasses
    with a message for the user (unknown name, missing or bad weights, no MediaPipe).
    """
    if not isinstance(spec, (str, os.PathLike)) or not str(spec).strip():
        raise InputError("the pose model must be 'auto', 'mediapipe', a TransPose model-zoo "
                         "name or a .pth file, not an empty value")
    if color not in ("bgr", "rgb"):
        raise InputError(f"color must be 'bgr' or 'rgb', not {color!r}")
    tp: dict[str, Any] = dict(flip_test=flip_test, refine=refine, precision=precision,
                              color=color, progress=progress, cuda_graphs=cuda_graphs)
    raw = str(spec).strip()
    entry = catalogue.find("pose", raw)
    if entry is not None:
        if not entry.runnable:
            raise catalogue.not_trained(entry)
        if entry.family == "auto":
            return _auto(device, color, models_dir, tp)
        if entry.family == "blazepose":
            return _blazepose(None, device, color)
        if entry.family == "movenet":
            return _movenet(None, device, color, context=entry.crop_context or "image")
        if entry.source:
            return _transpose(entry.source, device, "shipped", stem_int8=entry.stem_int8 or None,
                              **tp)
        return _transpose(entry.name, device, "model zoo", **tp)

    path = Path(raw).expanduser()
    suffix = raw.lower()
    if suffix.endswith(".onnx"):
        return _movenet(str(path), device, color)
    if suffix.endswith(".tflite"):
        if not path.is_file():
            raise InputError(f"{raw}: no such BlazePose .tflite model file")
        return _blazepose(str(path), device, color)
    if path.exists() or suffix.endswith((".pth", ".pt", ".pth.tar", ".ckpt")):
        return _transpose(path, device, "", **tp)   # load_weights explains a bad/missing file
    raise catalogue.unknown("pose", raw)


def _auto(device: str, color: str, models_dir: str | os.PathLike | None,
          tp: dict[str, Any]) -> tuple[PoseBackend, str]:
    from ..models import zoo
    shipped = _shipped(models_dir)
    folder = _shown(Path(models_dir) if models_dir is not None else catalogue.SHIPPED_MODELS)
    official = zoo.downloaded() if models_dir is None else []
    if official:
        return _transpose(official[0], device, "official, downloaded", **tp)
    if shipped is not None:
        return _transpose(shipped, device, "shipped", **tp)
    try:
        return _blazepose(None, device, color,
                          why=f"no shipped TransPose weights found in {folder}")
    except StudioError as e:
        raise StudioError(
            f"no TransPose weights are shipped in {folder} and MediaPipe BlazePose, the "
            f"fallback, is unavailable: {e}. Pass a TransPose checkpoint (.pth) or a "
            f"model-zoo name (tp-r-a3, downloaded on first use)") from None


def _shipped(models_dir: str | os.PathLike | None) -> Path | None:
    if models_dir is None:
        return catalogue.shipped_weights()
    files = sorted(Path(models_dir).glob("*.pth"))
    return files[0] if files else None
