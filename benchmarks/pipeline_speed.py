#!/usr/bin/env python
"""End-to-end speed of the video pipeline (reader -> detector + pose -> tracker), and its memory.

Usage (from the repository root):

    .venv/bin/python benchmarks/pipeline_speed.py                       # --model auto, 2 videos
    .venv/bin/python benchmarks/pipeline_speed.py --random-transpose tp-r-a3
    .venv/bin/python benchmarks/pipeline_speed.py --model mediapipe --detector hog --detect-every 1
    .venv/bin/python benchmarks/pipeline_speed.py --memory --no-speed --json out.json

What is measured, per video (the first --max-frames frames of each):

1. **Batch mode, end to end**: frames/s from pipeline start to PipelineFinished, with the
   pipeline's own per-stage means (stats.stage_ms): read (= demux + decode + BGR
   conversion, in the reader thread), detect per detector run and per frame (what the
   inference thread spent on it: a pass started ahead on the detector's thread costs it
   only the wait, see ``--no-detect-ahead``), pose per
   frame, track per frame; detector runs, pose crops per frame and tracked people per
   frame. The stages run on three threads, so their sum may exceed 1000 / fps.
2. **Pose model alone on the same crops**: a recording proxy around the pose backend keeps,
   for every pose call of the batch run, the frame (by position, checked with a pixel
   fingerprint) and the exact boxes. Afterwards the frames are decoded again and the
   backend is timed alone on exactly those calls, nothing else running, on one worker
   thread like the pipeline's inference stage (``--model-only-thread main``: the main
   thread; with torch on CPU the two can differ, see below): for TransPose every crop is
   prepared first (``_prepare`` + ``to_input_tensor``, untimed) and only ``heatmaps()`` is
   timed on the same per-frame batches; for other
   backends (BlazePose) the whole call ``backend(image, boxes)`` is timed. The ratio
   ``e2e fps / model-only fps`` says how much of the model's own speed the whole pipeline
   keeps (goal: above 0.8).
3. **Live mode** on the same frames, paced like a camera at the video's frame rate
   (``--live-pace realtime``, default; ``none`` feeds frames as fast as they decode):
   processed frames/s, dropped frames, mean and p95 latency (read -> tracked). The engine's
   live model (``Engine.live_pose``): on a CPU the shipped TransPose-M's int8 stem, without
   flip test; ``--no-live-int8`` keeps the float32 stem there.
With ``--serial``, the same batch work is also timed on one thread (``core.step.run_batch``:
decode, detector, pose, backfill and tracking in turn): e2e / serial says what the
pipeline's threads buy on this machine (on 2 cores with the default model, nothing: the
network takes both cores, and every other stage takes them from it).

4. **Memory** (``--memory``): a clip (default tests/data/clip_person.mp4) looped
   ``--memory-frames`` times (default 10000) through the full batch pipeline with
   ``--memory-model`` (default mediapipe); VmRSS from /proc/self/status every 500 frames.
   Growth = RSS at the end - RSS after warm-up (frame 500); goal: < 50 MB.

``--random-transpose VARIANT`` builds the deterministic random TransPose weights of
../shared/reference/make_weights.py into a temporary .pth: the keypoints are meaningless
(speed only), and it is labelled so everywhere. Note that the pipeline's box propagation
follows the (random) keypoints between detector runs.

Machine info (CPU, load average at start and end, versions, threads) heads the output;
on a shared machine other jobs skew every timing, so read the load average and the
"others CPU%" columns (CPU time other processes used while a phase ran, from /proc/stat
minus this process's own, in % of one core).

Why the model-only timing runs on a worker thread: on a busy 2-core machine, torch
(2 intra-op threads) ran the same TransPose heatmaps() call about 2x slower on the main
thread than on a fresh worker thread, which would make the model-only figure unfairly slow
against the pipeline (whose inference stage is a worker thread).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from core.engine import EngineConfig, build_engine  # noqa: E402
from core.pipeline import PipelineError, PipelineFinished  # noqa: E402
from core.types import Frame, PoseFrame  # noqa: E402
from core.video import FrameSource, open_source  # noqa: E402

SHARED = Path(os.environ.get("TRANSPOSE_SHARED", ROOT.parent / "shared"))
VIDEOS = SHARED / "datasets" / "videos"
DEFAULT_VIDEOS = [VIDEOS / "sports2d_demo.mp4", VIDEOS / "opencv_vtest.avi"]
DEFAULT_CLIP = ROOT / "tests" / "data" / "clip_person.mp4"
RSS_EVERY = 500

# ------------------------------------------------------------------ machine


def _proc_status(key: str) -> float | None:
    """A kB field of /proc/self/status (VmRSS, VmHWM) in MB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def rss_mb() -> float | None:
    return _proc_status("VmRSS")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str | None:
    try:
        from importlib.metadata import version
        return version(dist)
    except Exception:  # noqa: BLE001 - only informative
        return None


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info(threads: int) -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu_model(), "cpu_count": os.cpu_count(), "cpus_usable": usable,
        "platform": platform.platform(), "python": platform.python_version(),
        "torch": torch.__version__, "torch_threads": threads,
        "torch_threads_actual": torch.get_num_threads(),
        "numpy": np.__version__, "opencv": _version("opencv-python") or
        _version("opencv-python-headless") or _version("opencv-contrib-python"),
        "av": _version("av"), "mediapipe": _version("mediapipe"),
        "ai_edge_litert": _version("ai-edge-litert"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "loadavg_start": loadavg(),
    }


