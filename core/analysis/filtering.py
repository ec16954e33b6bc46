"""Post-processing of keypoint tracks after the whole video is tracked.

Order (each step optional): reject outliers (Hampel) -> fill short gaps -> zero-lag
Butterworth low-pass. Every step works per track, per keypoint, per coordinate, and on
scipy's implementations (median filter, interpolation, Butterworth design, filtfilt).

Why after tracking: a zero-lag (forward-backward) filter needs the samples after a frame as
well as before it, so it can only run once the whole track is known.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import InputError
from .tracks import Timeline, Track

GapMethod = Literal["linear", "cubic"]
OutlierMethod = Literal["none", "hampel"]
FilterKind = Literal["none", "butterworth"]

# Frame intervals may differ from their median by this fraction and still count as a
# constant frame rate (container timestamps are rounded to their time base).
_UNIFORM_TOLERANCE = 0.02


@dataclass(frozen=True)
class PostProcessConfig:
    """What happens to the tracks after tracking (recorded in the JSON's metadata)."""

    fill_gaps: int = 0                     # fill runs of at most this many missing frames
    gap_method: GapMethod = "linear"
    outliers: OutlierMethod = "none"
    outlier_window: int = 7                # Hampel window in frames (odd)
    outlier_sigmas: float = 3.0            # reject beyond this many robust SDs (1.4826 MAD)
    filter: FilterKind = "none"
    cutoff_hz: float = 6.0                 # Butterworth cutoff (single-pass design)
    order: int = 4                         # Butterworth order (single pass)

    def __post_init__(self) -> None:
        if self.fill_gaps < 0:
            raise InputError(f"--fill-gaps: must be 0 or more frames, not {self.fill_gaps}")
        if self.gap_method not in ("linear", "cubic"):
            raise InputError(f"--gap-method: must be linear or cubic, not {self.gap_method!r}")
        if self.outliers not in ("none", "hampel"):
            raise InputError(f"--outliers: must be none or hampel, not {self.outliers!r}")
        if self.outlier_window < 3 or self.outlier_window % 2 == 0:
            raise InputError(f"--outlier-window: must be an odd number of frames >= 3, "
                             f"not {self.outlier_window}")
        if not self.outlier_sigmas > 0:
            raise InputError(f"--outlier-sigmas: must be positive, not {self.outlier_sigmas}")
        if self.filter not in ("none", "butterworth"):
            raise InputError(f"--filter: must be none or butterworth, not {self.filter!r}")
        if not (np.isfinite(self.cutoff_hz) and self.cutoff_hz > 0):
            raise InputError(f"--cutoff: must be a positive frequency in Hz, not {self.cutoff_hz}")
        if not 1 <= self.order <= 8:
            raise InputError(f"--order: the Butterworth order must be 1..8, not {self.order}")

    @property
    def changes_values(self) -> bool:
        return self.fill_gaps > 0 or self.outliers != "none" or self.filter != "none"

    def check_sampling_rate(self, fps: float | None, where: str) -> None:
        """InputError when the cutoff is not below the Nyquist frequency of this input."""
        if self.filter == "none":
            return
        rate = fps if fps else 1.0     # image folders without an fps: one frame per second
        if self.cutoff_hz >= rate / 2:
            raise InputError(f"{where}: --cutoff {self.cutoff_hz:g} Hz is not below the Nyquist "
                             f"frequency of this input ({rate:g} fps / 2 = {rate / 2:g} Hz)")

    def as_metadata(self) -> dict:
        d = dataclasses.asdict(self)
        d["steps"] = [s for s, on in (("outliers", self.outliers != "none"),
                                       ("fill_gaps", self.fill_gaps > 0),
                                       ("filter", self.filter != "none")) if on]
        return d


# ------------------------------------------------------------------------ building blocks
def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True in a 1-D bool array."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[::2], edges[1::2]))


def fill_gaps(values: np.ndarray, times: np.ndarray, max_gap: int,
              method: GapMethod = "linear") -> np.ndarray:
    """Fill runs of at most `max_gap` NaNs lying between two valid samples.

    `values` (T,) or (T, C) over `times` (T,). Longer runs, and runs at either end (nothing
    to interpolate towards), stay NaN. Interpolation is in time, so a variable frame rate
    is respected. Cubic uses scipy's CubicSpline through all valid samples of the column.
    """
    from scipy.interpolate import CubicSpline

    out = np.array(values, dtype=float, copy=True)
    cols = out.reshape(len(out), -1)
    if max_gap <= 0:
        return out
    for c in range(cols.shape[1]):
        y = cols[:, c]
        valid = np.isfinite(y)
        if valid.sum() < 2:
            continue
        first, last = np.flatnonzero(valid)[[0, -1]]
        holes = [(a, b) for a, b in _runs(~valid) if a > first and b <= last and b - a <= max_gap]
        if not holes:
            continue
        idx = np.concatenate([np.arange(a, b) for a, b in holes])
        if method == "cubic" and valid.sum() >= 4:
            y[idx] = CubicSpline(times[valid], y[valid])(times[idx])
        else:
            y[idx] = np.interp(times[idx], times[valid], y[valid])
    return out


def hampel_mask(values: np.ndarray, window: int, sigmas: float) -> np.ndarray:
    """True where a sample of a 1-D series is a Hampel outlier.

    A sample is an outlier when it is further than `sigmas` x 1.4826 x MAD from the median
    of the `window` samples around it (MAD: their median absolute deviation from that
    median). Runs between NaNs are handled separately (scipy's median filter, edges by
    reflection). A constant neighbourhood (MAD 0) rejects nothing.
    """
    from scipy.ndimage import median_filter

    y = np.asarray(values, float)
    bad = np.zeros(len(y), bool)
    for a, b in _runs(np.isfinite(y)):
        seg = y[a:b]
        if len(seg) < 3:
            continue
        size = min(window, len(seg) if len(seg) % 2 else len(seg) - 1)
        med = median_filter(seg, size=size, mode="reflect")
        mad = median_filter(np.abs(seg - med), size=size, mode="reflect")
        bad[a:b] = (np.abs(seg - med) > sigmas * 1.4826 * mad) & (mad > 0)
    return bad


def sampling_rate(times: np.ndarray) -> tuple[float, bool]:
    """(rate in Hz from the median frame interval, whether intervals are uniform)."""
    dt = np.diff(np.asarray(times, float))
    if len(dt) == 0:
        return 1.0, True
    step = float(np.median(dt))
    uniform = bool(np.all(np.abs(dt - step) <= _UNIFORM_TOLERANCE * step))
    return 1.0 / step, uniform


def butterworth_lowpass(values: np.ndarray, times: np.ndarray, cutoff_hz: float,
                        order: int = 4) -> np.ndarray:
    """Zero-lag Butterworth low-pass of each column of `values` (T,) or (T, C) over `times`.

    Each run of valid samples is filtered on its own (scipy `butter` + `sosfiltfilt`; NaNs
    stay NaN). The rate is 1 / median frame interval. With a variable frame rate, each run
    is resampled linearly onto a uniform grid at that rate, filtered, and interpolated back
    at the original timestamps. `cutoff_hz` must be below the Nyquist frequency (ValueError).
    Short runs get a shorter edge padding (scipy's default needs 3 x (2 x sections + 1)
    samples); runs of fewer than 2 samples are returned unchanged.
    """
    from scipy.signal import butter, sosfiltfilt

    times = np.asarray(times, float)
    fs, uniform = sampling_rate(times)
    if cutoff_hz >= fs / 2:
        raise ValueError(f"cutoff {cutoff_hz} Hz is not below the Nyquist frequency {fs / 2} Hz")
    sos = butter(order, cutoff_hz, btype="low", fs=fs, output="sos")
    default_pad = 3 * (2 * len(sos) + 1)
    out = np.array(values, dtype=float, copy=True)
    cols = out.reshape(len(out), -1)
    for c in range(cols.shape[1]):
        y = cols[:, c]
        for a, b in _runs(np.isfinite(y)):
            if b - a < 2:
                continue
            t = times[a:b]
            if uniform:
                y[a:b] = sosfiltfilt(sos, y[a:b], padlen=min(default_pad, b - a - 1))
                continue
            grid = np.arange(t[0], t[-1] + 0.5 / fs, 1.0 / fs)
            if len(grid) < 2:
                continue
            resampled = np.interp(grid, t, y[a:b])
            smooth = sosfiltfilt(sos, resampled, padlen=min(default_pad, len(grid) - 1))
            y[a:b] = np.interp(t, grid, smooth)
    return out


# ------------------------------------------------------------------------ on tracks
@dataclass(frozen=True)
class PostProcessReport:
    """What post-processing did to one input (summed over tracks), for the metadata."""

    outliers_rejected: int = 0       # keypoint samples rejected as outliers
    samples_filled: int = 0          # keypoint samples filled by interpolation
    frame_rate_hz: float | None = None
    uniform_frame_rate: bool = True
    resampled_for_filter: bool = False


def postprocess_tracks(timeline: Timeline, tracks: list[Track], config: PostProcessConfig
                       ) -> tuple[list[Track], PostProcessReport]:
    """New tracks with outliers rejected, gaps filled and coordinates low-passed.

    Scores are never filtered; a filled sample gets the linear interpolation of its
    neighbours' scores, a rejected one NaN. The input tracks are left untouched (their
    values are the raw ones the JSON keeps)."""
    fs, uniform = sampling_rate(timeline.times_s)
    rejected = filled = 0
    out = []
    for t in tracks:
        kp = t.keypoints.copy()
        sc = t.scores.copy()
        times = t.times(timeline)
        if config.outliers == "hampel":
            for k in range(kp.shape[1]):
                bad = (hampel_mask(kp[:, k, 0], config.outlier_window, config.outlier_sigmas) |
                       hampel_mask(kp[:, k, 1], config.outlier_window, config.outlier_sigmas))
                kp[bad, k] = np.nan
                sc[bad, k] = np.nan
                rejected += int(bad.sum())
        if config.fill_gaps > 0:
            before = np.isfinite(kp[..., 0])
            kp = fill_gaps(kp.reshape(len(kp), -1), times, config.fill_gaps,
                           config.gap_method).reshape(kp.shape)
            # a keypoint is filled only where both coordinates were filled
            now = np.isfinite(kp).all(axis=2)
            kp[~now] = np.nan
            sc = np.where(now & ~before, fill_gaps(sc, times, config.fill_gaps, "linear"), sc)
            filled += int((now & ~before).sum())
        if config.filter == "butterworth":
            kp = butterworth_lowpass(kp.reshape(len(kp), -1), times, config.cutoff_hz,
                                     config.order).reshape(kp.shape)
        out.append(dataclasses.replace(t, keypoints=kp, scores=sc))
    report = PostProcessReport(rejected, filled, round(fs, 6), uniform,
                               config.filter != "none" and not uniform)
    return out, report
