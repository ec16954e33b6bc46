"""CSV, JSON and overlay-video sinks (the formats are documented in docs/formats.md)."""
from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..io_utils import create_part_file, part_path
from ..keypoints import COCO_KEYPOINT_NAMES, COCO_SKELETON
from ..types import PoseFrame

SCHEMA_VERSION = 1
CSV_HEADER = ("frame", "time_s", "track_id", "keypoint", "x", "y", "score")


@dataclass(frozen=True)
class SourceInfo:
    path: str
    width: int
    height: int
    fps: float | None
    frame_count: int | None
    rotation: int = 0
    # Only in the JSON when not empty: frames that could not be read (image folders: a
    # corrupt image is skipped, the rest kept) and how a broken timeline was repaired.
    skipped_frames: tuple = ()
    timestamps: dict | None = None
    # why reading stopped before the end the file announces (a cut download), else None
    ended_early: str | None = None
    # an image folder's files in frame order (frame i is files[i]); () for a video
    files: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if not self.skipped_frames:
            d.pop("skipped_frames")
        else:
            d["skipped_frames"] = [dict(f) for f in self.skipped_frames]
        for optional in ("timestamps", "ended_early"):
            if d[optional] is None:
                d.pop(optional)
        if self.files:
            d["files"] = list(self.files)
        else:
            d.pop("files")
        return d


@dataclass(frozen=True)
class ModelInfo:
    name: str
    weights: str
    detector: str
    smoothing: str


@dataclass(frozen=True)
class ExportMetadata:
    source: SourceInfo
    model: ModelInfo


def _num(v: float, digits: int) -> float | None:
    """JSON number rounded, or None for NaN/inf (missing)."""
    v = float(v)
    return round(v, digits) if math.isfinite(v) else None


def _csv_num(v: float, digits: int) -> str:
    v = float(v)
    return f"{v:.{digits}f}" if math.isfinite(v) else ""


class _AtomicTextFile:
    """A text file written as `<name>.<pid>-<random>.part` (a name no other run picks) and
    renamed on commit; removed on abort."""

    def __init__(self, path: str | os.PathLike, newline: str | None = None) -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise InputError(f"{self.path}: the output folder {self.path.parent} does not exist")
        try:
            self.part, fd = create_part_file(self.path)
            self.file = open(fd, "w", encoding="utf-8", newline=newline)
        except OSError as e:
            raise InputError(f"{self.path}: cannot write here ({e.strerror or e})") from None

    def write(self, text: str) -> None:
        try:
            self.file.write(text)
        except OSError as e:
            self.abort()
            raise InputError(f"{self.path}: writing failed ({e.strerror or e}); the partial "
                             f"file was removed") from None

    def commit(self) -> Path:
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            os.replace(self.part, self.path)
        except OSError as e:
            self.abort()
            raise InputError(f"{self.path}: writing failed ({e.strerror or e}); the partial "
                             f"file was removed") from None
        return self.path

    def abort(self) -> None:
        try:
            self.file.close()
        except OSError:
            pass
        self.part.unlink(missing_ok=True)


class PoseSink:
    """Consumes PoseFrames in order; `close()` completes the output, `abort()` discards it."""

    path: Path

    def write(self, frame: PoseFrame, image: np.ndarray | None = None) -> None:
        raise NotImplementedError

    def close(self) -> Path:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> "PoseSink":
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class KeypointCsvWriter(PoseSink):
    """Long format: one row per frame x track x keypoint; missing values are empty."""

    def __init__(self, path: str | os.PathLike, digits: int = 2) -> None:
        self._out = _AtomicTextFile(path, newline="")
        self.path = self._out.path
        self.digits = digits
        self._buf = io.StringIO()
        self._csv = csv.writer(self._buf, lineterminator="\n")
        self._csv.writerow(CSV_HEADER)
        self._flush()

    def _flush(self) -> None:
        self._out.write(self._buf.getvalue())
        self._buf.seek(0)
        self._buf.truncate()

    def write(self, frame: PoseFrame, image: np.ndarray | None = None) -> None:
        t = f"{frame.time_s:.6f}"
        for person in frame.people:
            for name, (x, y), s in zip(COCO_KEYPOINT_NAMES, person.keypoints,
                                       person.keypoint_scores):
                self._csv.writerow((frame.index, t, person.track_id, name,
                                    _csv_num(x, self.digits), _csv_num(y, self.digits),
                                    _csv_num(s, 4)))
        self._flush()

    def close(self) -> Path:
        return self._out.commit()

    def abort(self) -> None:
        self._out.abort()