class CpuMeter:
    """CPU time the *other* processes used while a phase ran, from /proc/stat minus our own
    os.times(): a direct measure of how much a shared machine disturbed the timing."""

    def __init__(self) -> None:
        self._start = self._read()

    @staticmethod
    def _read() -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat") as f:
                vals = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        busy = (sum(vals[:8]) - vals[3] - (vals[4] if len(vals) > 4 else 0)) / hz  # no idle/iowait
        t = os.times()
        return time.perf_counter(), busy, t.user + t.system

    def others_pct(self) -> float:
        """Mean CPU use of other processes in % of one core (200 = both of 2 cores)."""
        end = self._read()
        if self._start is None or end is None or end[0] <= self._start[0]:
            return float("nan")
        wall = end[0] - self._start[0]
        others = (end[1] - self._start[1]) - (end[2] - self._start[2])
        return max(0.0, 100.0 * others / wall)

# ------------------------------------------------------------------ sources


class ClipSource(FrameSource):
    """A FrameSource around another one: at most `max_frames` frames; with `loop`, the clip
    starts again at frame 0 when it ends, frame indices and timestamps still increasing;
    with `pace`, frames are released no earlier than their timestamps (like a camera)."""

    def __init__(self, inner: FrameSource, max_frames: int | None = None, *, loop: bool = False,
                 pace: bool = False) -> None:
        super().__init__(inner.name)
        self.inner = inner
        self.max_frames = max_frames
        self.loop = loop
        self.pace = pace
        self.loops = 0
        self._it = iter(inner)
        self._produced = 0
        self._pass_frames = 0
        self._offset_i = 0
        self._offset_t = 0.0
        self._first_t: float | None = None
        self._last_t = 0.0
        self._clock0: float | None = None

    @property
    def fps(self) -> float | None:
        return self.inner.fps

    @property
    def frame_count(self) -> int | None:
        n = self.inner.frame_count
        if self.loop:
            return self.max_frames
        if n is None or self.max_frames is None:
            return n if self.max_frames is None else None
        return min(n, self.max_frames)

    @property
    def size_hw(self) -> tuple[int, int]:
        return self.inner.size_hw

    def _next_inner(self) -> Frame | None:
        f = next(self._it, None)
        if f is None and self.loop and self._pass_frames > 0:
            dt = 1.0 / (self.inner.fps or 30.0)
            self._offset_t += self._last_t - (self._first_t or 0.0) + dt
            self._offset_i += self._pass_frames
            self._pass_frames = 0
            self.loops += 1
            self.inner.seek(0)
            self._it = iter(self.inner)
            f = next(self._it, None)
        return f

    def _read_next(self) -> Frame | None:
        if self.max_frames is not None and self._produced >= self.max_frames:
            return None
        f = self._next_inner()
        if f is None:
            return None
        if self._first_t is None:
            self._first_t = f.time_s
        self._last_t = f.time_s
        self._pass_frames += 1
        self._produced += 1
        t = self._offset_t + f.time_s - self._first_t
        frame = Frame(index=self._offset_i + f.index, time_s=t, image=f.image)
        if self.pace:
            now = time.perf_counter()
            if self._clock0 is None:
                self._clock0 = now - t
            delay = self._clock0 + t - now
            if delay > 0:
                self._stop.wait(delay)
        return frame

    def _seek(self, index: int) -> None:
        if self.loop:
            raise RuntimeError("a looping clip cannot seek")
        self.inner.seek(index)
        self._it = iter(self.inner)
        self._produced = index
        self._clock0 = None

    def _release(self) -> None:
        self.inner.close()


def open_clip(path: Path | str, max_frames: int | None, **kw: Any) -> ClipSource:
    return ClipSource(open_source(str(path)), max_frames, **kw)

# ------------------------------------------------------------------ recording proxy


def fingerprint(image: np.ndarray) -> int:
    """A cheap pixel checksum, to pair recorded calls with re-decoded frames."""
    return zlib.crc32(np.ascontiguousarray(image[::17, ::13]).tobytes()) ^ hash(image.shape)


def empty_boxes_fail(backend: Any) -> str | None:
    """Why the backend cannot take a frame with no person boxes (None when it can). The
    pipeline calls the pose backend with zero boxes on every frame where nobody was found."""
    try:
        est = backend(np.zeros((64, 48, 3), np.uint8), np.zeros((0, 4), np.float32))
        if len(est.keypoints) != 0:
            return f"returned {len(est.keypoints)} people for no boxes"
    except Exception as e:  # noqa: BLE001 - reported
        return f"{type(e).__name__}: {e}"
    return None


def _crop_options(rotations: Any, contexts: Any) -> dict[str, Any]:
    """The keyword arguments of a pose call that were given (a backend without turned
    crops or crop contexts takes neither)."""
    return {k: v for k, v in (("rotations", rotations), ("contexts", contexts))
            if v is not None}


