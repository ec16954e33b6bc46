"""Engine and pipeline lifecycle for the GUI, on worker threads.

The GUI thread never decodes, detects or infers, and never waits for a thread (only on
closing, bounded by a timeout):
* one `JobWorker` thread ("gui-worker", app.worker) runs every slow step in order: loading
  models, opening sources, stopping/starting the live pipeline, single still frames;
* a second one ("gui-reader") only decodes: with a source of its own it reads the frame a
  seek or a step asks for and hands it over at once, image only (`preview_ready`), so the
  picture follows the slider while the pose of an earlier frame is still being computed;
  the processed frame (`frame_ready`) replaces it when ready;
* while playing, a live `PosePipeline` runs on its own threads and a QTimer on the GUI thread
  polls `pipeline.latest()` (non-blocking), so display is decoupled from processing;
* results come back to the GUI thread as queued Qt signals.

Only one thing uses the engine's models at a time (LiteRT interpreters are not thread-safe):
the live pipeline is stopped (joined) on the worker before a still frame is computed there.
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import deque
from typing import Any, Callable

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from core.engine import Engine, EngineConfig, build_engine
from core.errors import StudioError
from core.pipeline import PipelineError, PipelineFinished, PipelineMode, PosePipeline
from core.step import PoseStep, StepConfig, explain
from core.types import Frame, PoseFrame

# EngineInfo, SourceInfo, PlaybackStats and lower_priority are also imported from here
# (app.main_window, app.renderer)
from .infos import EngineInfo, PlaybackStats, SourceInfo, engine_info, same_models, source_info
from .memory import release_free_memory
from .pacing import PacedSource
from .responsiveness import lower_priority, settle_garbage_collector
from .worker import CountingWorker

log = logging.getLogger(__name__)

STATS_WINDOW_S = 3.0      # the status bar's rates: frames counted over the last seconds
MAX_CONTINUE_GAP = 10     # a still frame this few frames after the last one goes on tracking


class Controller(QObject):
    """Owns the engine, the source and the pipelines; the window talks only to this.

    GUI-thread API: set_engine_config, open_source, play, pause, toggle, seek, step,
    set_speed, set_attention, refresh_attention, shutdown. Everything slow is a worker job.

    Positions: `position` is the frame asked for last (a seek, a step, Home/End), else the
    frame on screen; steps add up on it, so quick key presses are never lost, and
    `position_requested` tells the window at once (the picture follows).
    """

    engine_ready = Signal(object)          # EngineInfo
    engine_failed = Signal(str)
    busy_changed = Signal(bool, str)
    source_opened = Signal(object)         # SourceInfo
    source_failed = Signal(str)
    frame_ready = Signal(object)           # PoseFrame to display
    preview_ready = Signal(object)         # PoseFrame without people: the raw frame, at once
    position_requested = Signal(int)       # the frame just asked for (before it is shown)
    state_changed = Signal(str)            # playing | paused | idle
    message = Signal(str, str)             # level (info|warning|error), text
    stats_changed = Signal(object)         # PlaybackStats
    # internal: worker -> GUI thread
    _live_started = Signal(object, int)
    _still_done = Signal(object, int)
    _worker_message = Signal(str, str)
    _preview_read = Signal(object, int, int, bool)   # Frame or None, index, epoch, then still
    _finished_note = Signal(str, int)
    _engine_result = Signal(object, str, bool)
    _source_result = Signal(object, str, bool, int)
    _job_done = Signal()

    def __init__(self, parent: QObject | None = None, poll_ms: int = 10) -> None:
        super().__init__(parent)
        # Jobs counted on the GUI thread: a job is finished for the GUI only when its
        # "done" signal arrives, i.e. after every result it posted (same queue, in order).
        self._outstanding = 0
        self.worker = CountingWorker(on_added=self._count_job, on_done=self._job_done.emit)
        # decodes the frames asked for, with a source of its own (never the models)
        self.reader = CountingWorker(on_added=self._count_job, on_done=self._job_done.emit,
                                     name="gui-reader")
        # --- GUI-thread state
        self._epoch = 0                    # bumped by every transport change: stale results drop
        self._playing = False
        self._live: PosePipeline | None = None
        self._current: PoseFrame | None = None
        self._current_mode: PipelineMode = "batch"     # how _current was posed
        self._source_info: SourceInfo | None = None
        self._engine_info: EngineInfo | None = None
        self._engine_pending = False
        self._config = EngineConfig()
        self._want_attention = False
        self._speed = 1.0
        self._open_seq = 0
        self._open_start = 0
        self._frames_done = 0              # frames processed by earlier live pipelines
        self._closed = False
        self._target: int | None = None    # the frame asked for last (None: the one shown)
        self._still_fresh = True           # the newest still request starts new tracks
        self._live_shown_epoch = -1        # the epoch in which a live frame was last shown
        # (pipeline, samples (time, frames in, frames out)) for the status bar's rates
        self._rates: tuple[PosePipeline, deque] | None = None
        # --- worker-thread state (only touched inside jobs)
        self._w_engine: Engine | None = None
        self._w_source: Any = None
        self._w_spec: str | None = None
        self._w_tracker: Any = None
        self._w_live: PosePipeline | None = None
        self._w_paced: PacedSource | None = None
        self._w_last_index: int | None = None  # the tracker's last frame (None: unknown)
        self._frames_found: int | None = None  # a file cut short: the frames it really has
        # --- reader-thread state (only touched inside reader jobs)
        self._r_source: Any = None
        # every pipeline that may have threads, so shutdown can stop them all
        self._active: set[PosePipeline] = set()
        self._active_lock = threading.Lock()

        self._connect_worker_results()
        self._poll = self._start_timer(poll_ms, self._poll_pipeline)
        self._stats_timer = self._start_timer(500, self._update_stats)

    def _connect_worker_results(self) -> None:
        """The worker's internal signals, delivered (queued) on the GUI thread."""
        self._live_started.connect(self._on_live_started)
        self._still_done.connect(self._on_still_done)
        self._worker_message.connect(self.message)
        self._preview_read.connect(self._on_preview_read)
        self._finished_note.connect(self._on_finished_note)
        self._engine_result.connect(self._on_engine_result)
        self._source_result.connect(self._on_source_result)
        self._job_done.connect(self._on_job_done)

    def _start_timer(self, interval_ms: int, slot: Callable[[], None]) -> QTimer:
        timer = QTimer(self)
        timer.setInterval(interval_ms)
        timer.timeout.connect(slot)
        timer.start()
        return timer

    # ---- read-only state ---------------------------------------------------------------------
    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def current(self) -> PoseFrame | None:
        """The newest processed frame shown (never a raw preview)."""
        return self._current

    @property
    def position(self) -> int | None:
        """The frame asked for last (a seek or step not shown yet), else the one shown."""
        if self._target is not None:
            return self._target
        return self._current.index if self._current is not None else None

    @property
    def source(self) -> SourceInfo | None:
        return self._source_info

    @property
    def engine(self) -> EngineInfo | None:
        return self._engine_info

    @property
    def config(self) -> EngineConfig:
        return self._config

    @property
    def frames_processed(self) -> int:
        """Frames the live pipelines have processed (shown or not), for --exit-after."""
        live = self._live
        return self._frames_done + (live.stats.frames_out if live is not None else 0)

    @property
    def busy(self) -> bool:
        return not self.idle

    @property
    def idle(self) -> bool:
        """No job queued or running, and every result of the finished ones delivered."""
        return self._outstanding == 0 and not self._engine_pending

    def _count_job(self) -> None:
        self._outstanding += 1             # on the GUI thread: every submit happens there

    @Slot()
    def _on_job_done(self) -> None:
        self._outstanding = max(0, self._outstanding - 1)

    @property
    def live_pipeline(self) -> PosePipeline | None:
        return self._live

    # ---- engine ------------------------------------------------------------------------------
    def set_engine_config(self, config: EngineConfig) -> None:
        """Load (or adapt) the engine for this config on the worker, then carry on where we
        were: playing resumes at the current frame, a paused frame is recomputed."""
        was_playing = self._playing
        self._stop_live_gui()
        self._config = config
        self._engine_pending = True
        self.worker.submit(lambda: self._job_engine(config, was_playing), key="engine")

    def _job_engine(self, config: EngineConfig, resume: bool) -> None:
        self._stop_live_worker()
        old = self._w_engine
        label = f"Loading model {config.model}…"
        if old is None or not same_models(old.config, config):
            self.busy_changed.emit(True, label)
        try:
            engine = self._new_engine(config, old)
            # playback's model now, not on the first play: its description is then final
            # (an int8 stem that does not load says so in it)
            engine.live_pose()
        except StudioError as e:
            self.busy_changed.emit(False, "")
            self._engine_result.emit(None, str(e), resume)
            return
        except Exception as e:                       # noqa: BLE001 - shown, never a crash
            log.error("loading the model failed:\n%s", traceback.format_exc())
            self.busy_changed.emit(False, "")
            self._engine_result.emit(None, f"{config.model} (detector {config.detector}): "
                                           f"{type(e).__name__}: {e}", resume)
            return
        self._w_engine = engine
        self._w_tracker = engine.tracker("batch")
        self._w_last_index = None
        self.busy_changed.emit(False, "")
        self._engine_result.emit(engine_info(engine), "", resume)

    @staticmethod
    def _new_engine(config: EngineConfig, old: Engine | None) -> Engine:
        """The engine for `config`: a fresh build, or the old one's pose model kept."""
        if old is not None and same_models(old.config, config):
            # same pose model: keep it; a new detector only when that changed
            detector = old.detector
            if old.config.detector != config.detector:
                from core.detection import create_detector
                detector = create_detector(config.detector)
            return old.with_config(config, detector)
        return build_engine(config, progress=False)

    @Slot(object, str, bool)
    def _on_engine_result(self, info: EngineInfo | None, error: str, resume: bool) -> None:
        self._engine_pending = False
        if info is None:
            if self._engine_info is not None:
                self._config = self._engine_info.config      # still the previous engine
            self.engine_failed.emit(error)
        else:
            # Here on the GUI thread, never on the worker: a full collection finalises the
            # Python wrappers of Qt objects (earlier windows, widgets), and on the worker
            # thread that deadlocked against the event loop (the whole test suite hung in
            # gc.collect on the worker once in a few runs).
            settle_garbage_collector()
            self._engine_info = info
            self._config = info.config
            self.engine_ready.emit(info)
        if self._closed or self._source_info is None or self._engine_info is None:
            return
        if resume or self._playing or self._source_info.is_live:
            # carry on at the current frame with the new model
            self._playing = False
            self.play()
        else:
            self._request_still(self.position or 0)

    # ---- sources -----------------------------------------------------------------------------
    def open_source(self, spec: str, autoplay: bool = False, start: int = 0) -> None:
        """Open a video, folder, image or camera; show frame `start` (or play from it)."""
        self._stop_live_gui()          # the old source stays until the new one opened
        self._open_seq += 1
        self._open_start = max(0, int(start))
        seq = self._open_seq
        self.worker.submit(lambda: self._job_open(str(spec), autoplay, seq), key="open")

    def _job_open(self, spec: str, autoplay: bool, epoch: int) -> None:
        from core.video import open_source
        self._stop_live_worker()
        try:
            source = open_source(spec)
        except StudioError as e:
            self._source_result.emit(None, str(e), autoplay, epoch)
            return
        except Exception as e:                       # noqa: BLE001
            log.error("opening %s failed:\n%s", spec, traceback.format_exc())
            self._source_result.emit(None, f"{spec}: cannot be opened ({e})", autoplay, epoch)
            return
        self._replace_source(source, spec)
        try:
            info = source_info(spec, source)
        except StudioError as e:
            self._source_result.emit(None, str(e), autoplay, epoch)
            return
        self._source_result.emit(info, "", autoplay, epoch)

    def _replace_source(self, source: Any, spec: str) -> None:
        """Close the worker's old source, keep this one, and start a new tracker for it."""
        if self._w_source is not None:
            self._w_source.close()
        self._w_source, self._w_spec = source, spec
        self._w_last_index = None
        if self._w_engine is not None:
            self._w_tracker = self._w_engine.tracker("batch")

    @Slot(object, str, bool, int)
    def _on_source_result(self, info: SourceInfo | None, error: str, autoplay: bool,
                          epoch: int) -> None:
        if epoch != self._open_seq or self._closed:
            return                                     # another source was opened since
        if info is None:
            self.source_failed.emit(error)
            return
        self._source_info = info
        self._frames_found = None
        self._current = None
        self._current_mode = "batch"
        self._target = None
        spec = None if info.is_live else info.spec      # a camera cannot be opened twice
        self.reader.submit(lambda: self._job_reader_open(spec), key="reader-open")
        self.source_opened.emit(info)
        start = self._open_start
        if info.frame_count:
            start = min(start, info.frame_count - 1)
        if info.is_live:
            self.play()
        elif autoplay:
            self._start_live(start, fresh=True)
        else:
            self._request_still(start)

    # ---- transport ---------------------------------------------------------------------------
    def play(self) -> None:
        info = self._source_info
        if info is None or self._closed:
            return
        start, fresh = 0, True
        current, target = self._current, self._target
        if not info.is_live:
            if target is not None and (current is None or current.index != target):
                start = target                         # asked for, not processed yet: from it
            elif current is not None:
                start, fresh = current.index + 1, False   # resume: the same tracks go on
                total = self._frame_total()
                if total and start >= total:
                    start, fresh = 0, True             # at the end: play again from the start
        self._target = None
        self._start_live(start, fresh)

    def _start_live(self, start: int, fresh: bool) -> None:
        self._epoch += 1
        if not self._playing:
            self._playing = True
            self.state_changed.emit("playing")
        epoch, attention, speed = self._epoch, self.attention_active, self._speed
        self.worker.submit(lambda: self._job_start_live(start, attention, speed, epoch, fresh),
                           key="transport")

    def pause(self) -> None:
        if not self._playing:
            return
        self._stop_live_gui()
        self.state_changed.emit("paused")

    def toggle(self) -> None:
        self.pause() if self._playing else self.play()

    def seek(self, index: int) -> None:
        info = self._source_info
        if info is None or info.is_live:
            return
        index = max(0, int(index))
        total = self._frame_total()
        if total:
            index = min(index, total - 1)
        if self._playing:
            # Restart the live pipeline at the frame rather than PosePipeline.seek: that one
            # is lost when the reader already reached the end, while a restart always works.
            # The worker coalesces a burst of seeks (slider drag) into the newest one; the
            # reader shows the raw frame meanwhile.
            self._forget_live()
            self._set_target(index)
            self._start_live(index, fresh=True)
            epoch = self._epoch
            self.reader.submit(lambda: self._job_read(index, epoch, False), key="read")
            return
        self._request_still(index)

    def step(self, delta: int) -> None:
        info = self._source_info
        if info is None or info.is_live:
            return
        self.pause()
        # on the frame asked for last, not the one on screen: quick presses add up
        base = self.position or 0
        index = max(0, base + int(delta))
        total = self._frame_total()
        if total:
            index = min(index, total - 1)
        self._request_still(index, fresh=delta != 1)   # one frame on: the tracks go on

    def seek_end(self) -> None:
        total = self._frame_total()
        if total:
            self.pause()
            self.seek(total - 1)

    def _frame_total(self) -> int | None:
        """The frames of the open file: its header's count, or fewer once playback found
        that the file ends sooner (a download cut short)."""
        info = self._source_info
        if info is None:
            return None
        return self._frames_found or info.frame_count

    def set_speed(self, speed: float) -> None:
        self._speed = float(speed)
        paced = self._w_paced
        if paced is not None:
            paced.speed = self._speed                 # a float store: safe from any thread

    def set_attention(self, on: bool) -> None:
        """The user wants attention maps (or not). They are computed only while the model has
        them: playing restarts the pipeline with attention kept; a paused frame without maps
        gets them computed once."""
        before = self.attention_active
        self._want_attention = bool(on)
        now = self.attention_active
        if now != before and self._playing:
            self._restart_live()
        elif now:
            self.refresh_attention()

    @property
    def attention_active(self) -> bool:
        info = self._engine_info
        return self._want_attention and info is not None and info.has_attention

    def refresh_attention(self) -> None:
        frame = self._current
        if (frame is None or self._playing or not self.attention_active or frame.attention is not None
                or frame.image is None):
            return
        if not frame.people:
            self.message.emit("info", f"frame {frame.index}: no person found, so no attention "
                                      f"to show")
            return
        epoch, mode = self._epoch, self._current_mode
        self.worker.submit(lambda: self._job_attention(frame, epoch, mode), key="still")

    def _restart_live(self) -> None:
        self._stop_live_gui()
        self.play()

    def _set_target(self, index: int) -> None:
        self._target = index
        self.position_requested.emit(index)

    def _forget_live(self) -> None:
        """Stop polling the live pipeline (the worker stops it); keep its frame count."""
        if self._live is not None:
            self._frames_done += self._live.stats.frames_out
        self._live = None

    def _stop_live_gui(self) -> None:
        """GUI side of stopping: forget the pipeline now, let the worker join it."""
        self._epoch += 1
        was_playing = self._playing
        self._playing = False
        self._forget_live()
        if was_playing:
            epoch = self._epoch
            self.worker.submit(lambda: self._job_stop_live(epoch), key="transport")

    # ---- worker jobs -------------------------------------------------------------------------
    def _start_registered(self, pipeline: PosePipeline) -> bool:
        """Start a pipeline and register it for shutdown, atomically with respect to
        shutdown (which must never join a thread that is not started yet). False once the
        window is closing."""
        with self._active_lock:
            if self._closed:
                return False
            pipeline.start()
            self._active.add(pipeline)
        lower_priority()
        return True

    def _unregister(self, pipeline: PosePipeline) -> None:
        with self._active_lock:
            self._active.discard(pipeline)

    def _stop_live_worker(self) -> PoseFrame | None:
        """Stop and join the live pipeline; the newest frame it had not yet handed over."""
        live, self._w_live, self._w_paced = self._w_live, None, None
        if live is None:
            return None
        joined = live.stop(timeout=2.0)
        self._unregister(live)
        if not joined and self._w_source is not None:
            # a reader still inside a read: close the source to free it, reopen on demand
            self._w_source.close()
            self._w_source = None
        newest = self._newest_frame(live)
        # the tracker's last frame: the newest one not yet handed over, else unknown
        self._w_last_index = newest.index if newest is not None else None
        release_free_memory()          # its threads' frames: back to the system (app.memory)
        return newest

    @staticmethod
    def _newest_frame(pipeline: PosePipeline) -> PoseFrame | None:
        """Drain a stopped pipeline's frames: the newest one, None when it had none."""
        newest = None
        while True:
            ev = pipeline.latest()
            if ev is None or not isinstance(ev, PoseFrame):
                break
            newest = ev
        return newest

    def _ensure_source(self) -> Any:
        if self._w_source is None and self._w_spec is not None:
            from core.video import open_source
            self._w_source = open_source(self._w_spec)
        return self._w_source

    def _job_stop_live(self, epoch: int) -> None:
        last = self._stop_live_worker()
        if last is not None:
            self._still_done.emit(last, epoch)

    def _job_start_live(self, start: int, attention: bool, speed: float, epoch: int,
                        fresh: bool) -> None:
        self._stop_live_worker()
        if epoch != self._epoch or self._closed:
            return
        engine = self._w_engine
        if engine is None:
            return                      # the engine job will restart playback when it is done
        source = self._source_at(start, epoch)
        if source is None:
            return
        if self._w_tracker is None:
            self._w_tracker = engine.tracker("batch")
        elif fresh:
            # a seek (or a start over) is a new sequence; resuming after a pause continues
            # the tracks, so ids stay the same across pause/play
            self._w_tracker.reset()
        paced = PacedSource(source, speed)
        pipeline = self._new_live_pipeline(engine, paced, attention)
        if not self._start_registered(pipeline):
            return
        self._w_live, self._w_paced = pipeline, paced
        self._live_started.emit(pipeline, epoch)

    def _source_at(self, start: int, epoch: int) -> Any:
        """The worker's source, at frame `start` unless live; None when there is none or it
        failed (then the error is shown and playback ends)."""
        try:
            source = self._ensure_source()
            if source is None:
                return None
            if not source.is_live:
                source.seek(start)
        except StudioError as e:
            self._worker_message.emit("error", str(e))
            self._finished_note.emit("", epoch)
            return None
        return source

    def _new_live_pipeline(self, engine: Engine, paced: PacedSource,
                           attention: bool) -> PosePipeline:
        # The GUI shares one tracker between playback and still frames; it is the engine's
        # "batch" tracker (people shown from their first frame) so that a paused or seeked
        # frame shows everyone at once instead of waiting for confirmations.
        return engine.pipeline(paced, mode="live", keep_images=True, attention=attention,
                               tracker=self._w_tracker)

    def _job_still(self, index: int, attention: bool, epoch: int, fresh: bool,
                   frame: Frame | None = None) -> None:
        """One frame through the pipeline (detector, pose, tracker) while paused; `frame`
        when the reader already decoded it."""
        self._stop_live_worker()
        if epoch != self._epoch or self._closed or self._w_engine is None:
            return
        # the tracks go on only one step (or a few) after the tracker's last frame: a burst
        # of requests may have replaced the one that started new tracks
        last = self._w_last_index
        if not fresh and last is not None and not 0 < index - last <= MAX_CONTINUE_GAP:
            fresh = True
        if fresh and self._w_tracker is not None:
            self._w_tracker.reset()
        engine = self._w_engine
        if frame is None:
            frame = self._read_frame(index)
        if frame is None:
            return
        if self._w_tracker is None:
            self._w_tracker = engine.tracker("batch")
        result = self._still_step(engine, frame, index, attention)
        self._w_last_index = index if result is not None else None
        if result is not None and epoch == self._epoch and not self._closed:
            self._still_done.emit(result, epoch)

    # ---- reader jobs (the "gui-reader" thread) -------------------------------------------
    def _job_reader_open(self, spec: str | None) -> None:
        """The reader's own copy of the source (None: none, e.g. a camera)."""
        old, self._r_source = self._r_source, None
        if old is not None:
            old.close()
        if spec is None or self._closed:
            return
        from core.video import open_source
        try:
            self._r_source = open_source(spec)
        except Exception as e:                       # noqa: BLE001 - the worker reads instead
            log.warning("%s: no second reader for quick previews (%s)", spec, e)

    def _job_read(self, index: int, epoch: int, then_still: bool) -> None:
        """Decode frame `index` and hand it to the GUI thread at once (None: it could not be
        read here; then the worker reads it itself)."""
        if epoch != self._epoch or self._closed:
            return                                   # something newer was asked for
        frame = None
        source = self._r_source
        if source is not None:
            try:
                frame = source.read_at(index)
            except Exception as e:                   # noqa: BLE001 - the worker reports it
                log.debug("preview of frame %d failed: %s", index, e)
        self._preview_read.emit(frame, index, epoch, then_still)

    def _read_frame(self, index: int) -> Frame | None:
        """Frame `index` of the worker's source; None when there is none or it failed
        (then the error is shown)."""
        try:
            source = self._ensure_source()
            if source is None:
                return None
            return source.read_at(index)
        except StudioError as e:
            self._worker_message.emit("error", str(e))
            return None

    def _still_step(self, engine: Engine, frame: Frame, index: int,
                    attention: bool) -> PoseFrame | None:
        """Detector, pose and tracker on frame `index`; None when that failed (the error is
        shown)."""
        # the same per-frame step as playback and the CLI; a still frame always re-detects
        step = PoseStep(engine.detector, engine.pose, self._w_tracker,
                        StepConfig(detect_every=1, keep_images=True, attention=attention))
        try:
            return step(frame)
        except StudioError as e:
            self._worker_message.emit("error", f"frame {index}: {e}")
            return None
        except Exception as e:                       # noqa: BLE001
            log.error("still frame %d failed:\n%s", index, traceback.format_exc())
            self._worker_message.emit("error", f"frame {index} could not be processed: {e}")
            return None

    def _job_attention(self, frame: PoseFrame, epoch: int, mode: PipelineMode) -> None:
        """The paused frame's attention: the pose model that posed it (playback's, or still
        frames'), once, on the people already shown."""
        self._stop_live_worker()
        engine = self._w_engine
        if engine is None or epoch != self._epoch or self._closed:
            return
        try:
            explained = explain(engine.pose_for(mode), frame)
        except StudioError as e:
            self._worker_message.emit("error", f"attention for frame {frame.index}: {e}")
            return
        except Exception as e:                       # noqa: BLE001
            log.error("attention failed:\n%s", traceback.format_exc())
            self._worker_message.emit("error", f"attention for frame {frame.index} could not "
                                               f"be computed: {e}")
            return
        if explained.attention is None:
            return
        self._still_done.emit(explained, epoch)

    def _request_still(self, index: int, fresh: bool = True) -> None:
        """Show frame `index` while paused: the reader decodes it and the raw frame is shown
        at once; then the worker processes it (detector, pose, tracker)."""
        info = self._source_info
        if info is not None and info.is_live:
            return                      # a camera has no frame to go back to
        self._epoch += 1
        self._set_target(index)
        self._still_fresh = fresh
        epoch = self._epoch
        self.reader.submit(lambda: self._job_read(index, epoch, True), key="read")

    @Slot(object, int, int, bool)
    def _on_preview_read(self, frame: Frame | None, index: int, epoch: int,
                         then_still: bool) -> None:
        if epoch != self._epoch or self._closed:
            return                                   # a newer request replaced it
        current = self._current
        stale = self._playing and self._live_shown_epoch == epoch   # playback got there first
        same = current is not None and frame is not None and current.index == frame.index
        if frame is not None and not stale and not same:     # same: its pose is being redone
            self.preview_ready.emit(PoseFrame(frame.index, frame.time_s, frame.size_hw,
                                              image=frame.image))
        if then_still and not self._playing:
            attention, fresh = self.attention_active, self._still_fresh
            self.worker.submit(lambda: self._job_still(index, attention, epoch, fresh, frame),
                               key="still")

    # ---- GUI-thread slots --------------------------------------------------------------------
    @Slot(object, int)
    def _on_live_started(self, pipeline: PosePipeline, epoch: int) -> None:
        if epoch != self._epoch or not self._playing or self._closed:
            # paused (or closed) while it was starting: stop it, unless a newer start
            # already replaced it (that job stops it itself)
            def stop_if_stale() -> None:
                if self._w_live is pipeline and self._live is not pipeline:
                    self._stop_live_worker()
            self.worker.submit(stop_if_stale)
            return
        self._live = pipeline

    @Slot(object, int)
    def _on_still_done(self, frame: PoseFrame, epoch: int) -> None:
        if epoch != self._epoch or self._playing or self._closed:
            return
        self._show(frame)

    @Slot(str, int)
    def _on_finished_note(self, note: str, epoch: int) -> None:
        if epoch != self._epoch:
            return
        if note:
            self.message.emit("warning", note)
        if self._playing:
            self._stop_live_gui()
            self.state_changed.emit("paused")

    def _show(self, frame: PoseFrame, mode: PipelineMode = "batch") -> None:
        """Show `frame`, posed in `mode` (playback's frames live, still frames batch)."""
        self._current, self._current_mode = frame, mode
        self.frame_ready.emit(frame)

    def _poll_pipeline(self) -> None:
        live = self._live
        if live is None:
            return
        ev = live.latest()                 # never blocks
        if ev is None:
            return
        if isinstance(ev, PoseFrame):
            self._target = None
            self._live_shown_epoch = self._epoch
            self._show(ev, "live")
            return
        self._playback_ended(live, ev)

    def _playback_ended(self, live: PosePipeline, ev: Any) -> None:
        """A PipelineFinished or PipelineError: playback ends here."""
        note = ""
        if isinstance(ev, PipelineError):
            err = ev.error
            text = str(err) if isinstance(err, StudioError) else str(ev)
            self.message.emit("error", f"playback stopped: {text}")
        elif isinstance(ev, PipelineFinished):
            reason = getattr(live.source, "stopped_reason", None)
            if reason:
                note = f"{self._source_info.name if self._source_info else 'source'}: {reason}"
            found = getattr(live.source, "frames_available", None)
            if isinstance(found, int) and found > 0:
                self._frames_found = found       # seeks and the end stay within the file
        # any PoseFrame still queued behind the end is the last one processed
        self._stop_live_gui()
        self.state_changed.emit("paused")
        info = self._source_info
        total = self._frame_total()
        if (isinstance(ev, PipelineFinished) and info is not None and total and
                not info.is_live and self._current is not None and
                self._current.index < total - 1):
            # live mode may skip the last frames (newest wins): end on the real last one
            self._request_still(total - 1, fresh=False)
        if note:
            self.message.emit("warning", note)

    def _update_stats(self) -> None:
        """Input and processed rates over the last STATS_WINDOW_S seconds of this pipeline
        (a slow model finishes less than a frame per timer tick: counting per tick read
        0.0 fps most of the time)."""
        live = self._live
        if live is None:
            self._rates = None
            return
        now = time.monotonic()
        s = live.stats
        if self._rates is None or self._rates[0] is not live:
            self._rates = (live, deque())              # a new pipeline counts from 0
        samples = self._rates[1]
        samples.append((now, s.frames_in, s.frames_out))
        while len(samples) > 2 and now - samples[1][0] >= STATS_WINDOW_S:
            samples.popleft()
        t0, in0, out0 = samples[0]
        if now - t0 <= 0:
            return
        dt = now - t0
        self.stats_changed.emit(PlaybackStats(
            input_fps=max(0, s.frames_in - in0) / dt,
            processed_fps=max(0, s.frames_out - out0) / dt,
            latency_ms=float(s.last_latency_ms), dropped=int(s.dropped)))

    # ---- closing -----------------------------------------------------------------------------
    def shutdown(self, timeout: float = 1.5) -> bool:
        """Stop every pipeline and the worker; True when all threads ended in time."""
        with self._active_lock:
            if self._closed:
                return True
            self._closed = True
            pipelines = list(self._active)
        self._epoch += 1
        self._playing = False
        self._live = None
        self._poll.stop()
        self._stats_timer.stop()
        ok = self._join_threads(pipelines, timeout)
        if self._w_source is not None and ok:
            self._w_source.close()
        if self._r_source is not None and ok:
            self._r_source.close()
        return ok

    def _join_threads(self, pipelines: list[PosePipeline], timeout: float) -> bool:
        """Stop the pipelines and the worker within `timeout` s; True when all ended."""
        deadline = time.monotonic() + timeout
        # stop() of every pipeline first (they end in parallel), then join each
        for p in pipelines:
            p.stop(timeout=0.0)                        # signal all first, so they end together
        ok = True
        for p in pipelines:
            ok &= p.stop(timeout=max(0.05, deadline - time.monotonic()))
        self.reader.shutdown(0.0)                      # no new reads; joined below
        ok &= self.worker.shutdown(max(0.05, deadline - time.monotonic()))
        ok &= self.reader.shutdown(max(0.05, deadline - time.monotonic()))
        return ok
