"""Frame sources: video files (PyAV), image folders, single images and live cameras (OpenCV).

Every source yields `Frame`s (BGR uint8, upright) in order, with honest timestamps:
- video files: presentation time from the stream's pts, so variable frame rate stays right;
- image folders: index / fps (or the index itself as seconds when no fps is given);
- cameras: a monotonic clock, relative to the first frame.

Errors the user can fix (missing/empty/foreign/broken files, no camera) are `InputError`s that
name the file. Nothing from inside FFmpeg or OpenCV reaches the user as a traceback.
"""
from __future__ import annotations

import logging
import math
import re
import sys
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Generator, Iterator

import av
import cv2
import numpy as np

from ..errors import InputError
from ..io_utils import read_image
from ..types import Frame

log = logging.getLogger(__name__)

# PyAV >= 14 names its base error FFmpegError; older releases call it AVError.
AV_ERROR: type[Exception] = getattr(av, "FFmpegError", None) or getattr(av, "AVError")

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp",
                              ".jp2", ".pgm", ".ppm", ".pbm", ".pnm"})

# What a folder argument counts as videos (annotate takes these from a folder; a folder with
# none of them but images is an image sequence).
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg",
                              ".mpeg", ".wmv", ".flv", ".ts", ".mts", ".m2ts", ".3gp", ".ogv",
                              ".mxf", ".dv", ".asf"})

# FFmpeg happily "opens" still images and text files as one-stream videos; they are not.
_NOT_VIDEO_FORMATS = {"image2": "a still image", "tty": "a text file"}


def natural_key(name: str) -> list[Any]:
    """Sort key so that img2 < img10 (digit runs compare as numbers)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _visible_files(folder: Path, extensions: frozenset[str]) -> list[Path]:
    return sorted((f for f in folder.iterdir()
                   if f.is_file() and f.suffix.lower() in extensions
                   and not f.name.startswith(".")), key=lambda f: natural_key(f.name))


def folder_inputs(folder: str | Path, recursive: bool = False) -> list[Path]:
    """The inputs a folder argument stands for: the videos in it (in natural order; with
    `recursive`, those in its subfolders too, folder by folder); a folder with no video
    but images is one image sequence (the folder itself); with `recursive`, so is every
    subfolder that holds images and no video. InputError when there is nothing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder")
    found: list[Path] = []

    def visit(d: Path, top: bool) -> None:
        videos = _visible_files(d, VIDEO_EXTENSIONS)
        if videos:
            found.extend(videos)
        elif _visible_files(d, IMAGE_EXTENSIONS) and (top or recursive):
            found.append(d)
        if recursive:
            subs = sorted((c for c in d.iterdir() if c.is_dir() and not c.name.startswith(".")),
                          key=lambda c: natural_key(c.name))
            for sub in subs:
                visit(sub, False)
    try:
        visit(folder, True)
    except OSError as e:
        raise InputError(f"{folder}: cannot be listed ({e.strerror or e})") from None
    if not found:
        where = " or its subfolders" if recursive else ""
        hint = "" if recursive else " (--recursive looks in subfolders)"
        raise InputError(f"{folder}: contains no videos ({', '.join(sorted(VIDEO_EXTENSIONS))}) "
                         f"and no images{where}{hint}")
    return found


# ----------------------------------------------------------------------------------------------
# The interface