class RecordingPose:
    """Forwards to a pose backend and keeps (frame fingerprint, boxes, rotations, crop
    contexts, flip) of every call; ``without_flip()`` (the step's turned retries, live
    mode) records into the same list with flip False, so the model-only replay does the
    same network work.

    With `empty_shortcut`, a call with zero boxes returns an empty PoseEstimate without
    reaching the backend (a workaround for backends that fail on it; counted and reported)."""

    def __init__(self, inner: Any, record: bool = True, empty_shortcut: bool = False,
                 flip: bool = True, calls: list | None = None) -> None:
        self._inner = inner
        self.record = record
        self.empty_shortcut = empty_shortcut
        self.flip = flip
        self.shortcut_calls = 0
        # per call: [(fp, boxes, rotations, contexts, flip)] (rotations: None for upright
        # crops; contexts: None for the backend's own)
        self.calls: list[list[tuple[int, np.ndarray | None, Any, Any, bool]]] = \
            calls if calls is not None else []
        if hasattr(inner, "predict_many"):
            self.predict_many = self._predict_many

    def __getattr__(self, name: str) -> Any:       # variant, weights_name, config, ...
        if name == "_inner":
            raise AttributeError(name)
        return getattr(self._inner, name)

    def without_flip(self) -> "RecordingPose":
        inner = self._inner.without_flip()
        if inner is self._inner:
            return self
        return RecordingPose(inner, self.record, self.empty_shortcut, flip=False,
                             calls=self.calls)

    def _record(self, requests: Any) -> None:
        if not self.record:
            return
        self.calls.append([(fingerprint(r[0]), np.array(r[1], np.float32, copy=True).reshape(-1, 4)
                            if r[1] is not None else None,
                            None if len(r) < 3 or r[2] is None else np.array(r[2], np.float32),
                            None if len(r) < 4 or r[3] is None else list(r[3]),
                            self.flip) for r in requests])

    def __call__(self, image: np.ndarray, boxes: Any = None, *, attention: bool = False,
                 rotations: Any = None, contexts: Any = None) -> Any:
        self._record([(image, boxes, rotations, contexts)])
        if self.empty_shortcut and boxes is not None and np.size(boxes) == 0:
            self.shortcut_calls += 1
            return _empty_estimate()
        # (the step's turned crops and crop contexts, only to backends that take them)
        return self._inner(image, boxes, attention=attention,
                           **_crop_options(rotations, contexts))

    def _predict_many(self, requests: Any, *, attention: bool = False) -> Any:
        self._record(requests)
        if not self.empty_shortcut:
            return self._inner.predict_many(requests, attention=attention)
        full = [i for i, r in enumerate(requests) if r[1] is None or np.size(r[1])]
        got = self._inner.predict_many([requests[i] for i in full], attention=attention) \
            if full else []
        out = [_empty_estimate() for _ in requests]
        for i, est in zip(full, got):
            out[i] = est
        self.shortcut_calls += len(requests) - len(full)
        return out


def _empty_estimate() -> Any:
    from core.pose.estimator import PoseEstimate
    from core.keypoints import NUM_KEYPOINTS
    return PoseEstimate(boxes=np.zeros((0, 4), np.float32),
                        keypoints=np.zeros((0, NUM_KEYPOINTS, 2), np.float32),
                        scores=np.zeros((0, NUM_KEYPOINTS), np.float32))


