"""What the GUI is told: plain, immutable descriptions of the engine, source and playback."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.engine import Engine, EngineConfig

from .pacing import DEFAULT_FOLDER_FPS


@dataclass(frozen=True)
class EngineInfo:
    config: EngineConfig
    description: str
    device: str
    has_attention: bool
    num_layers: int                 # layers the attention controls range over
    attention_kind: str = ""        # "encoder" (TransPose maps), "decoder" (TFPose) or ""


@dataclass(frozen=True)
class SourceInfo:
    spec: str
    name: str
    frame_count: int | None
    fps: float | None
    duration_s: float | None
    size_hw: tuple[int, int]
    is_live: bool
    kind: str                   # video | folder | image | camera


@dataclass(frozen=True)
class PlaybackStats:
    input_fps: float
    processed_fps: float
    latency_ms: float
    dropped: int


def engine_info(engine: Engine) -> EngineInfo:
    """What the window needs to know of a loaded engine. TransPose explains with its encoder
    attention (maps over the image, per encoder layer), TFPose with its decoder attention
    (joint-to-joint weights and sampling points, per decoder layer); the others have none."""
    pose = engine.pose
    model_config = getattr(pose, "model_config", None)
    kind, layers = "", 0
    if model_config is not None and hasattr(model_config, "n_layers"):
        kind, layers = "encoder", int(model_config.n_layers or 0)
    elif model_config is not None and hasattr(model_config, "dec_layers"):
        kind, layers = "decoder", int(model_config.dec_layers or 0)
    has_attention = bool(kind)
    device = str(getattr(pose, "device", "cpu"))
    if not has_attention:
        device = "cpu (LiteRT)"
    return EngineInfo(engine.config, engine.pose_description, device, has_attention, layers,
                      kind)


def source_info(spec: str, source: Any) -> SourceInfo:
    from core.video import CameraSource, ImageFolderSource, SingleImageSource
    kind = ("camera" if isinstance(source, CameraSource) else
            "folder" if isinstance(source, ImageFolderSource) else
            "image" if isinstance(source, SingleImageSource) else "video")
    fps = source.fps
    count = source.frame_count
    duration = getattr(source, "duration_s", None)
    if duration is None and count:
        duration = count / (fps or DEFAULT_FOLDER_FPS)
    return SourceInfo(str(spec), source.name, count, fps, duration, tuple(source.size_hw),
                      bool(source.is_live), kind)


def same_models(a: EngineConfig, b: EngineConfig) -> bool:
    """Whether two configs use the same pose model (so a loaded one can be kept)."""
    return (a.model, a.device, a.flip_test) == (b.model, b.device, b.flip_test)
