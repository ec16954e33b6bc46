"""One way to open an ONNX model with onnxruntime (YOLOX, MoveNet, the stem): on the CPU,
or for YOLOX on a GPU when this onnxruntime has the CUDA provider.

The options every model here wants: a fixed number of intra-op threads, no inter-op
parallelism, quiet logging, and idle threads that sleep rather than spin (a spinning
thread takes a core from the other pipeline stages). Errors name the file.
"""
from __future__ import annotations

import os
from typing import Any

from .errors import InputError, StudioError


def first_line(error: BaseException) -> str:
    """An exception's first line (onnxruntime's messages run to many lines)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def cpu_session(path: str | os.PathLike, threads: int, *, spin: bool = False,
                what: str = "an ONNX model") -> Any:
    """An onnxruntime InferenceSession on the CPU. `what` says what the file should be, for
    the error messages ("the YOLOX detector", ...). StudioError when onnxruntime is
    missing, InputError when the file does not load."""
    return onnx_session(path, threads, spin=spin, what=what)


def cuda_provider_available() -> bool:
    """Whether this onnxruntime can run on an NVIDIA GPU (the onnxruntime-gpu package)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return False
    return "CUDAExecutionProvider" in ort.get_available_providers()


def onnx_session(path: str | os.PathLike, threads: int, *, spin: bool = False,
                 what: str = "an ONNX model", cuda_device: int | None = None) -> Any:
    """`cpu_session`, or with `cuda_device` (a GPU index) onnxruntime's CUDA provider on
    that GPU first, when this onnxruntime has it (see `cuda_provider_available`; else the
    CPU: the caller says so). session.get_providers()[0] is the one that runs it."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise StudioError(f"the onnxruntime package is not installed (pip install "
                          f"onnxruntime); it runs {what}") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        providers: list[Any] = ["CPUExecutionProvider"]
        if cuda_device is not None and cuda_provider_available():
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(cuda_device)}))
        return ort.InferenceSession(str(path), opts, providers=providers)
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise InputError(f"{path}: not a loadable ONNX model for {what} "
                         f"({first_line(e)})") from None
