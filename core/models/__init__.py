"""TransPose and TFPose models: build by name or config, load any checkpoint, save our own.

The names below are imported on first use (PEP 562), not with the package: its torch-free
modules (``zoo``: the download cache the YOLOX detector uses too) then do not pull torch
into a MediaPipe or MoveNet run, nor into every command's parser.
"""
from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "LoadedWeights": "checkpoint", "build_network": "checkpoint", "infer_config": "checkpoint",
    "load_weights": "checkpoint", "save_checkpoint": "checkpoint",
    "OFFICIAL_CONFIGS": "config", "TransPoseConfig": "config", "get_config": "config",
    "TFPOSE_CONFIGS": "tfpose", "TFPose": "tfpose", "TFPoseConfig": "tfpose",
    "build_tfpose": "tfpose",
    "TransPose": "transpose", "TransPoseH": "transpose", "TransPoseR": "transpose",
    "build_model": "transpose",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value                 # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
