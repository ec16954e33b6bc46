"""Reading inputs and writing outputs safely (clear errors, atomic writes)."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import InputError


def read_image(path: str | os.PathLike) -> np.ndarray:
    """BGR uint8 image, EXIF orientation applied. InputError for missing/unreadable files."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a folder, not an image")
    data = np.fromfile(str(p), dtype=np.uint8)     # fromfile + imdecode: any path encoding
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise InputError(f"{p}: not an image OpenCV can decode (empty, corrupt or another "
                         f"format)")
    return img


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write to a temporary file beside the target, then rename: never a half file."""
    p = Path(path)
    if not p.parent.exists():
        raise InputError(f"{p}: the folder {p.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, p)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"{p}: could not write ({e.strerror or e})") from None
    return p


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def atomic_write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    ext = Path(path).suffix or ".png"
    ok, buf = cv2.imencode(ext, image)
    if not ok:
        raise InputError(f"{path}: cannot encode an image with extension {ext!r}")
    return atomic_write_bytes(path, buf.tobytes())
