"""Reading inputs and writing outputs safely (clear errors, atomic writes)."""
from __future__ import annotations

import json
import math
import os
import secrets
import sys
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .errors import InputError

_UMASK: int | None = None
_UMASK_LOCK = threading.Lock()


def log(message: str) -> None:
    """Progress and status go to stderr so stdout stays clean for results."""
    print(message, file=sys.stderr, flush=True)


def file_mode() -> int:
    """The mode a plainly created file gets here (0o666 less the umask: usually 0o644), so
    every output has the same permissions however it was written (mkstemp makes 0o600)."""
    global _UMASK
    with _UMASK_LOCK:
        if _UMASK is None:
            _UMASK = os.umask(0o022)
            os.umask(_UMASK)
    return 0o666 & ~_UMASK


def part_path(path: str | os.PathLike) -> Path:
    """A temporary name beside `path` that no other run or process can pick:
    `<name>.<pid>-<random>.part` (the `.part` suffix marks it unfinished)."""
    p = Path(path)
    return p.with_name(f"{p.name}.{os.getpid()}-{secrets.token_hex(4)}.part")


def create_part_file(path: str | os.PathLike) -> tuple[Path, int]:
    """Create (exclusively) a fresh temporary file for `path`: (its path, an fd)."""
    for _ in range(8):
        part = part_path(path)
        try:
            return part, os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
    raise InputError(f"{path}: could not create a temporary file beside it")


def display_path(path: str | os.PathLike) -> str:
    """How a path is recorded in outputs: relative to the current folder when it is under
    it, a package resource relative to its site-packages, else exactly as given (never an
    absolute path into somebody's virtualenv)."""
    text = str(path)
    p = Path(text)
    if not p.is_absolute():
        return text
    parts = p.parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            return "/".join(parts[len(parts) - parts[::-1].index(marker):])
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        pass
    project = Path(__file__).resolve().parents[1]
    try:
        return str(p.relative_to(project))
    except ValueError:
        return text


def read_image(path: str | os.PathLike) -> np.ndarray:
    """BGR uint8 image, EXIF orientation applied. InputError for missing/unreadable files."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a folder, not an image (main.py annotate FOLDER --out DIR "
                         f"poses every image in it)")
    data = np.fromfile(str(p), dtype=np.uint8)     # fromfile + imdecode: any path encoding
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise InputError(f"{p}: not an image OpenCV can decode (empty, corrupt or another "
                         f"format)")
    return img


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write to a temporary file beside the target, then rename: never a half file. The
    file gets the usual mode (0o666 less the umask), like any other output."""
    p = Path(path)
    _require_folder(p)
    try:
        tmp, fd = create_part_file(p)
    except OSError as e:
        raise InputError(f"{p}: could not write ({e.strerror or e})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, p)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"{p}: could not write ({e.strerror or e})") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def finite_json(obj: Any) -> Any:
    """`obj` with every NaN/inf float replaced by None: strict JSON (no NaN tokens)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    text = json.dumps(finite_json(obj), indent=2, allow_nan=False)
    return atomic_write_bytes(path, (text + "\n").encode())


def _require_folder(p: Path) -> None:
    if not p.parent.exists():
        raise InputError(f"{p}: the folder {p.parent} does not exist")


def check_output_path(path: str | os.PathLike, image: bool = False) -> None:
    """Fail before any work on an output that cannot be written: its folder missing, or
    (image=True) an extension OpenCV has no encoder for."""
    p = Path(path)
    _require_folder(p)
    if p.is_dir():
        raise InputError(f"{p}: is a folder; give a file name")
    if image:
        _encode_image(p, np.zeros((2, 2, 3), np.uint8))


def _encode_image(path: Path, image: np.ndarray) -> bytes:
    ext = path.suffix or ".png"
    try:
        ok, buf = cv2.imencode(ext, image)
    except cv2.error:
        ok = False
    if not ok:
        raise InputError(f"{path}: cannot write an image with extension {ext!r} (use .png or "
                         f".jpg)")
    return buf.tobytes()


def atomic_write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    return atomic_write_bytes(path, _encode_image(Path(path), image))


__all__ = ["atomic_write_bytes", "atomic_write_image", "atomic_write_json", "check_output_path",
           "create_part_file", "display_path", "file_mode", "finite_json", "part_path",
           "read_image"]
