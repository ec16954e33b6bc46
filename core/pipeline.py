"""The threaded video pipeline: source -> detector + pose -> tracker -> results.

The per-frame logic is `core.step.PoseStep` (a plain callable); this module only adds
threads, queues, pacing and events. Three worker threads joined by bounded queues:
  reader     decodes frames from the FrameSource;
  inference  the step's first half (``PoseStep.infer``): detector schedule, box
             propagation, pose on all of a frame's people in one batch (several frames at
             once in batch mode when the detector runs on every frame), pose NMS. In batch
             mode it looks at the frames waiting in the queue and starts the detector's
             next scheduled passes on them (``PoseStep.detect_ahead``, the detector's own
             thread), so the detector works beside the pose model; and it holds inferred
             frames until the detector's next pass, which may find someone who was there
             on them already: they are followed back (``PoseStep.backfill``);
  tracker    the step's second half (``PoseStep.track``): IDs and smoothing, then an
             immutable PoseFrame.
The inference stage owns the box-propagation state, so a batch run is deterministic and
gives the same people as calling the step frame by frame.

Live mode: the newest frame wins (older ones are dropped and counted) and latency is
measured per frame. Batch mode: lossless and in order. Control (pause, seek, stop) is safe
from any thread; an exception in a stage becomes a PipelineError event naming the stage
and the frame.
"""
from __future__ import annotations

import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Literal

from .step import FrameInference, HeldFrames, PoseStep, StepConfig, boxes_from_keypoints
from .types import Frame, PersonDetector, PoseBackend, PoseFrame, Tracker

__all__ = ["PipelineConfig", "PipelineError", "PipelineFinished", "PipelineStats",
           "PosePipeline", "boxes_from_keypoints"]

_STOP = object()
PipelineMode = Literal["batch", "live"]


@dataclass(frozen=True)
class PipelineConfig:
    mode: PipelineMode = "batch"     # "batch": lossless, in order; "live": newest frame wins
    detect_every: int = 5            # run the detector at least every N frames (1 = always)
    min_keypoint_score: float = 0.3  # a propagated person needs this mean score to be kept
    box_margin: float = 1.25         # box from keypoints: enlarged by this about its centre
    frames_per_batch: int = 1        # batch mode with detect_every=1: frames per pose batch
    queue_size: int = 8
    attention: bool = False          # keep the pose model's attention in each PoseFrame
    keep_images: bool = False        # keep the frame's image in each PoseFrame
    max_people: int = 20
    pose_nms_oks: float = 0.7        # poses more alike than this (OKS) are one person
    joint_share: float = 0.7         # a pose whose keypoints repeat others' this much is no
                                     # one (core.pose.nms.pose_nms; > 1: off)
    keep_undetected: bool = True     # a person whose box follows their keypoints stays when
                                     # a detector pass misses them, while their pose stays
                                     # confident (detectors miss backlit or unusual poses);
                                     # with detect_every=1 the detector alone decides
    live_flip_test: bool = False     # live mode: keep the pose model's flip test (off: half
                                     # the network work per person, to stay real-time)
    detect_ahead: bool = True        # batch mode: the detector runs on its own thread on the
                                     # queued frames it is scheduled for, beside the pose
                                     # model (PoseStep.detect_ahead; the same people)
    backfill: bool = True            # batch mode: frames wait for the detector's next pass,
                                     # and people it finds first are followed back through
                                     # them (PoseStep.backfill; not with attention kept)

    def __post_init__(self) -> None:
        if self.mode not in ("batch", "live"):
            raise ValueError(f"mode must be 'batch' or 'live', not {self.mode!r}")
        if self.detect_every < 1:
            raise ValueError("detect_every must be >= 1")

    def step_config(self) -> StepConfig:
        return StepConfig(detect_every=self.detect_every,
                          min_keypoint_score=self.min_keypoint_score,
                          box_margin=self.box_margin, max_people=self.max_people,
                          pose_nms_oks=self.pose_nms_oks, joint_share=self.joint_share,
                          keep_undetected=self.keep_undetected, attention=self.attention,
                          keep_images=self.keep_images,
                          retry_collapsed=self.mode == "batch")


@dataclass(frozen=True)
class PipelineError:
    """An exception in a stage, reported as an event (the pipeline stops after it)."""

    stage: str
    frame_index: int | None
    error: BaseException

    def __str__(self) -> str:
        where = f"frame {self.frame_index}" if self.frame_index is not None else "start-up"
        return f"{self.stage} failed at {where}: {self.error}"


