"""From keypoints to analysis: post-processing, angles, person selection, real-world units.

Headless (no Qt). `analyse(frames, config)` takes the tracker's PoseFrames of a whole input
and returns the selected, post-processed tracks with their angles and scale; the writers in
`core.export.analysis_sinks` turn an `AnalysisResult` into files.

    from core.analysis import AnalysisConfig, analyse
    from core.analysis.filtering import PostProcessConfig
    result = analyse(frames, AnalysisConfig(postprocess=PostProcessConfig(
        fill_gaps=5, filter="butterworth", cutoff_hz=6.0)))
    result.angles[1]["left_knee"]      # (T,) degrees over track 1's frames
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..types import PoseFrame
from .angles import ANGLE_NAMES, AngleConvention, compute_angles, facing_direction
from .filtering import PostProcessConfig, PostProcessReport, postprocess_tracks
from .selection import PersonSelection
from .tracks import Timeline, Track, frames_from_tracks, tracks_from_frames
from .units import Scale, ScaleSpec, resolve_scale

__all__ = ["AnalysisConfig", "AnalysisResult", "PersonSelection", "PostProcessConfig",
           "Scale", "ScaleSpec", "Timeline", "Track", "analyse"]


@dataclass(frozen=True)
class AnalysisConfig:
    postprocess: PostProcessConfig = field(default_factory=PostProcessConfig)
    angles: tuple[str, ...] = ANGLE_NAMES
    scale: ScaleSpec = field(default_factory=ScaleSpec)
    people: PersonSelection = field(default_factory=PersonSelection)


@dataclass(frozen=True)
class AnalysisResult:
    config: AnalysisConfig
    timeline: Timeline
    raw_tracks: list[Track]                 # the selected tracks as the tracker gave them
    tracks: list[Track]                     # the same after post-processing
    angles: dict[int, dict[str, np.ndarray]]   # track id -> angle name -> (T,) degrees
    facing: dict[int, np.ndarray]           # track id -> (T,) +1 right / -1 left
    facing_source: dict[int, str]           # track id -> "head" | "assumed"
    scale: Scale | None
    report: PostProcessReport

    def track(self, track_id: int) -> Track:
        return next(t for t in self.tracks if t.track_id == track_id)

    def raw_track(self, track_id: int) -> Track:
        return next(t for t in self.raw_tracks if t.track_id == track_id)

    def frames(self) -> list[PoseFrame]:
        """Post-processed PoseFrames of every frame (no images)."""
        return frames_from_tracks(self.timeline, self.tracks)

    def raw_frames(self) -> list[PoseFrame]:
        return frames_from_tracks(self.timeline, self.raw_tracks)

    def metadata(self) -> dict:
        """What the JSON records about the analysis."""
        return {
            "postprocessing": {**self.config.postprocess.as_metadata(),
                               **dataclasses.asdict(self.report)},
            "people": {"selection": str(self.config.people),
                       "track_ids": [t.track_id for t in self.tracks]},
            "scale": self.scale.as_metadata() if self.scale else None,
            "angles": {"names": list(self.config.angles),
                       "convention": dataclasses.asdict(AngleConvention()),
                       "facing_source": {str(k): v for k, v in self.facing_source.items()}},
        }


def analyse(frames: Sequence[PoseFrame], config: AnalysisConfig = AnalysisConfig(),
            where: str = "input") -> AnalysisResult:
    """Select people, post-process their tracks, compute angles and resolve the scale."""
    timeline, tracks = tracks_from_frames(frames)
    selected = config.people.apply(tracks)
    try:
        processed, report = postprocess_tracks(timeline, selected, config.postprocess)
    except ValueError as e:          # e.g. timestamps slower than the container's fps
        raise InputError(f"{where}: {e}") from None
    scale = resolve_scale(config.scale, processed, where) if config.scale.given else None
    floor = scale.floor_angle_deg if scale else config.scale.floor_angle()
    angles, facing, facing_source = {}, {}, {}
    for t in processed:
        f, source = facing_direction(t.keypoints)
        facing[t.track_id], facing_source[t.track_id] = f, source
        angles[t.track_id] = compute_angles(t.keypoints, config.angles, floor, f)
    return AnalysisResult(config, timeline, selected, processed, angles, facing,
                          facing_source, scale, report)
