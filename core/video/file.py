"""Video files decoded with PyAV: exact timestamps, display rotation, frame-exact seek."""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Generator

import av
import numpy as np

from ..errors import InputError
from ..types import Frame
from .base import FrameSource

# PyAV >= 14 names its base error FFmpegError; older releases call it AVError.
AV_ERROR: type[Exception] = getattr(av, "FFmpegError", None) or getattr(av, "AVError")

# FFmpeg happily "opens" still images and text files as one-stream videos; they are not.
_NOT_VIDEO_FORMATS = {"image2": "a still image", "tty": "a text file"}


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
            self.frames_available = self._next_index
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