@dataclass(frozen=True)
class PipelineFinished:
    """The source is exhausted (or the run was stopped); final statistics."""

    frames: int
    dropped: int
    cancelled: bool


@dataclass
class PipelineStats:
    frames_in: int = 0
    frames_out: int = 0
    dropped: int = 0
    detector_runs: int = 0
    backfilled: int = 0              # person-frames added by following people back
    # summed per stage; "detect" is what the inference thread spent on the detector (for a
    # pass started ahead on the detector's own thread, only the wait for its result)
    stage_ms: dict[str, float] = field(default_factory=lambda: {
        "read": 0.0, "detect": 0.0, "pose": 0.0, "track": 0.0})
    last_latency_ms: float = 0.0


@dataclass
class _Item:
    generation: int
    frame: Frame
    t_read: float
    read_ms: float
    inferred: FrameInference | None = None


class _LatestSlot:
    """A one-item mailbox for live mode: a new frame replaces an unread one (counted as
    dropped). The end-of-stream marker never replaces a frame: it is delivered after it."""

    def __init__(self) -> None:
        self._item: Any = None
        self._has = False
        self._stop_after = False
        self._cv = threading.Condition()
        self.dropped = 0

    def put(self, item: Any, stop: threading.Event) -> None:
        with self._cv:
            if item is _STOP and self._has:
                self._stop_after = True
            else:
                if self._has:
                    self.dropped += 1
                self._item, self._has = item, True
            self._cv.notify()

    def get(self, timeout: float) -> Any:
        with self._cv:
            if not self._has and not self._stop_after:
                self._cv.wait(timeout)
            if self._has:
                item, self._item, self._has = self._item, None, False
                return item
            if self._stop_after:
                self._stop_after = False
                return _STOP
            raise queue.Empty

    def clear(self) -> None:
        with self._cv:
            self._item, self._has = None, False