class KeypointJsonWriter(PoseSink):
    """The JSON document of docs/formats.md. Frames are streamed to a temporary file as they
    come; `close()` writes the head (with what is only known at the end: the number of
    frames written, skipped frames, a repaired timeline; see `update_source`) and then the
    frames into the output's own temporary file, and renames it."""

    def __init__(self, path: str | os.PathLike, meta: ExportMetadata, digits: int = 2) -> None:
        self._body = _AtomicTextFile(path)
        self.path = self._body.path
        self.meta = meta
        self.digits = digits
        self._first = True
        self._count = 0

    def update_source(self, **changes: Any) -> None:
        """Change source fields before `close()` (frame_count, skipped_frames, timestamps,
        ended_early)."""
        import dataclasses
        self.meta = dataclasses.replace(
            self.meta, source=dataclasses.replace(self.meta.source, **changes))

    def write(self, frame: PoseFrame, image: np.ndarray | None = None) -> None:
        d = self.digits
        people = [{
            "track_id": int(p.track_id),
            "box": [_num(v, d) for v in p.box],
            "score": _num(p.score, 4),
            "keypoints": [[_num(x, d) if math.isfinite(s) else None,
                           _num(y, d) if math.isfinite(s) else None, _num(s, 4)]
                          for (x, y), s in zip(p.keypoints, p.keypoint_scores)],
            **({"world": [[_num(v, 4) if math.isfinite(v) else None for v in xyz]
                          for xyz in p.world]} if p.world is not None else {}),
        } for p in frame.people]
        item: dict[str, Any] = {"frame": int(frame.index), "time_s": _num(frame.time_s, 6)}
        src = self.meta.source
        if tuple(frame.size_hw) != (src.height, src.width):
            # an image folder of photos: this frame's keypoints are in its own pixels
            item.update(width=int(frame.size_hw[1]), height=int(frame.size_hw[0]))
        item["people"] = people
        self._body.write(("\n  " if self._first else ",\n  ") +
                         json.dumps(item, separators=(",", ":"), allow_nan=False))
        self._first = False
        self._count += 1

    def close(self) -> Path:
        import shutil
        try:
            self._body.file.flush()
            self._body.file.close()
        except OSError as e:
            self.abort()
            raise InputError(f"{self.path}: writing failed ({e.strerror or e}); the partial "
                             f"file was removed") from None
        out = _AtomicTextFile(self.path)
        try:
            out.write(json_head(self.meta) + ',\n "frames": [')
            with open(self._body.part, encoding="utf-8") as body:
                shutil.copyfileobj(body, out.file, 1 << 20)
            out.write("\n ]\n}\n")
            path = out.commit()
        except OSError as e:
            out.abort()
            raise InputError(f"{self.path}: writing failed ({e.strerror or e}); the partial "
                             f"file was removed") from None
        except BaseException:
            out.abort()
            raise
        finally:
            self._body.part.unlink(missing_ok=True)
        return path

    def abort(self) -> None:
        self._body.abort()


def json_head_fields(meta: ExportMetadata) -> dict:
    """The fields every keypoint JSON starts with (schema, source, model, names, skeleton)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "source": meta.source.to_dict(),
        "model": asdict(meta.model),
        "keypoint_names": list(COCO_KEYPOINT_NAMES),
        "skeleton": [list(p) for p in COCO_SKELETON],
    }


def json_head(meta: ExportMetadata) -> str:
    """The document's head, without its closing brace (the frames follow)."""
    return json.dumps(json_head_fields(meta), indent=1, allow_nan=False)[:-2]


