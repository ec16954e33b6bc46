"""Positions in a video as people type and read them: frame numbers and times."""
from __future__ import annotations

import math
import re

GOTO_HELP = ("Go to a frame or a time, then Enter: a whole number is a frame (120), a time has "
             "a unit, a decimal point or colons (4.5, 4.5s, 1:02.5, 0:01:02)")

_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)$")        # [h:]m:s[.fff]
_SECONDS = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|secs|seconds?)?$")
_FRAME = re.compile(r"^(?:#|f|frame\s*)?(\d+)$")


def format_time(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:
        return "--:--.---"
    seconds = max(0.0, float(seconds))
    m, s = divmod(seconds, 60.0)
    return f"{int(m):02d}:{s:06.3f}"


def parse_position(text: str, fps: float | None, frame_count: int | None) -> int | None:
    """The frame a typed position means, clamped to the video; None when it is neither a
    frame nor a time.

    "120", "#120", "f120", "frame 120": frame 120. "4.5", "4.5s", "1:02.5", "0:01:02": a
    time, the frame shown at that time (frame i covers [i/fps, (i+1)/fps))."""
    t = text.strip().lower()
    if not t:
        return None
    index: int | None = None
    m = _FRAME.match(t)
    if m:
        index = int(m.group(1))
    else:
        seconds: float | None = None
        m = _CLOCK.match(t)
        if m:
            h, mins, secs = m.group(1), m.group(2), m.group(3)
            seconds = int(h or 0) * 3600 + int(mins) * 60 + float(secs)
        else:
            m = _SECONDS.match(t)
            if m:
                seconds = float(m.group(1))
        if seconds is None or not fps or fps <= 0:
            return None
        index = int(math.floor(seconds * float(fps) + 1e-6))
    if frame_count:
        index = min(index, int(frame_count) - 1)
    return max(0, index)