class _BoundedQueue:
    """queue.Queue whose put gives up when the pipeline stops (so nothing blocks forever)."""

    def __init__(self, size: int) -> None:
        self._q: queue.Queue = queue.Queue(maxsize=size)
        self.dropped = 0

    def put(self, item: Any, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self._q.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def get(self, timeout: float) -> Any:
        return self._q.get(timeout=timeout)

    def clear(self) -> None:
        try:
            while True:
                self._q.get_nowait()
        except queue.Empty:
            pass


class PosePipeline:
    """Run source -> detector -> pose -> tracker on worker threads.

    Use `events()` to consume PoseFrame / PipelineError / PipelineFinished in order, or
    `run(callback)` for a blocking batch run. `pause()`, `resume()`, `seek(i)` and `stop()`
    may be called from any thread.
    """

    def __init__(self, source: Any, detector: PersonDetector, pose: PoseBackend,
                 tracker: Tracker, config: PipelineConfig = PipelineConfig()) -> None:
        self.source = source
        if config.mode == "live" and not config.live_flip_test and hasattr(pose, "without_flip"):
            pose = pose.without_flip()
        self.step = PoseStep(detector, pose, tracker, config.step_config())
        self.config = config
        self.stats = PipelineStats()
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._lock = threading.Lock()
        self._generation = 0
        self._seek_to: int | None = None
        live = config.mode == "live"
        self._frames = _LatestSlot() if live else _BoundedQueue(config.queue_size)
        self._inferred = _BoundedQueue(config.queue_size)
        self._out: queue.Queue = queue.Queue(maxsize=0 if live else config.queue_size)
        self._threads: list[threading.Thread] = []

    @property
    def detector(self) -> PersonDetector:
        return self.step.detector

    @property
    def pose(self) -> PoseBackend:
        return self.step.pose

    @property
    def tracker(self) -> Tracker:
        return self.step.tracker

    # ---- control -------------------------------------------------------------------
    def start(self) -> "PosePipeline":
        if self._threads:
            raise RuntimeError("pipeline already started")
        for name, target in (("reader", self._reader), ("inference", self._inference),
                             ("tracker", self._tracking)):
            t = threading.Thread(target=target, name=f"pose-pipeline-{name}", daemon=True)
            self._threads.append(t)
            t.start()
        return self

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def seek(self, index: int) -> None:
        """Continue from frame `index`: in-flight frames are discarded, tracks reset."""
        with self._lock:
            self._seek_to = int(index)
            self._generation += 1

    def stop(self, timeout: float | None = 2.0) -> bool:
        """Stop every worker; True when all joined within the timeout (None: wait until
        they have, which is what a process about to exit needs)."""
        self._stop.set()
        self._running.set()
        try:
            self.source.close()        # unblocks a reader waiting on a camera
        except Exception:
            pass
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            if t.ident is None:        # start() was interrupted before this one started
                continue
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def __enter__(self) -> "PosePipeline":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ---- consuming -----------------------------------------------------------------
    def events(self, timeout: float | None = None) -> Iterator[Any]:
        """Yield events until PipelineFinished or PipelineError (then the pipeline stops)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = 0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic()))
            try:
                ev = self._out.get(timeout=wait)
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    return
                if self._stop.is_set() and not any(t.is_alive() for t in self._threads):
                    return
                continue
            yield ev
            if isinstance(ev, (PipelineFinished, PipelineError)):
                self.stop()
                return

    def latest(self) -> Any | None:
        """Non-blocking: the newest event waiting (older PoseFrames are skipped)."""
        newest = None
        while True:
            try:
                ev = self._out.get_nowait()
            except queue.Empty:
                return newest
            if not isinstance(ev, PoseFrame):
                return ev
            newest = ev

    def run(self, on_frame: Callable[[PoseFrame], None] | None = None) -> PipelineFinished:
        """Blocking batch run; raises the first stage error as its original exception."""
        try:
            if not self._threads:
                self.start()         # in the try: an interrupt can land while threads start
            for ev in self.events():
                if isinstance(ev, PoseFrame):
                    if on_frame is not None:
                        on_frame(ev)
                elif isinstance(ev, PipelineError):
                    raise ev.error
                elif isinstance(ev, PipelineFinished):
                    return ev
        finally:
            # Wait for the workers to finish the frame in hand, however long a loaded machine
            # takes: a daemon thread still inside onnxruntime when the interpreter exits (an
            # interrupted batch run) is unwound through C++ frames that forbid it, and the
            # process aborts ("terminate called without an active exception").
            self.stop(timeout=None)
        return PipelineFinished(self.stats.frames_out, self.stats.dropped, True)

    # ---- stages --------------------------------------------------------------------
    def _emit(self, ev: Any) -> None:
        while not self._stop.is_set():
            try:
                self._out.put(ev, timeout=0.05)
                return
            except queue.Full:
                continue
        if isinstance(ev, (PipelineError, PipelineFinished)):
            try:
                self._out.put_nowait(ev)
            except queue.Full:
                pass

    def _fail(self, stage: str, frame_index: int | None, error: BaseException) -> None:
        self._emit(PipelineError(stage, frame_index, error))
        self._stop.set()

    def _reader(self) -> None:
        index = None
        try:
            it = iter(self.source)
            while not self._stop.is_set():
                if not self._running.wait(0.05):
                    continue
                with self._lock:
                    seek, self._seek_to = self._seek_to, None
                    gen = self._generation
                if seek is not None:
                    self.source.seek(seek)
                    it = iter(self.source)
                    self._frames.clear()
                t0 = time.perf_counter()
                try:
                    frame = next(it)
                except StopIteration:
                    if self._seek_pending():
                        continue
                    break
                index = frame.index
                self.stats.frames_in += 1
                self._frames.put(_Item(gen, frame, time.perf_counter(),
                                       (time.perf_counter() - t0) * 1e3), self._stop)
            self._frames.put(_STOP, self._stop)
        except Exception as e:              # noqa: BLE001 - reported as an event
            if not self._stop.is_set():
                self._fail("reader", index, e)

    def _seek_pending(self) -> bool:
        with self._lock:
            return self._seek_to is not None

    def _current_generation(self) -> int:
        with self._lock:
            return self._generation

    def _take(self, q: Any) -> Any:
        while not self._stop.is_set():
            try:
                return q.get(timeout=0.05)
            except queue.Empty:
                continue
        return _STOP

    def _inference(self) -> None:
        item = None
        gen_seen = 0
        waiting: deque = deque()       # frames taken from the queue to look ahead at
        held = HeldFrames(self.step) if self._backfills() else None
        try:
            while True:
                # (frames looked ahead at wait outside the queue: a stop ends them too)
                item = (waiting.popleft() if waiting and not self._stop.is_set()
                        else self._take(self._frames))
                if item is _STOP:
                    self._release(held)
                    self._inferred.put(_STOP, self._stop)
                    return
                if item.generation != self._current_generation():
                    continue                  # a seek happened: this frame is stale
                if item.generation != gen_seen:
                    gen_seen = item.generation
                    self._release(held)
                    self.step.reset_inference()
                batch = [item]
                if self._can_batch_frames():
                    batch += self._more_frames(self.config.frames_per_batch - 1, waiting)
                items = [b for b in batch if b is not _STOP]
                if self._looks_ahead() and not any(b is _STOP for b in batch):
                    self._look_ahead(items, waiting)
                for it, inferred in zip(items, self.step.infer([it.frame for it in items])):
                    it.inferred = inferred
                    self.stats.stage_ms["pose"] += inferred.pose_ms
                    self.stats.stage_ms["detect"] += inferred.detect_ms
                self.stats.detector_runs = self.step.detector_runs
                for b in batch:
                    if b is _STOP:
                        self._release(held)
                        self._inferred.put(_STOP, self._stop)
                        return
                    if held is None:
                        self._inferred.put(b, self._stop)
                        continue
                    t0 = time.perf_counter()
                    done = held.push(b, b.inferred)
                    self.stats.stage_ms["pose"] += (time.perf_counter() - t0) * 1e3
                    self.stats.backfilled = held.added
                    self._pass_on(done)
        except Exception as e:              # noqa: BLE001
            if not self._stop.is_set():
                self._fail(self.step.stage, getattr(getattr(item, "frame", None), "index", None),
                           e)
        finally:
            self.step.close()

    def _can_batch_frames(self) -> bool:
        c = self.config
        return c.mode == "batch" and c.detect_every == 1 and c.frames_per_batch > 1

    def _backfills(self) -> bool:
        c = self.config
        return c.mode == "batch" and c.backfill and c.detect_every > 1 and not c.attention

    def _pass_on(self, items: list[_Item]) -> None:
        for it in items:
            self._inferred.put(it, self._stop)

    def _release(self, held: HeldFrames | None) -> None:
        """Every frame held back passes on to tracking (the end of a run, a seek)."""
        if held is not None:
            self._pass_on(held.flush())

    def _looks_ahead(self) -> bool:
        return self.config.mode == "batch" and self.config.detect_ahead

    def _look_ahead(self, items: list[_Item], waiting: deque) -> None:
        """Hand the step the frames to infer now and those already queued behind them, far
        enough to reach the detector's next scheduled pass (or the next batch, with the
        detector on every frame). Never waits for frames: a paused or slow source simply
        gets no pass ahead."""
        c = self.config
        depth = c.frames_per_batch if c.detect_every == 1 else self.step.detect_lead + 1
        while len(waiting) < depth and (not waiting or waiting[-1] is not _STOP):
            try:
                waiting.append(self._frames.get(timeout=0.0))
            except queue.Empty:
                break
        gen = items[0].generation
        upcoming = [it.frame for it in items]
        for w in waiting:
            if w is _STOP or w.generation != gen:
                break
            upcoming.append(w.frame)
        self.step.detect_ahead(upcoming)

    def _more_frames(self, n: int, waiting: deque) -> list[Any]:
        got = []
        for _ in range(n):
            if waiting:
                nxt = waiting.popleft()
            else:
                try:
                    nxt = self._frames.get(timeout=0.0)
                except queue.Empty:
                    break
            got.append(nxt)
            if nxt is _STOP:
                break
        return got

    def _tracking(self) -> None:
        item = None
        frames = 0
        gen_seen = 0
        try:
            while True:
                item = self._take(self._inferred)
                if item is _STOP:
                    break
                if item.generation != self._current_generation():
                    continue
                if item.generation != gen_seen:
                    gen_seen = item.generation
                    self.tracker.reset()
                pose_frame = self.step.track(item.inferred, {"read": item.read_ms})
                # latency: read to tracked (what a live viewer waits for)
                latency = (time.perf_counter() - item.t_read) * 1e3
                pose_frame.timings_ms["latency"] = latency
                self.stats.stage_ms["track"] += pose_frame.timings_ms["track"]
                self.stats.stage_ms["read"] += item.read_ms
                self.stats.last_latency_ms = latency
                frames += 1
                self.stats.frames_out = frames
                self.stats.dropped = self._frames.dropped
                self._emit(pose_frame)
            if not self._stop.is_set():
                self.stats.dropped = self._frames.dropped
                self._emit(PipelineFinished(frames, self._frames.dropped, False))
        except Exception as e:              # noqa: BLE001
            if not self._stop.is_set():
                self._fail("tracker", getattr(getattr(item, "frame", None), "index", None), e)
