"""One way to open an ONNX model on the CPU with onnxruntime (YOLOX, MoveNet, the stem).

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
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise InputError(f"{path}: not a loadable ONNX model for {what} "
                         f"({first_line(e)})") from None