class RecordingDetector:
    """Forwards to a person detector and keeps the fingerprint of every frame it ran on."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: list[int] = []

    def __getattr__(self, name: str) -> Any:
        if name == "_inner":
            raise AttributeError(name)
        return getattr(self._inner, name)

    def __call__(self, image: np.ndarray) -> Any:
        self.calls.append(fingerprint(image))
        return self._inner(image)

# ------------------------------------------------------------------ helpers


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(np.asarray(values, np.float64), q))


def is_transpose(backend: Any) -> bool:
    from core.pose.estimator import TransPoseEstimator
    return isinstance(backend, TransPoseEstimator)


def first_frame(path: Path) -> np.ndarray:
    with open_clip(path, 1) as src:
        for f in src:
            return f.image
    raise RuntimeError(f"{path}: no frame")


def warm_up(engine: Any, image: np.ndarray) -> None:
    """One detector run and one pose call, untimed (allocation, lazy init)."""
    det = engine.detector(image)
    boxes = det.boxes[:20] if len(det) else np.array([[0, 0, image.shape[1], image.shape[0]]],
                                                     np.float32)
    engine.pose(image, boxes)


def drain(pipe: Any, on_frame: Callable[[PoseFrame], None], require_finished: bool = True
          ) -> PipelineFinished | None:
    """Consume events; raise a stage error. A pipeline stopped early ends without
    PipelineFinished: that is an error unless require_finished is False (then None)."""
    finished = None
    for ev in pipe.events():
        if isinstance(ev, PoseFrame):
            on_frame(ev)
        elif isinstance(ev, PipelineError):
            raise RuntimeError(str(ev)) from ev.error
        elif isinstance(ev, PipelineFinished):
            finished = ev
    if finished is None and require_finished:
        raise RuntimeError("the pipeline ended without PipelineFinished")
    return finished

# ------------------------------------------------------------------ 1 + 2: batch and model-only


def batch_run(engine: Any, video: Path, max_frames: int, repeats: int = 1
              ) -> tuple[dict[str, Any], RecordingPose, RecordingDetector]:
    """The fastest of `repeats` batch runs (a batch run is deterministic: same calls)."""
    best = None
    walls = []
    for _ in range(max(1, repeats)):
        got = _batch_once(engine, video, max_frames)
        walls.append(got[0]["wall_s"])
        if best is None or got[0]["wall_s"] < best[0]["wall_s"]:
            best = got
    best[0]["walls_s"] = walls
    return best


def _batch_once(engine: Any, video: Path, max_frames: int
                ) -> tuple[dict[str, Any], RecordingPose, RecordingDetector]:
    proxy = RecordingPose(engine.pose, empty_shortcut=engine.empty_workaround)
    det_proxy = RecordingDetector(engine.detector)
    eng = dataclasses.replace(engine, pose=proxy, detector=det_proxy)
    src = open_clip(video, max_frames)
    pipe = eng.pipeline(src, mode="batch")
    people: list[int] = []
    meter = CpuMeter()
    t0 = time.perf_counter()
    pipe.start()
    fin = drain(pipe, lambda ev: people.append(len(ev.people)))
    wall = time.perf_counter() - t0
    others = meter.others_pct()
    pipe.stop()
    st = pipe.stats
    n = st.frames_out
    crops = [sum(len(r[1]) if r[1] is not None else 1 for r in call) for call in proxy.calls]
    res = {
        "video": video.name, "size_hw": list(src.size_hw), "video_fps": src.fps,
        "frames": n, "wall_s": wall, "e2e_fps": n / wall if wall > 0 else float("nan"),
        "dropped": fin.dropped, "detector_runs": st.detector_runs,
        "backfilled_person_frames": st.backfilled,
        "read_ms": st.stage_ms["read"] / max(1, n),
        "detect_ms_per_run": st.stage_ms["detect"] / max(1, st.detector_runs),
        "detect_ms_per_frame": st.stage_ms["detect"] / max(1, n),
        "pose_ms": st.stage_ms["pose"] / max(1, n),
        "track_ms": st.stage_ms["track"] / max(1, n),
        "stage_sum_ms": sum(st.stage_ms.values()) / max(1, n),
        "people_per_frame": statistics.fmean(people) if people else 0.0,
        "max_people": max(people) if people else 0,
        "pose_calls": len(proxy.calls),
        "crops_per_frame": sum(crops) / max(1, n),
        "max_crops": max(crops) if crops else 0,
        "others_cpu_pct": others,
        "empty_calls_shortcut": proxy.shortcut_calls,
    }
    return res, proxy, det_proxy


def serial_run(engine: Any, video: Path, max_frames: int | None) -> dict[str, Any]:
    """The same batch work without the pipeline's threads: every frame decoded, inferred,
    held for backfill and tracked in turn on one thread (core.step.run_batch, which gives
    the batch pipeline's people). What the threads buy, or cost, on this machine."""
    from core.step import run_batch
    src = open_clip(video, max_frames)
    meter = CpuMeter()
    t0 = time.perf_counter()
    n = sum(1 for _ in run_batch(engine.step(), src))
    wall = time.perf_counter() - t0
    return {"video": video.name, "frames": n, "wall_s": wall,
            "serial_fps": n / wall if wall > 0 else float("nan"),
            "others_cpu_pct": meter.others_pct()}


def run_in_thread(fn: Callable[[], Any]) -> Any:
    """fn() on a fresh worker thread (as the pipeline's inference stage runs); its result or
    its exception."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised below
            box["error"] = e
    t = threading.Thread(target=target, name="pipeline-speed-model-only")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


def model_only(engine: Any, video: Path, proxy: RecordingPose, det_proxy: RecordingDetector,
               repeats: int, thread: str = "worker", frames: int | None = None
               ) -> dict[str, Any]:
    """Time the pose backend alone on the recorded calls (frames re-decoded, paired by order
    and checked by fingerprint), on a worker thread like the pipeline (or the main one).
    `frames`: how many frames the batch run had (model fps is per frame of the video)."""
    backend = engine.pose
    # one frame per run of requests with the same fingerprint (the step may call the model
    # again on a frame: a turned retry, then the frame with the new turns); batch runs also
    # go back to earlier frames (people followed back), so the run's own count is better
    prints = [r[0] for call in proxy.calls for r in call]
    n_frames = frames or sum(1 for i, fp in enumerate(prints) if i == 0 or fp != prints[i - 1])
    images: list[np.ndarray] = []
    fps_seen: dict[int, int] = {}
    with open_clip(video, n_frames) as src:
        for i, f in enumerate(src):
            images.append(f.image)
            fps_seen.setdefault(fingerprint(f.image), i)
    # pair every request of every call with a frame
    calls: list[list[tuple[np.ndarray, np.ndarray | None, Any, Any, bool]]] = []
    k = mismatched = 0
    last_fp = None
    for call in proxy.calls:
        reqs = []
        for fp, boxes, rotations, contexts, flip in call:
            if fp == last_fp:
                k -= 1                       # the same frame again (see n_frames)
            last_fp = fp
            idx = k if k < len(images) and fingerprint(images[k]) == fp else fps_seen.get(fp)
            if idx is None:
                raise RuntimeError(f"{video.name}: pose call {len(calls)} matches no re-decoded "
                                   f"frame (decoding not deterministic?)")
            mismatched += idx != k
            reqs.append((images[idx], boxes, rotations, contexts, flip))
            k += 1
        calls.append(reqs)
    det_images = []
    for fp in det_proxy.calls:
        idx = fps_seen.get(fp)
        if idx is None:
            raise RuntimeError(f"{video.name}: a detector call matches no re-decoded frame")
        det_images.append(images[idx])

    detector = engine.detector

    def time_detector() -> list[float]:
        """The detector alone on the frames it ran on (for the second ratio)."""
        if det_images:
            detector(det_images[0])                           # warm-up, untimed
        det_totals = []
        for _ in range(max(1, repeats)):
            t0 = time.perf_counter()
            for img in det_images:
                detector(img)
            det_totals.append(time.perf_counter() - t0)
        return det_totals

    meter = CpuMeter()
    det_totals = run_in_thread(time_detector) if thread == "worker" else time_detector()
    det_best = min(det_totals)
    del det_images

    if is_transpose(backend):
        from core.pose.preprocess import to_input_tensor
        what = "TransPoseEstimator.heatmaps() on pre-cropped, pre-normalised batches"
        tensors, backends = [], []
        for reqs in calls:
            prepared = [backend._prepare(img, boxes, rotations, contexts)
                        for img, boxes, rotations, contexts, _ in reqs]
            tensors.append(to_input_tensor(np.concatenate([p.crops for p in prepared])))
            backends.append(backend if all(r[4] for r in reqs) else backend.without_flip())
        del images, calls

        def work(i: int) -> None:
            backends[i].heatmaps(tensors[i])
        n_calls = len(tensors)
        warm = next((i for i, t in enumerate(tensors) if len(t)), 0)
    else:
        what = f"{type(backend).__name__}(image, boxes), whole call (crop + model + decode)"

        skip_empty = getattr(engine, "empty_workaround", False)
        # (resolved once: only backends with without_flip record unflipped calls)
        unflipped = backend.without_flip() if hasattr(backend, "without_flip") else backend

        def work(i: int) -> None:
            for img, boxes, rotations, contexts, flip in calls[i]:
                if not (skip_empty and boxes is not None and np.size(boxes) == 0):
                    model = backend if flip else unflipped
                    model(img, boxes, **_crop_options(rotations, contexts))
        n_calls = len(calls)
        warm = 0
    def time_model() -> tuple[list[float], list[float]]:
        if n_calls:
            work(warm)                                    # warm-up, untimed
        totals: list[float] = []
        per_call: list[float] = []
        for _ in range(max(1, repeats)):
            times = []
            for i in range(n_calls):
                t0 = time.perf_counter()
                work(i)
                times.append(time.perf_counter() - t0)
            totals.append(sum(times))
            if sum(times) <= min(totals):
                per_call = times
        return totals, per_call

    totals, per_call = run_in_thread(time_model) if thread == "worker" else time_model()
    best = min(totals) if totals else float("nan")
    return {"what": what, "thread": thread, "frames": n_frames, "calls": n_calls,
            "repeats": max(1, repeats),
            "total_s": totals, "model_ms_per_frame": best * 1e3 / max(1, n_frames),
            "model_fps": n_frames / best if best > 0 else float("nan"),
            "call_ms_p50": percentile([t * 1e3 for t in per_call], 50),
            "call_ms_p95": percentile([t * 1e3 for t in per_call], 95),
            "frames_out_of_order": int(mismatched), "others_cpu_pct": meter.others_pct(),
            "detector_runs": len(det_proxy.calls), "detector_total_s": det_totals,
            "detector_ms_per_run": det_best * 1e3 / max(1, len(det_proxy.calls)),
            "detector_ms_per_frame": det_best * 1e3 / max(1, n_frames),
            "model_plus_detector_fps": n_frames / (best + det_best) if best + det_best > 0
            else float("nan")}

# ------------------------------------------------------------------ 3: live


def safe(engine: Any) -> Any:
    """The engine, its pose backend wrapped for the empty-frame workaround when needed."""
    if not engine.empty_workaround:
        return engine
    return dataclasses.replace(engine, pose=RecordingPose(engine.pose, record=False,
                                                          empty_shortcut=True))


def live_run(engine: Any, video: Path, max_frames: int, pace: bool) -> dict[str, Any]:
    src = open_clip(video, max_frames, pace=pace)
    pipe = safe(engine).pipeline(src, mode="live")
    lat: list[float] = []
    meter = CpuMeter()
    t0 = time.perf_counter()
    pipe.start()
    fin = drain(pipe, lambda ev: lat.append(ev.timings_ms.get("latency", float("nan"))))
    wall = time.perf_counter() - t0
    others = meter.others_pct()
    pipe.stop()
    st = pipe.stats
    return {"video": video.name, "paced": pace, "video_fps": src.fps,
            "frames_in": st.frames_in, "frames_out": st.frames_out, "dropped": fin.dropped,
            "stats_dropped": st.dropped,
            "wall_s": wall, "processed_fps": st.frames_out / wall if wall > 0 else float("nan"),
            "latency_mean_ms": statistics.fmean(lat) if lat else float("nan"),
            "latency_p95_ms": percentile(lat, 95),
            "latency_max_ms": max(lat) if lat else float("nan"),
            "detector_runs": st.detector_runs, "others_cpu_pct": others}

# ------------------------------------------------------------------ 4: memory


def memory_run(engine: Any, clip: Path, frames: int, time_limit_s: float | None,
               log: Callable[[str], None]) -> dict[str, Any]:
    src = open_clip(clip, frames, loop=True)
    pipe = safe(engine).pipeline(src, mode="batch")
    samples: list[dict[str, float]] = [{"frame": 0, "rss_mb": rss_mb() or float("nan"),
                                        "t_s": 0.0}]
    meter = CpuMeter()
    t0 = time.perf_counter()
    state = {"n": 0, "people": 0, "stopped_early": False}

    def on_frame(ev: PoseFrame) -> None:
        state["n"] += 1
        state["people"] += len(ev.people)
        n = state["n"]
        if n % RSS_EVERY == 0:
            el = time.perf_counter() - t0
            samples.append({"frame": n, "rss_mb": rss_mb() or float("nan"), "t_s": el})
            log(f"  memory: frame {n:6d}  RSS {samples[-1]['rss_mb']:8.1f} MB  "
                f"({n / el:.1f} fps)")
            if time_limit_s is not None and el > time_limit_s and not state["stopped_early"]:
                state["stopped_early"] = True
                pipe.stop()

    pipe.start()
    fin = drain(pipe, on_frame, require_finished=False)
    wall = time.perf_counter() - t0
    pipe.stop()
    n = state["n"]
    if samples[-1]["frame"] != n:
        samples.append({"frame": n, "rss_mb": rss_mb() or float("nan"), "t_s": wall})
    warm = next((s for s in samples if s["frame"] >= RSS_EVERY), samples[-1])
    end = samples[-1]
    growth = end["rss_mb"] - warm["rss_mb"]
    after = [s for s in samples if s["frame"] >= warm["frame"]]
    slope = float("nan")
    if len(after) >= 3:
        x = np.array([s["frame"] for s in after], np.float64)
        y = np.array([s["rss_mb"] for s in after], np.float64)
        slope = float(np.polyfit(x, y, 1)[0] * 1000.0)
    return {"clip": clip.name, "frames_requested": frames, "frames": n,
            "finished": fin is not None, "stopped_early_for_time": state["stopped_early"],
            "loops": src.loops, "wall_s": wall, "fps": n / wall if wall > 0 else float("nan"),
            "people_per_frame": state["people"] / max(1, n),
            "rss_warm_frame": warm["frame"], "rss_warm_mb": warm["rss_mb"],
            "rss_end_mb": end["rss_mb"], "growth_mb": growth,
            "slope_mb_per_1000_frames": slope, "vmhwm_mb": _proc_status("VmHWM"),
            "samples": samples, "goal_mb": 50.0, "ok": bool(growth < 50.0),
            "others_cpu_pct": meter.others_pct()}

# ------------------------------------------------------------------ model spec


def random_transpose_weights(variant: str, tmpdir: Path) -> Path:
    ref = SHARED / "reference"
    keys = ref / f"{variant}.keys.json"
    if not keys.exists():
        have = sorted(p.name.split(".")[0] for p in ref.glob("*.keys.json"))
        sys.exit(f"error: {keys} not found; variants with keys: {', '.join(have) or 'none'}")
    sys.path.insert(0, str(ref))
    try:
        from make_weights import build_state_dict
    finally:
        sys.path.remove(str(ref))
    out = tmpdir / f"{variant}-random-weights.pth"
    torch.save(build_state_dict(str(keys)), out)
    return out


def build(args: argparse.Namespace, model: str) -> Any:
    torch.set_num_threads(args.threads)
    engine = build_engine(EngineConfig(model=model, detector=args.detector, device=args.device,
                                       detect_every=args.detect_every,
                                       flip_test=not args.no_flip,
                                       detect_ahead=not args.no_detect_ahead,
                                       live_int8=not args.no_live_int8), progress=False)
    torch.set_num_threads(args.threads)        # the estimator may have changed it
    engine.empty_fail = empty_boxes_fail(engine.pose)
    engine.empty_workaround = engine.empty_fail is not None
    if engine.empty_fail:
        print(f"WARNING: the pose backend fails on a frame without people ({engine.empty_fail});"
              f" the pipeline calls it so on every such frame. Working around it here: calls "
              f"with zero boxes return an empty result without reaching the backend.",
              flush=True)
    return engine


def thread_note(engine: Any) -> str:
    """The threads each model runs with (core.threads decides the defaults)."""
    from core.threads import landmark_threads
    parts = [f"torch {torch.get_num_threads()}"]
    stem = getattr(getattr(engine.pose, "model", None), "stem", None)
    if hasattr(stem, "split_plan"):
        parts.append(f"pose stem onnxruntime {stem.threads} (2 crops: "
                     f"{stem.split_plan(2)} as (crops, threads) per part)")
    for role, obj in (("pose", engine.pose), ("detector", engine.detector)):
        cfg = getattr(obj, "config", None)
        if cfg is not None and hasattr(cfg, "num_threads"):
            n = cfg.num_threads or landmark_threads()
            parts.append(f"{role} {getattr(cfg, 'runtime', 'LiteRT')} {n}")
    return ", ".join(parts)

# ------------------------------------------------------------------ printing


def fmt(x: Any, nd: int = 1) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:.{nd}f}"
    return str(x)


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[c if isinstance(c, str) else fmt(c) for c in r]
                                            for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for j, r in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths))))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def print_speed(block: dict[str, Any]) -> None:
    print(f"\n== {block['label']}")
    print(f"   pose: {block['pose_description']}")
    print(f"   detector: {block['detector']}, detect every {block['detect_every']} frames; "
          f"threads: {block['threads']}")
    if block.get("empty_boxes_bug"):
        n = sum(r.get("empty_calls_shortcut", 0) for r in block["batch"])
        print(f"   NOTE: the pose backend fails on frames without people "
              f"({block['empty_boxes_bug']}); such calls ({n} in the batch runs) returned an "
              f"empty result here without reaching the backend (a bug in the pipeline/backend)")
    rows = []
    for r in block["batch"]:
        rows.append([r["video"], f"{r['size_hw'][1]}x{r['size_hw'][0]}", r["frames"],
                     fmt(r["e2e_fps"], 2), fmt(r["read_ms"]), fmt(r["detect_ms_per_run"]),
                     fmt(r["detect_ms_per_frame"]), r["detector_runs"], fmt(r["pose_ms"]),
                     fmt(r["track_ms"], 2), fmt(r["stage_sum_ms"]),
                     fmt(r["crops_per_frame"], 2), fmt(r["people_per_frame"], 2),
                     fmt(r["others_cpu_pct"], 0)])
    print("\n-- batch mode, end to end (stage means in ms per frame unless said; "
          "others CPU% = other processes' CPU use meanwhile, % of one core)")
    print(table(["video", "size", "frames", "e2e fps", "read", "detect/run", "detect/frame",
                 "det runs", "pose", "track", "sum", "crops/frame", "people/frame",
                 "others CPU%"], rows))
    if block.get("model_only"):
        rows = []
        for r, m in zip(block["batch"], block["model_only"]):
            ratio = r["e2e_fps"] / m["model_fps"] if m["model_fps"] > 0 else float("nan")
            ratio2 = (r["e2e_fps"] / m["model_plus_detector_fps"]
                      if m["model_plus_detector_fps"] > 0 else float("nan"))
            rows.append([r["video"], fmt(r["e2e_fps"], 2), fmt(m["model_fps"], 2),
                         fmt(1e3 / r["e2e_fps"] if r["e2e_fps"] else float("nan")),
                         fmt(m["model_ms_per_frame"]), fmt(r["pose_ms"]),
                         fmt(r["pose_ms"] - m["model_ms_per_frame"]),
                         fmt(m["detector_ms_per_frame"]), fmt(m["model_plus_detector_fps"], 2),
                         fmt(ratio, 3), "yes" if ratio > 0.8 else "NO", fmt(ratio2, 3),
                         fmt(m["others_cpu_pct"], 0)])
        print(f"\n-- pose model alone on the same frames and boxes: "
              f"{block['model_only'][0]['what']}; detector alone on the frames it ran on; "
              f"timed on the {block['model_only'][0]['thread']} thread")
        print(table(["video", "e2e fps", "model fps", "e2e ms/frame", "model ms/frame",
                     "pipeline pose ms", "pose overhead ms", "det alone ms/frame",
                     "model+det fps", "e2e/model", "> 0.8", "e2e/(model+det)", "others CPU%"],
                    rows))
    if block.get("serial"):
        rows = [[r["video"], fmt(b["e2e_fps"], 2), fmt(r["serial_fps"], 2),
                 fmt(b["e2e_fps"] / r["serial_fps"] if r["serial_fps"] > 0 else float("nan"),
                     3), fmt(r["others_cpu_pct"], 0)]
                for b, r in zip(block["batch"], block["serial"])]
        print("\n-- the same batch work on one thread (core.step.run_batch: decode, detector, "
              "pose, backfill, tracking in turn)")
        print(table(["video", "e2e fps", "serial fps", "e2e/serial", "others CPU%"], rows))
    if block.get("live"):
        rows = [[r["video"], "realtime" if r["paced"] else "none", fmt(r["video_fps"]),
                 r["frames_in"], r["frames_out"], r["dropped"], fmt(r["processed_fps"], 2),
                 fmt(r["latency_mean_ms"]), fmt(r["latency_p95_ms"]), fmt(r["latency_max_ms"]),
                 fmt(r["others_cpu_pct"], 0)]
                for r in block["live"]]
        print("\n-- live mode (newest frame wins)")
        print(table(["video", "pacing", "video fps", "read", "processed", "dropped",
                     "processed fps", "latency mean ms", "p95 ms", "max ms", "others CPU%"],
                    rows))


def print_memory(m: dict[str, Any]) -> None:
    print(f"\n== memory: {m['clip']} looped ({m['loops']} restarts), batch mode, "
          f"{m['label']}")
    print(f"   pose: {m['pose_description']}; detector {m['detector']}, "
          f"detect every {m['detect_every']}")
    note = ""
    if m["stopped_early_for_time"]:
        note = f" (stopped after the --memory-time-limit; {m['frames_requested']} requested)"
    print(f"   frames: {m['frames']}{note}, {fmt(m['fps'])} fps, "
          f"{fmt(m['people_per_frame'], 2)} people/frame, {fmt(m['wall_s'])} s")
    samples = m["samples"]
    if len(samples) > 12:            # a few in between
        idx = sorted(set(np.linspace(0, len(samples) - 1, 12).round().astype(int).tolist()))
        samples = [samples[i] for i in idx]
    print(table(["frame", "RSS MB", "t s"],
                [[s["frame"], fmt(s["rss_mb"]), fmt(s["t_s"])] for s in samples]))
    print(f"   RSS after warm-up (frame {m['rss_warm_frame']}): {fmt(m['rss_warm_mb'])} MB; "
          f"end: {fmt(m['rss_end_mb'])} MB; growth {fmt(m['growth_mb'])} MB "
          f"(goal < 50: {'yes' if m['ok'] else 'NO'}); slope after warm-up "
          f"{fmt(m['slope_mb_per_1000_frames'], 2)} MB / 1000 frames; peak (VmHWM) "
          f"{fmt(m['vmhwm_mb'])} MB; other processes' CPU meanwhile "
          f"{fmt(m['others_cpu_pct'], 0)}% of one core")

# ------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", nargs="+", type=Path, default=DEFAULT_VIDEOS,
                    help="videos for the speed runs (default: sports2d_demo.mp4, "
                         "opencv_vtest.avi from ../shared/datasets/videos)")
    ap.add_argument("--max-frames", type=int, default=120,
                    help="frames per video (default 120; 0 = all)")
    ap.add_argument("--model", default="auto",
                    help="pose backend: auto | mediapipe | TransPose zoo name | .pth")
    ap.add_argument("--random-transpose", metavar="VARIANT",
                    help="TransPose VARIANT (e.g. tp-r-a3) with deterministic RANDOM weights "
                         "from ../shared/reference (speed only); overrides --model")
    ap.add_argument("--detector", default="auto", help="auto | blazepose | hog | yolox-nano | "
                                                       "onnx:PATH")
    ap.add_argument("--detect-every", type=int, default=EngineConfig.detect_every)
    ap.add_argument("--device", default="auto", help="TransPose device (auto | cpu | cuda)")
    ap.add_argument("--no-flip", action="store_true", help="TransPose without flip test")
    ap.add_argument("--no-live-int8", action="store_true",
                    help="live mode keeps the float32 stem (by default on a CPU it runs "
                         "TransPose-M's int8 stem where one is shipped: Engine.live_pose)")
    ap.add_argument("--no-detect-ahead", action="store_true",
                    help="batch mode: the detector on the pose model's thread, as before "
                         "detector passes started ahead on their own thread")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="batch runs and model-only passes per video; the fastest of each "
                         "counts (default 1)")
    ap.add_argument("--model-only-thread", choices=("worker", "main"), default="worker",
                    help="thread of the model-only timing: a worker thread like the pipeline's "
                         "inference stage (default) or the main thread (torch's intra-op "
                         "threading can behave differently there)")
    ap.add_argument("--live-pace", choices=("realtime", "none", "both"), default="realtime",
                    help="live mode: frames released at the video's rate like a camera "
                         "(realtime, default) or as fast as they decode (none)")
    ap.add_argument("--no-speed", action="store_true", help="skip the speed runs")
    ap.add_argument("--no-model-only", action="store_true")
    ap.add_argument("--no-live", action="store_true")
    ap.add_argument("--serial", action="store_true",
                    help="also time the batch work on one thread, without the pipeline's "
                         "threads (e2e / serial: what the threads buy on this machine)")
    ap.add_argument("--memory", action="store_true", help="also run the memory test")
    ap.add_argument("--memory-frames", type=int, default=10000)
    ap.add_argument("--memory-video", type=Path, default=DEFAULT_CLIP,
                    help="clip to loop (default tests/data/clip_person.mp4)")
    ap.add_argument("--memory-model", default="mediapipe",
                    help="pose backend of the memory run (default mediapipe)")
    ap.add_argument("--memory-time-limit", type=float, default=None, metavar="S",
                    help="stop the memory run after S seconds (reported as such)")
    ap.add_argument("--json", type=Path, metavar="OUT", help="write all results as JSON")
    args = ap.parse_args(argv)
    if args.threads < 1 or args.detect_every < 1:
        ap.error("--threads and --detect-every must be >= 1")
    max_frames = args.max_frames or None

    torch.set_num_threads(args.threads)
    info = machine_info(args.threads)
    print("pipeline_speed: end-to-end pipeline speed and memory")
    print(f"CPU: {info['cpu']} ({info['cpus_usable']} usable of {info['cpu_count']} cores); "
          f"{info['platform']}")
    print(f"python {info['python']}, torch {info['torch']}, numpy {info['numpy']}, "
          f"opencv {info['opencv']}, av {info['av']}, mediapipe {info['mediapipe']}, "
          f"ai-edge-litert {info['ai_edge_litert']}")
    print(f"--threads {args.threads} (torch); OMP_NUM_THREADS={info['OMP_NUM_THREADS']}; "
          f"load average at start: {info['loadavg_start']}")
    out: dict[str, Any] = {"machine": info, "args": {k: str(v) if isinstance(v, Path) else v
                                                     for k, v in vars(args).items()}}
    out["args"]["videos"] = [str(v) for v in args.videos]

    with tempfile.TemporaryDirectory(prefix="pipeline_speed_") as tmp:
        model, label = args.model, f"--model {args.model}"
        if args.random_transpose:
            model = str(random_transpose_weights(args.random_transpose, Path(tmp)))
            label = (f"TransPose {args.random_transpose} with RANDOM weights "
                     f"(speed only, keypoints meaningless)")

        if not args.no_speed:
            engine = build(args, model)
            block: dict[str, Any] = {
                "label": label, "pose_description": engine.pose_description,
                "random_weights": bool(args.random_transpose),
                "detector": args.detector, "detect_every": args.detect_every,
                "threads": thread_note(engine), "batch": [], "model_only": [], "live": [],
                "serial": [],
                "empty_boxes_bug": engine.empty_fail}
            print(f"\n{label}: {engine.pose_description}", flush=True)
            for video in args.videos:
                warm_up(engine, first_frame(video))
                print(f"  batch {video.name} ...", flush=True)
                res, proxy, det_proxy = batch_run(engine, video, max_frames, args.repeats)
                block["batch"].append(res)
                print(f"    {res['frames']} frames, {res['e2e_fps']:.2f} fps", flush=True)
                if not args.no_model_only:
                    print(f"  model alone on {video.name} ...", flush=True)
                    m = model_only(engine, video, proxy, det_proxy, args.repeats,
                                   args.model_only_thread, frames=res["frames"])
                    block["model_only"].append(m)
                    print(f"    {m['model_fps']:.2f} fps", flush=True)
                del proxy, det_proxy
                if args.serial:
                    print(f"  serial {video.name} ...", flush=True)
                    block["serial"].append(serial_run(engine, video, max_frames))
                    print(f"    {block['serial'][-1]['serial_fps']:.2f} fps", flush=True)
                if not args.no_live:
                    paces = {"realtime": [True], "none": [False], "both": [True, False]}
                    for pace in paces[args.live_pace]:
                        print(f"  live {video.name} (pacing "
                              f"{'realtime' if pace else 'none'}) ...", flush=True)
                        block["live"].append(live_run(engine, video, max_frames, pace))
            out["speed"] = block
            del engine

        if args.memory:
            mmodel = args.memory_model
            mlabel = f"--memory-model {mmodel}"
            if args.random_transpose and mmodel == "random":
                mmodel, mlabel = model, label
            engine = build(args, mmodel)
            print(f"\nmemory run: {args.memory_frames} frames of {args.memory_video.name}, "
                  f"{engine.pose_description}", flush=True)
            warm_up(engine, first_frame(args.memory_video))
            mem = memory_run(engine, args.memory_video, args.memory_frames,
                             args.memory_time_limit, lambda s: print(s, flush=True))
            mem.update(label=mlabel, pose_description=engine.pose_description,
                       detector=args.detector, detect_every=args.detect_every)
            out["memory"] = mem
            del engine

    info["loadavg_end"] = loadavg()
    print("\n" + "=" * 100)
    print(f"CPU: {info['cpu']} ({info['cpus_usable']} usable cores); torch {info['torch']}, "
          f"{args.threads} torch threads")
    print(f"load average: start {info['loadavg_start']}, end {info['loadavg_end']} "
          f"(other jobs on the machine skew the timings)")
    if "speed" in out:
        print_speed(out["speed"])
    if "memory" in out:
        print_memory(out["memory"])
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2, default=_json_default))
        print(f"\nwrote {args.json}")
    return 0


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


if __name__ == "__main__":
    sys.exit(main())