def letterbox(image: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """`image` scaled to fit inside `size_hw`, its aspect kept, centred on black (a frame of
    another size than the video's: an image folder of photos)."""
    import cv2
    h, w = size_hw
    scale = min(h / image.shape[0], w / image.shape[1])
    sh, sw = max(1, round(image.shape[0] * scale)), max(1, round(image.shape[1] * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out = np.zeros((h, w, 3), np.uint8)
    y, x = (h - sh) // 2, (w - sw) // 2
    out[y:y + sh, x:x + sw] = cv2.resize(image, (sw, sh), interpolation=interpolation)
    return out


class OverlayVideoWriter(PoseSink):
    """H.264 MP4 of the frames with skeletons and track ids, keeping the source's timing.

    Frames are timed by their own timestamps (variable frame rate survives); no audio.
    """

    def __init__(self, path: str | os.PathLike, fps: float | None, size_hw: tuple[int, int],
                 threshold: float = 0.3, crf: int = 20) -> None:
        import av   # imported here: core stays importable where PyAV is missing

        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise InputError(f"{self.path}: the output folder {self.path.parent} does not exist")
        self.part = part_path(self.path)
        self.threshold = threshold
        h, w = size_hw
        self._size_hw = (int(h), int(w))
        self._pad = (h % 2, w % 2)                     # yuv420p needs even sizes
        self._time_base = Fraction(1, 90000)
        self._last_pts = -1
        try:
            self._container = av.open(str(self.part), "w", format="mp4")
            rate = Fraction(fps).limit_denominator(1001) if fps else Fraction(30)
            self._stream = self._container.add_stream("libx264", rate=rate,
                                                      options={"crf": str(crf), "preset": "veryfast"})
            self._stream.width, self._stream.height = w + self._pad[1], h + self._pad[0]
            self._stream.pix_fmt = "yuv420p"
            # the encoder's own time base defaults to 1/rate, which would snap variable
            # frame times onto a fixed grid
            self._stream.codec_context.time_base = self._time_base
            self._stream.time_base = self._time_base
        except (OSError, av.FFmpegError) as e:
            self.part.unlink(missing_ok=True)
            raise InputError(f"{self.path}: cannot create the overlay video ({e})") from None
        self._av = av

    def draw(self, canvas: np.ndarray, frame: PoseFrame,
             labels: list[tuple[int, int, int, int]] | None = None) -> np.ndarray:
        """Draw the frame's people on a copy of its image (subclasses add more); where the
        id labels went is appended to `labels` when given (what is drawn next avoids them)."""
        from ..visualization import draw_pose_frame
        return draw_pose_frame(canvas, frame, self.threshold, labels=labels)

    def write(self, frame: PoseFrame, image: np.ndarray | None = None) -> None:
        img = image if image is not None else frame.image
        if img is None:
            raise ValueError("the overlay writer needs the frame image")
        canvas = self.draw(img.copy(), frame)
        if canvas.shape[:2] != self._size_hw:
            canvas = letterbox(canvas, self._size_hw)
        if any(self._pad):
            canvas = np.pad(canvas, ((0, self._pad[0]), (0, self._pad[1]), (0, 0)))
        vf = self._av.VideoFrame.from_ndarray(canvas, format="bgr24")
        pts = int(round(frame.time_s / self._time_base))
        vf.pts = max(pts, self._last_pts + 1)          # strictly increasing for the muxer
        vf.time_base = self._time_base
        self._last_pts = vf.pts
        self._encode(vf)

    def _encode(self, vf: Any) -> None:
        try:
            for packet in self._stream.encode(vf):
                self._container.mux(packet)
        except (OSError, self._av.FFmpegError) as e:
            self.abort()
            raise InputError(f"{self.path}: writing the video failed ({e}); the partial file "
                             f"was removed") from None

    def close(self) -> Path:
        self._encode(None)
        try:
            self._container.close()
            os.replace(self.part, self.path)
        except (OSError, self._av.FFmpegError) as e:
            self.abort()
            raise InputError(f"{self.path}: finishing the video failed ({e})") from None
        return self.path

    def abort(self) -> None:
        try:
            self._container.close()
        except Exception:   # noqa: BLE001 - already failing; just release the file
            pass
        self.part.unlink(missing_ok=True)
