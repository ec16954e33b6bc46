"""Builds the pipeline's stages from a small config; shared by the CLI and the GUI.

Models are loaded once per Engine and reused for every source; each pipeline gets a fresh
tracker.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import cpu
from .catalogue import int8_stem_path, shown_path
from .errors import InputError, StudioError
from .io_utils import log
from .pipeline import PipelineConfig, PipelineMode, PosePipeline
from .step import PoseStep
from .types import PersonDetector, PoseBackend
from .tracking import PoseTracker, TrackerConfig


@dataclass(frozen=True)
class EngineConfig:
    model: str = "auto"            # auto | mediapipe | zoo name | .pth file
    detector: str = "auto"         # auto | blazepose | hog | yolox-nano | onnx:PATH
    device: str = "auto"           # auto | cpu | cuda | cuda:N
    smoothing: str = "kalman"      # kalman | one-euro | none
    smoothing_strength: float = 1.0
    detect_every: int = 5
    flip_test: bool = True
    frames_per_batch: int = 0      # batch mode, detector every frame: 0 = auto (8 on CUDA, else 1)
    cuda_graphs: bool = False      # TransPose on CUDA: one CUDA graph per batch size (compiled
                                   # when the engine is built; see EstimatorConfig.cuda_graphs)
    detect_ahead: bool = True      # batch mode: detector passes start on their own thread on
                                   # queued frames (PipelineConfig.detect_ahead; same people)
    backfill: bool = True          # batch mode: people the detector finds first are followed
                                   # back to the frames since its last pass (PipelineConfig)
    live_int8: bool = True         # live mode on a CPU: TransPose-M's int8 stem, where one
                                   # lies beside its weights (Engine.live_pose)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)


@dataclass
class Engine:
    config: EngineConfig
    detector: PersonDetector
    pose: PoseBackend
    pose_description: str
    _live_pose: PoseBackend | None = field(default=None, init=False, repr=False)

    def _int8_stem_beside(self) -> Path | None:
        """The <weights>.stem-int8.onnx live mode could run, or None: only for TransPose-M
        on the CPU with its float32 stem in onnxruntime, a file beside its weights (the
        shipped tp-m-s16 has one), and EngineConfig.live_int8."""
        pose = self.pose
        stem = getattr(getattr(pose, "model", None), "stem", None)
        if not self.config.live_int8 or getattr(stem, "int8", True) or \
                getattr(getattr(pose, "device", None), "type", "") != "cpu":
            return None                      # not an onnxruntime float32 stem on the CPU
        path = int8_stem_path(getattr(pose, "weights_name", "") or "-")
        return path if path.is_file() else None

    def live_int8_stem(self) -> Path | None:
        """The int8 stem live mode runs (`live_pose`), or None: the one beside the weights,
        on a CPU whose int8 sums do not clip (core.cpu; without VNNI the float32 stem
        stays)."""
        if cpu.int8_saturates():
            return None
        return self._int8_stem_beside()

    def live_pose(self) -> PoseBackend:
        """The pose model live mode runs (its flip test is dropped as well, by the
        pipeline). On a CPU, TransPose-M with its int8 stem (`live_int8_stem`): without
        the flip test it is as accurate as the float32 stem (public set mean OKS 0.583
        against 0.581) at about 1.9x the speed (11.7 against 22.0 ms a person), which keeps
        an HD clip real-time on 2 cores. Built on first use (a second copy of the small
        encoder and head); elsewhere the engine's own pose model. An int8 file that does
        not load (damaged, made for other weights) leaves live mode on the float32 stem,
        with a warning and the reason in pose_description: it is a speed-up, and playback
        must not fail for it."""
        if self._live_pose is None:
            path = self.live_int8_stem()
            if path is None:
                self._live_pose = self.pose
            else:
                from .pose.estimator import TopDownEstimator
                pose: Any = self.pose
                try:
                    self._live_pose = TopDownEstimator.from_weights(
                        pose.weights_name,
                        dataclasses.replace(pose.config, stem_int8=str(path)), progress=False)
                except StudioError as e:
                    self._live_pose = self.pose
                    self.pose_description = self.pose_description.replace(
                        _live_int8_note(path), "") + \
                        f"; live mode: float32 stem (the int8 stem did not load: {e})"
                    log(f"warning: {e}; live mode runs the float32 stem")
        return self._live_pose

    def with_config(self, config: EngineConfig, detector: PersonDetector) -> "Engine":
        """This engine's pose models (the live twin too, once built) under `config`, whose
        pose model must be the same, with `detector`: the GUI changing the detector or the
        smoothing without loading the pose model again."""
        other = Engine(config, detector, self.pose, self.pose_description)
        if config.live_int8 == self.config.live_int8:
            other._live_pose = self._live_pose
        return other

    @property
    def model_name(self) -> str:
        return str(getattr(self.pose, "variant", None) or getattr(self.pose, "name", "") or
                   self.config.model)

    @property
    def weights(self) -> str:
        return str(getattr(self.pose, "weights_name", "") or self.config.model)

    def tracker(self, mode: str = "batch") -> PoseTracker:
        c = self.config
        changes = {"smoothing": c.smoothing, "strength": c.smoothing_strength}
        if mode == "batch":
            # An annotation should start at a person's first frame; live previews wait for
            # a few hits so one-frame false detections do not flicker on screen.
            changes["min_hits"] = 1
        return PoseTracker(dataclasses.replace(c.tracker, **changes))

    def pose_for(self, mode: PipelineMode = "batch") -> PoseBackend:
        """The pose model that `mode` runs frame by frame: live mode's (`live_pose`,
        without its flip test) or the engine's own. What explains a frame afterwards must
        be the model that posed it."""
        if mode != "live":
            return self.pose
        pose = self.live_pose()
        return pose.without_flip() if hasattr(pose, "without_flip") else pose

    def step(self, *, mode: PipelineMode = "batch", attention: bool = False,
             keep_images: bool = False) -> PoseStep:
        """The synchronous per-frame step with this engine's models and a fresh tracker:
        ``step(frame) -> PoseFrame`` gives the same people as ``pipeline`` frame by frame,
        except those a batch pipeline follows back from the detector's next pass
        (``core.step.run_batch(step, frames)`` gives exactly the batch pipeline's)."""
        return PoseStep(self.detector, self.pose_for(mode), self.tracker(mode), PipelineConfig(
            mode=mode, detect_every=self.config.detect_every, keep_images=keep_images,
            attention=attention).step_config())

    def pipeline(self, source, *, mode: PipelineMode = "batch", keep_images: bool = False,
                 attention: bool = False, queue_size: int = 8,
                 tracker: PoseTracker | None = None) -> PosePipeline:
        """The threaded pipeline on `source` with this engine's models; `tracker`: one to go
        on with (the GUI shares one between playback and still frames), else a fresh one."""
        fpb = self.config.frames_per_batch
        if fpb <= 0:
            device = getattr(getattr(self.pose, "device", None), "type", "cpu")
            fpb = 8 if device == "cuda" else 1     # on a GPU, several frames' crops per batch
        tracker = tracker if tracker is not None else self.tracker(mode)
        pose = self.live_pose() if mode == "live" else self.pose
        return PosePipeline(source, self.detector, pose, tracker, PipelineConfig(
            mode=mode, detect_every=self.config.detect_every, keep_images=keep_images,
            attention=attention, queue_size=max(queue_size, 2 * fpb), frames_per_batch=fpb,
            detect_ahead=self.config.detect_ahead, backfill=self.config.backfill))


def _live_int8_note(path: Path) -> str:
    return f"; live mode: int8 stem ({shown_path(path)})"


def build_engine(config: EngineConfig = EngineConfig(), progress: bool = True) -> Engine:
    """Load the detector and the pose model (StudioError with a clear message on failure)."""
    from .detection import create_detector
    from .pose.backends import create_pose_backend

    pose, description = create_pose_backend(config.model, config.device,
                                            flip_test=config.flip_test, progress=progress,
                                            cuda_graphs=config.cuda_graphs)
    if config.cuda_graphs:
        if not hasattr(pose, "warm_up"):
            raise InputError(f"CUDA graphs are for TransPose models, not {description}")
        if progress:
            log("compiling CUDA graphs for batches of 1-8 people (once per run; this takes "
                "a minute or two) ...")
        pose.warm_up()
    # YOLOX goes where the pose model went, when onnxruntime can run it there
    detector = create_detector(config.detector, device=str(getattr(pose, "device", "cpu")))
    engine = Engine(config, detector, pose, description)
    int8 = engine._int8_stem_beside()
    if int8 is not None:
        engine.pose_description += (
            f"; live mode: float32 stem ({cpu.INT8_SATURATION_NOTE})" if cpu.int8_saturates()
            else _live_int8_note(int8))
    return engine