class FrameSource(ABC):
    """An ordered stream of `Frame`s.

    Iterating continues from the current position (after `seek(k)` the next frame is k), so a
    source is a cursor, not a collection. `close()` may be called from another thread to stop a
    blocking read: the reading thread notices after its current read, releases the device/file
    and ends its iteration (it does not get that last frame).
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._stop = threading.Event()
        # Held around every read/seek; close() only releases resources itself when no read is
        # running, otherwise the reader does it (FFmpeg/V4L2 handles are not safe to free
        # under a running read).
        self._io_lock = threading.RLock()
        self._released = False
        self.warnings: list[str] = []
        self.stopped_reason: str | None = None   # why iteration ended early, None if it did not
        # Frames that could not be read and were left out ({"frame", "file", "reason"}), and
        # how a non-increasing timeline was replaced (None when the timestamps were fine).
        self.skipped_frames: list[dict[str, Any]] = []
        self.timestamp_repair: dict[str, Any] | None = None

    # -- description --------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    @abstractmethod
    def fps(self) -> float | None: ...

    @property
    @abstractmethod
    def frame_count(self) -> int | None: ...

    @property
    @abstractmethod
    def size_hw(self) -> tuple[int, int]:
        """(height, width) of the frames as yielded, i.e. after rotation."""

    @property
    def rotation(self) -> int:
        """Clockwise degrees (0/90/180/270) the stored pixels are turned to stand upright: the
        value of the classic "rotate" tag (a phone video shot upright says 90)."""
        return 0

    @property
    def is_live(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    # -- reading ------------------------------------------------------------------------------
    @abstractmethod
    def _read_next(self) -> Frame | None:
        """The next frame, or None at the end. Called with the I/O lock held."""

    @abstractmethod
    def _seek(self, index: int) -> None:
        """Position so that the next `_read_next` returns frame `index`. Lock held."""

    @abstractmethod
    def _release(self) -> None:
        """Free the file/device. Called once, with the I/O lock held."""

    def __iter__(self) -> Iterator[Frame]:
        while not self._stop.is_set():
            with self._io_lock:
                if self._stop.is_set():
                    break
                frame = self._read_next()
                if self._stop.is_set():      # closed while we were blocked in the read
                    self._release_locked()
                    break
            if frame is None:
                break
            yield frame
        if self._stop.is_set():
            with self._io_lock:
                self._release_locked()

    def seek(self, index: int) -> None:
        """Make `index` the next frame iteration yields."""
        if self.is_live:
            raise InputError(f"{self.name}: a live source cannot seek")
        index = int(index)
        count = self.frame_count
        if index < 0 or (count is not None and index >= count):
            raise InputError(f"{self.name}: frame {index} is out of range "
                             f"(the source has {count} frames)")
        with self._io_lock:
            self._check_open()
            self._seek(index)

    def read_at(self, index: int) -> Frame:
        """Frame `index`; iteration then continues at index + 1."""
        self.seek(index)
        with self._io_lock:
            self._check_open()
            frame = self._read_next()
        if frame is None:
            raise InputError(f"{self.name}: frame {index} could not be read "
                             f"({self.stopped_reason or 'the source ended before it'})")
        return frame

    # -- lifetime -----------------------------------------------------------------------------
    def close(self) -> None:
        self._stop.set()
        if self._io_lock.acquire(blocking=False):
            try:
                self._release_locked()
            finally:
                self._io_lock.release()
        # else: a read is in progress on another thread; it releases when it returns.

    def _release_locked(self) -> None:
        if not self._released:
            self._released = True
            self._release()

    def _check_open(self) -> None:
        if self._stop.is_set():
            raise RuntimeError(f"{self.name}: the source is closed")

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        log.warning("%s", message)

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name!r}, size_hw={self.size_hw}, fps={self.fps}, "
                f"frames={self.frame_count})")


# ----------------------------------------------------------------------------------------------
# Video files (PyAV)


@dataclass(frozen=True)
class VideoFileConfig:
    apply_rotation: bool = True    # honour the display matrix (phone videos shot upright)
    threads: bool = True           # let FFmpeg decode with several threads
    max_bad_packets: int = 20      # consecutive undecodable packets before giving up


def _display_matrix(frame: av.VideoFrame) -> np.ndarray | None:
    """The 3x3 int32 display matrix of a frame (FFmpeg layout), or None."""
    try:
        for sd in frame.side_data:
            if str(getattr(sd.type, "name", sd.type)).upper().endswith("DISPLAYMATRIX"):
                data = bytes(sd)
                if len(data) >= 36:
                    return np.frombuffer(data[:36], dtype=np.int32)
    except (AttributeError, TypeError, ValueError):
        pass
    return None


@dataclass(frozen=True)
class Orientation:
    """How to turn decoded pixels upright; mirrors FFmpeg's own autorotate (fftools)."""

    clockwise: int = 0       # degrees, 0/90/180/270, applied first
    hflip: bool = False      # then mirror left-right
    vflip: bool = False      # then mirror top-bottom

    @staticmethod
    def from_frame(frame: av.VideoFrame) -> "Orientation":
        m = _display_matrix(frame)
        if m is None:
            return Orientation()
        # frame.rotation is av_display_rotation_get(): counter-clockwise degrees; FFmpeg's
        # player turns the picture clockwise by its negative.
        ccw = getattr(frame, "rotation", None)
        if ccw is None:                                     # PyAV < 13: read it ourselves
            ccw = math.degrees(math.atan2(m[3] / math.hypot(m[1], m[4]),
                                          m[0] / math.hypot(m[0], m[3])))
        theta = (-round(float(ccw))) % 360
        if abs(theta - 90) < 1:
            # "cclock_flip" (= transpose) when mirrored, else "clock"
            return Orientation(90, vflip=True) if m[3] > 0 else Orientation(90)
        if abs(theta - 180) < 1:
            return Orientation(0, hflip=bool(m[0] < 0), vflip=bool(m[4] < 0))
        if abs(theta - 270) < 1:
            return Orientation(270, vflip=True) if m[3] < 0 else Orientation(270)
        if abs(theta) < 1:
            return Orientation(0, vflip=bool(m[4] < 0))
        return Orientation()                                # odd angles: leave as stored

    @property
    def is_identity(self) -> bool:
        return self.clockwise == 0 and not self.hflip and not self.vflip

    @property
    def rotation(self) -> int:
        """The net clockwise rotation this applies (a 180-degree turn is hflip + vflip)."""
        if self.clockwise == 0 and self.hflip and self.vflip:
            return 180
        return self.clockwise

    def apply(self, image: np.ndarray) -> np.ndarray:
        if self.is_identity:
            return image
        out = np.rot90(image, k=-(self.clockwise // 90)) if self.clockwise else image
        if self.hflip:
            out = out[:, ::-1]
        if self.vflip:
            out = out[::-1]
        return np.ascontiguousarray(out)        # downstream OpenCV wants contiguous pixels


class VideoFileSource(FrameSource):
    """A video file decoded with PyAV: exact timestamps, display rotation, frame-exact seek."""

    def __init__(self, path: str | Path, config: VideoFileConfig | None = None) -> None:
        self.path = Path(path)
        super().__init__(self.path.name)
        self.config = config or VideoFileConfig()
        self._container, self._stream = self._open()
        self._packets: Generator[av.VideoFrame, None, None] | None = None
        self._next_index = 0
        self._last_time: float | None = None
        self._last_raw: float | None = None        # the last frame's own timestamp
        self._last_index: int | None = None
        self._pending: Frame | None = None         # a frame decoded ahead (open, seek)
        self._pts_cache: list[int] | None = None
        self._pts_usable = False
        self._packet_count: int | None = None
        self._meta_lock = threading.Lock()
        self._ended_early_checked = False

        s = self._stream
        self._time_base = Fraction(s.time_base) if s.time_base else None
        self._start_pts = s.start_time                  # None when the container omits it
        self._orientation: Orientation | None = None   # read once, from the first frame
        self._fps = self._guess_fps()
        try:
            first = self._read_next()
        except InputError:
            self._release_container()
            raise
        if first is None:
            self._release_container()
            reason = f" ({self.stopped_reason})" if self.stopped_reason else ""
            raise InputError(f"{self.path}: no video frame could be decoded{reason}")
        self._size_hw = first.size_hw
        self._pending = first

    # -- opening ------------------------------------------------------------------------------
    def _open(self) -> tuple[Any, Any]:
        p = self.path
        if not p.exists():
            raise InputError(f"{p}: no such file")
        if p.is_dir():
            raise InputError(f"{p}: is a folder, not a video file")
        if p.stat().st_size == 0:
            raise InputError(f"{p}: the file is empty (0 bytes)")
        try:
            container = av.open(str(p), mode="r")
        except AV_ERROR as e:
            raise InputError(f"{p}: not a video FFmpeg can read "
                             f"({_av_reason(e)}; broken header or another format?)") from None
        except (OSError, UnicodeError) as e:
            raise InputError(f"{p}: cannot be opened ({e})") from None
        try:
            fmt = container.format.name or ""
            kind = _NOT_VIDEO_FORMATS.get(fmt) or ("a still image" if fmt.endswith("_pipe")
                                                    else None)
            if kind:
                raise InputError(f"{p}: is {kind}, not a video")
            if not container.streams.video:
                raise InputError(f"{p}: has no video stream")
            stream = container.streams.video[0]
            if self.config.threads:
                stream.thread_type = "AUTO"
            _ = stream.codec_context                      # opens the decoder: may fail
        except InputError:
            container.close()
            raise
        except AV_ERROR as e:
            container.close()
            raise InputError(f"{p}: its video cannot be decoded ({_av_reason(e)})") from None
        return container, stream

    def _guess_fps(self) -> float | None:
        s = self._stream
        for rate in (getattr(s, "average_rate", None), getattr(s, "guessed_rate", None)):
            if rate and float(rate) > 0:
                return float(rate)
        return None

    # -- description --------------------------------------------------------------------------
    @property
    def fps(self) -> float | None:
        if self._fps is None:
            count, duration = self.frame_count, self.duration_s
            if count and duration:
                self._fps = count / duration
        return self._fps

    @property
    def duration_s(self) -> float | None:
        s = self._stream
        if s.duration and self._time_base:
            return float(s.duration * self._time_base)
        if self._container.duration:
            return self._container.duration / 1_000_000     # AV_TIME_BASE
        return None

    @property
    def frame_count(self) -> int | None:
        """From the container header when it has one, else counted once by demuxing."""
        if self._stream.frames and self._stream.frames > 0:
            return int(self._stream.frames)
        self._frame_pts()
        return self._packet_count

    @property
    def size_hw(self) -> tuple[int, int]:
        return self._size_hw

    @property
    def rotation(self) -> int:
        return self._orientation.rotation

    @property
    def codec(self) -> str:
        return self._stream.codec_context.name

    # -- decoding -----------------------------------------------------------------------------
    def _decoded_frames(self) -> Generator[av.VideoFrame, None, None]:
        """Demux and decode packet by packet, so one corrupt packet or a cut file ends in a
        warning and a clean stop instead of an exception from inside FFmpeg."""
        bad = 0
        try:
            for packet in self._container.demux(self._stream):
                try:
                    frames = packet.decode()
                except AV_ERROR as e:
                    bad += 1
                    self._warn(f"{self.path}: skipped an undecodable packet ({_av_reason(e)})")
                    if bad > self.config.max_bad_packets:
                        self.stopped_reason = (f"too many undecodable packets after frame "
                                               f"{self._next_index - 1}")
                        self._warn(f"{self.path}: {self.stopped_reason}; stopping")
                        return
                    continue
                bad = 0
                yield from frames
        except AV_ERROR as e:
            self.stopped_reason = f"reading failed after frame {self._next_index - 1}: " \
                                  f"{_av_reason(e)}"
            self._warn(f"{self.path}: {self.stopped_reason}")

    def _frame_time(self, vf: av.VideoFrame, index: int) -> float:
        """The frame's presentation time. When the timestamps stop increasing (a damaged
        file), the timeline is replaced from that frame on by index / fps, continuing from
        the last good time: monotonic and evenly spaced; said once and recorded in
        `timestamp_repair`."""
        step = 1.0 / (self.fps or 30.0)
        raw: float | None = None
        if vf.pts is not None and self._time_base is not None:
            start = self._start_pts if self._start_pts is not None else 0
            raw = float((vf.pts - start) * self._time_base)
        consecutive = self._last_index is not None and index == self._last_index + 1
        repair = self.timestamp_repair
        if consecutive and raw is not None and self._last_raw is not None and \
                raw <= self._last_raw and repair is not None:
            repair["non_increasing"] += 1
        if repair is not None and index >= repair["from_frame"]:
            t = repair["_base"] + (index - repair["from_frame"]) * step
        elif raw is None:
            t = self._last_time + step if self._last_time is not None else 0.0
        elif consecutive and self._last_time is not None and raw <= self._last_time:
            base = self._last_time + step
            self.timestamp_repair = {"method": "index/fps", "from_frame": index,
                                     "non_increasing": 1, "_base": base}
            self._warn(f"{self.path}: the timestamps stop increasing at frame {index} (a "
                       f"damaged file?); from there on frame times are frame index / "
                       f"{self.fps or 30.0:g} fps")
            t = base
        else:
            t = raw
        self._last_raw = raw
        self._last_index = index
        return t

    def _to_frame(self, vf: av.VideoFrame, index: int) -> Frame:
        t = self._frame_time(vf, index)
        self._last_time = t
        # The display matrix is stream metadata: read it from the first frame only. Reading
        # frame.side_data on every frame (PyAV 18) makes a reference cycle that keeps each
        # decoded frame alive until the garbage collector runs: RSS grew by hundreds of MB.
        orientation = self._orientation
        if orientation is None:
            orientation = Orientation.from_frame(vf) if self.config.apply_rotation else Orientation()
            self._orientation = orientation
        try:
            image = vf.to_ndarray(format="bgr24")
        except AV_ERROR as e:
            raise InputError(f"{self.path}: frame {index} cannot be converted to BGR "
                             f"({_av_reason(e)})") from None
        return Frame(index=index, time_s=t, image=orientation.apply(image))

    def _read_next(self) -> Frame | None:
        if self._pending is not None:
            frame, self._pending = self._pending, None
            self._next_index = frame.index + 1
            return frame
        if self._packets is None:
            self._packets = self._decoded_frames()
        vf = next(self._packets, None)
        if vf is None:
            self._note_end()
            return None
        frame = self._to_frame(vf, self._next_index)
        self._next_index += 1
        return frame

    def _note_end(self) -> None:
        """At the end: say so when fewer frames came than the header announced (cut file)."""
        if self._ended_early_checked:
            return
        self._ended_early_checked = True
        announced = self._stream.frames or 0
        if announced and self._next_index < announced and self.stopped_reason is None:
            self.stopped_reason = (f"the file ended after {self._next_index} of the {announced} "
                                   f"frames its header announces (truncated?)")
            self._warn(f"{self.path}: {self.stopped_reason}")

    # -- seeking ------------------------------------------------------------------------------
    def _frame_pts(self) -> list[int] | None:
        """Sorted pts of every video frame (presentation order), or None when some packet has
        no pts. Built once by demuxing a second handle: no decoding, and the main decoder's
        position is left alone."""
        with self._meta_lock:
            if self._pts_cache is None:
                pts: list[int | None] = []
                try:
                    with av.open(str(self.path)) as c:
                        for packet in c.demux(c.streams[self._stream.index]):
                            # size 0: the flush packet at the end; discard: edit-list cuts
                            if packet.size == 0 or getattr(packet, "is_discard", False):
                                continue
                            pts.append(packet.pts)
                except AV_ERROR as e:
                    self._warn(f"{self.path}: indexing stopped early ({_av_reason(e)})")
                self._packet_count = len(pts)
                usable = all(p is not None for p in pts) and len(set(pts)) == len(pts)
                self._pts_cache = sorted(pts) if usable else []   # type: ignore[type-var]
                self._pts_usable = usable
            return self._pts_cache if self._pts_usable else None

    def _seek(self, index: int) -> None:
        self._pending = None
        pts = self._frame_pts()
        if pts is not None and index < len(pts) and self._seek_by_pts(index, pts[index], pts[0]):
            return
        self._seek_by_decoding(index)

    def _restart_decoder(self) -> None:
        if self._packets is not None:
            self._packets.close()
        self._packets = self._decoded_frames()
        self._ended_early_checked = False
        self.stopped_reason = None

    def _seek_by_pts(self, index: int, target: int, first: int) -> bool:
        """Keyframe at or before target, then decode forward to it. False if it was not met."""
        for seek_pts in (target, first):              # retry from the very start if needed
            try:
                self._container.seek(seek_pts, stream=self._stream, backward=True,
                                     any_frame=False)
            except AV_ERROR:
                continue
            self._restart_decoder()
            for vf in self._packets:
                if vf.pts is None or vf.pts > target:
                    break
                if vf.pts == target:
                    self._next_index = index
                    self._pending = self._to_frame(vf, index)
                    return True
        return False

    def _seek_by_decoding(self, index: int) -> None:
        """Slow but always right: decode from the start and count (files without pts)."""
        try:
            self._container.seek(0, backward=True)
        except AV_ERROR:
            self._release_container()
            self._container, self._stream = self._open()
        self._restart_decoder()
        self._next_index = 0
        for i, vf in enumerate(self._packets):
            if i == index:
                self._next_index = index
                self._pending = self._to_frame(vf, index)
                return
        raise InputError(f"{self.path}: frame {index} could not be decoded "
                         f"({self.stopped_reason or 'the file ended before it'})")

    # -- lifetime -----------------------------------------------------------------------------
    def _release_container(self) -> None:
        if getattr(self, "_packets", None) is not None:
            self._packets.close()
            self._packets = None
        try:
            self._container.close()
        except AV_ERROR:
            pass

    def _release(self) -> None:
        self._release_container()


def _av_reason(e: BaseException) -> str:
    """FFmpeg's own words for an error, without the Python exception dressing."""
    msg = getattr(e, "strerror", None) or str(e)
    return str(msg).strip() or type(e).__name__


# ----------------------------------------------------------------------------------------------
# Images


class _ImageListSource(FrameSource):
    """A fixed list of image files, read one at a time (seekable)."""

    def __init__(self, files: list[Path], name: str, fps: float | None) -> None:
        super().__init__(name)
        if fps is not None and fps <= 0:
            raise InputError(f"{name}: fps must be positive, got {fps}")
        self.files = files
        self._fps = fps
        self._next = 0
        self._first: tuple[int, np.ndarray] | None = None
        if len(files) == 1:
            image = read_image(files[0])          # one image: unreadable is an error
            self._first = (0, image)
        else:
            for i, f in enumerate(files):         # a sequence: the first readable sets the size
                try:
                    self._first = (i, read_image(f))
                    break
                except InputError:
                    continue
            if self._first is None:
                raise InputError(f"{name}: none of its {len(files)} images can be decoded "
                                 f"(e.g. {files[0].name}: empty, corrupt or another format)")
        self._size_hw = Frame(0, 0.0, self._first[1]).size_hw

    @property
    def fps(self) -> float | None:
        return self._fps

    @property
    def frame_count(self) -> int:
        return len(self.files)

    @property
    def size_hw(self) -> tuple[int, int]:
        """Size of the first image (later images may differ)."""
        return self._size_hw

    def time_of(self, index: int) -> float:
        # Without an fps, one "second" per image: strictly increasing times, which trackers and
        # smoothers need, and the time reads as the image number.
        return index / self._fps if self._fps else float(index)

    def _read_next(self) -> Frame | None:
        """The next readable image; an unreadable one in a sequence is skipped with a
        warning and listed in `skipped_frames` (the other frames keep their indices)."""
        while self._next < len(self.files):
            i = self._next
            self._next += 1
            if self._first is not None and self._first[0] == i:
                image = self._first[1]
                self._first = None
                return Frame(index=i, time_s=self.time_of(i), image=image)
            try:
                image = read_image(self.files[i])
            except InputError as e:
                if len(self.files) == 1:
                    raise
                if all(f["frame"] != i for f in self.skipped_frames):
                    reason = str(e).split(": ", 1)[-1]
                    self.skipped_frames.append({"frame": i, "file": self.files[i].name,
                                                "reason": reason})
                    self._warn(f"{self.name}: skipped frame {i} ({self.files[i].name}: "
                               f"{reason})")
                continue
            return Frame(index=i, time_s=self.time_of(i), image=image)
        return None

    def _seek(self, index: int) -> None:
        self._next = index
        self._first = None

    def _release(self) -> None:
        pass


class ImageFolderSource(_ImageListSource):
    """Every image in a folder (not recursive), in natural order: img2 before img10."""

    def __init__(self, folder: str | Path, fps: float | None = None) -> None:
        folder = Path(folder)
        if not folder.exists():
            raise InputError(f"{folder}: no such folder")
        if not folder.is_dir():
            raise InputError(f"{folder}: is not a folder")
        files = _visible_files(folder, IMAGE_EXTENSIONS)
        if not files:
            videos = _visible_files(folder, VIDEO_EXTENSIONS)
            if videos:
                raise InputError(f"{folder}: holds {len(videos)} video(s), not an image "
                                 f"sequence; open the videos themselves (main.py annotate "
                                 f"takes a folder's videos)")
            raise InputError(f"{folder}: contains no images "
                             f"({', '.join(sorted(IMAGE_EXTENSIONS))}) and no videos")
        self.folder = folder
        super().__init__(files, folder.name or str(folder), fps)


class SingleImageSource(_ImageListSource):
    """One image as a one-frame source."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        super().__init__([path], path.name, None)
        self.path = path


# ----------------------------------------------------------------------------------------------
# Cameras (OpenCV)


@dataclass(frozen=True)
class CameraConfig:
    reconnect_attempts: int = 3      # after a failed read, reopen this many times...
    reconnect_delay_s: float = 0.5   # ...waiting this long before each attempt
    buffer_size: int = 1             # driver queue length: 1 = always the freshest frame
    width: int | None = None         # requested capture size (the driver may ignore it)
    height: int | None = None
    fps: float | None = None         # requested capture rate


_CAMERA_SPEC = re.compile(r"^camera:(\d+)$", re.IGNORECASE)
_DEVICE_PATH = re.compile(r"^/dev/video\d+$")


def is_camera_spec(spec: str | Path) -> bool:
    s = str(spec).strip()
    return bool(_CAMERA_SPEC.match(s) or _DEVICE_PATH.match(s))


def _camera_backend() -> int:
    # V4L2 directly on Linux: GStreamer/FFmpeg backends add latency and their own buffering.
    return cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY


class _QuietOpenCV:
    """Silence OpenCV's own warnings while probing devices (we report problems ourselves)."""

    def __enter__(self) -> None:
        self._level = None
        try:
            self._level = cv2.utils.logging.getLogLevel()
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        except (AttributeError, cv2.error):
            pass

    def __exit__(self, *exc: object) -> None:
        if self._level is not None:
            cv2.utils.logging.setLogLevel(self._level)


class CameraSource(FrameSource):
    """A live camera: `camera:N` or a device path like /dev/video0."""

    def __init__(self, spec: str | Path, config: CameraConfig | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        spec = str(spec).strip()
        super().__init__(spec)
        self.config = config or CameraConfig()
        self._clock = clock
        m = _CAMERA_SPEC.match(spec)
        if m:
            self._target: int | str = int(m.group(1))
        elif _DEVICE_PATH.match(spec):
            self._target = spec
        else:
            raise InputError(f"{spec}: not a camera (use camera:N or /dev/videoN)")
        self._cap = self._open_capture()
        if self._cap is None:
            raise InputError(f"no camera at {spec} (OpenCV could not open it: not connected, "
                             f"busy in another program, or no permission)")
        ok, image = self._safe_read(self._cap)
        if not ok:
            self._cap.release()
            raise InputError(f"{spec}: the camera opened but delivered no frame")
        self._size_hw = (int(image.shape[0]), int(image.shape[1]))
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self._fps = fps if fps > 0 else None
        self._index = 0
        self._t0: float | None = None
        self.reconnects = 0               # successful reconnections so far

    def _open_capture(self) -> Any | None:
        with _QuietOpenCV():
            try:
                cap = cv2.VideoCapture(self._target, _camera_backend())
            except cv2.error:
                return None
            if not cap.isOpened():
                cap.release()
                return None
            cfg = self.config
            cap.set(cv2.CAP_PROP_BUFFERSIZE, cfg.buffer_size)
            if cfg.width:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.width)
            if cfg.height:
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.height)
            if cfg.fps:
                cap.set(cv2.CAP_PROP_FPS, cfg.fps)
            return cap

    @staticmethod
    def _safe_read(cap: Any) -> tuple[bool, np.ndarray | None]:
        try:
            ok, image = cap.read()
        except cv2.error:
            return False, None
        if not ok or image is None or image.size == 0:
            return False, None
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        elif image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        return True, image

    @property
    def fps(self) -> float | None:
        return self._fps

    @property
    def frame_count(self) -> None:
        return None

    @property
    def size_hw(self) -> tuple[int, int]:
        return self._size_hw

    @property
    def is_live(self) -> bool:
        return True

    def _read_next(self) -> Frame | None:
        ok, image = (False, None) if self._cap is None else self._safe_read(self._cap)
        if not ok:
            image = self._reconnect()
            if image is None:
                return None
        now = self._clock()
        if self._t0 is None:
            self._t0 = now
        frame = Frame(index=self._index, time_s=now - self._t0, image=image)
        self._index += 1
        return frame

    def _reconnect(self) -> np.ndarray | None:
        """Reopen the device a few times; the first good frame, or None (reason recorded)."""
        attempts = self.config.reconnect_attempts
        for attempt in range(1, attempts + 1):
            # Event.wait instead of sleep: close() from another thread cuts the wait short.
            if self._stop.wait(self.config.reconnect_delay_s):
                return None
            self._warn(f"{self.name}: read failed, reconnecting ({attempt}/{attempts})")
            if self._cap is not None:
                self._cap.release()
            self._cap = self._open_capture()
            if self._cap is None:
                continue
            ok, image = self._safe_read(self._cap)
            if ok:
                self.reconnects += 1
                return image
        self.stopped_reason = (f"{self.name} stopped delivering frames after frame "
                               f"{self._index - 1}; {attempts} reconnection attempts failed")
        self._warn(self.stopped_reason)
        return None

    def _seek(self, index: int) -> None:
        raise InputError(f"{self.name}: a live camera cannot seek")

    def _release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def list_cameras(max_index: int = 8) -> list[str]:
    """Specs (`camera:N`) of the cameras OpenCV can open, probing indices below max_index."""
    if sys.platform.startswith("linux"):
        # Only probe device nodes that exist: quick, and no noise about missing ones.
        nodes = (int(m.group(1)) for p in Path("/dev").glob("video*")
                 if (m := re.fullmatch(r"video(\d+)", p.name)))
        indices = sorted(i for i in nodes if i < max_index)
    else:
        indices = list(range(max_index))
    found = []
    with _QuietOpenCV():
        for i in indices:
            try:
                cap = cv2.VideoCapture(i, _camera_backend())
            except cv2.error:
                continue
            try:
                if cap.isOpened():
                    found.append(f"camera:{i}")
            finally:
                cap.release()
    return found


# ----------------------------------------------------------------------------------------------


def open_source(spec: str | Path) -> FrameSource:
    """camera:N or /dev/videoN -> camera; a folder -> its images; an image -> one frame;
    anything else -> a video file."""
    if is_camera_spec(spec):
        return CameraSource(str(spec))
    path = Path(spec)
    if path.is_dir():
        return ImageFolderSource(path)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return SingleImageSource(path)
    return VideoFileSource(path)
