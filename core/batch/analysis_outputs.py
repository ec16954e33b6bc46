"""The post-processing step of `main.py annotate`: once an input is fully tracked, select
people, filter, compute angles and write the analysis formats.

A plain run (csv/json only, no analysis option) never comes here: its files are streamed
while tracking, exactly as before. An analysis run collects the frames instead (a zero-lag
filter needs the whole track), then writes everything from the post-processed tracks.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..analysis import AnalysisConfig, AnalysisResult, analyse
from ..export import ExportMetadata, KeypointCsvWriter, OverlayVideoWriter
from ..export.analysis_sinks import (write_analysis_json, write_openpose, write_trc,
                                     write_wide_csv)
from ..types import PoseFrame
from .config import AnnotateConfig, with_absolute_paths, write_config


class AngleOverlayVideoWriter(OverlayVideoWriter):
    """The overlay video with each person's chosen angles listed beside them (where the
    list covers no other person's list or id label; every value is in the angles CSV)."""

    def __init__(self, *args, result: AnalysisResult, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.result = result
        self._pos = {int(i): p for p, i in enumerate(result.timeline.frame_indices)}

    def draw(self, canvas: np.ndarray, frame: PoseFrame) -> np.ndarray:
        from ..visualization import draw_angles
        taken: list[tuple[int, int, int, int]] = []   # id labels and lists: none covered
        canvas = super().draw(canvas, frame, labels=taken)
        pos = self._pos.get(frame.index)
        for person in frame.people:
            t = self.result.track(person.track_id)
            i = pos - t.start
            values = {n: float(v[i]) for n, v in self.result.angles[person.track_id].items()}
            draw_angles(canvas, person.box, values, taken=taken,
                        others=[o.box for o in frame.people if o is not person])
        return canvas


def per_person_path(out_dir: Path, stem: str, track_id: int, suffix: str) -> Path:
    return out_dir / f"{stem}.person{track_id}{suffix}"


def write_analysis_outputs(inp: str, stem: str, frames: list[PoseFrame],
                           outputs: dict[str, Path], meta: ExportMetadata,
                           config: AnnotateConfig, analysis: AnalysisConfig,
                           written: list[Path],
                           overlay_progress: Callable[[], None] | None = None) -> AnalysisResult:
    """Analyse one input's frames and write every requested output; each finished path is
    appended to `written` (so the caller can remove them all if a later one fails). The
    resolved configuration (`outputs["config"]`) is written last: its presence marks the
    input as done."""
    import dataclasses

    result = analyse(frames, analysis, where=inp)
    out_dir = outputs["config"].parent
    single = _single_input(config, inp)
    processed = result.frames()
    if "csv" in outputs:
        with KeypointCsvWriter(outputs["csv"]) as w:
            for f in processed:
                w.write(f)
        written.append(outputs["csv"])
    if "json" in outputs:
        config_dict = {k.replace("_", "-"): (list(v) if isinstance(v, tuple) else v)
                       for k, v in dataclasses.asdict(single).items() if k != "config_file"}
        written.append(write_analysis_json(outputs["json"], meta, result, config_dict))
    for t in result.tracks:
        if "wide-csv" in config.formats:
            written.append(write_wide_csv(per_person_path(out_dir, stem, t.track_id, ".csv"),
                                          result, t.track_id))
        if "trc" in config.formats:
            written.append(write_trc(per_person_path(out_dir, stem, t.track_id, ".trc"),
                                     result, t.track_id))
    if "openpose" in outputs:
        written.append(write_openpose(outputs["openpose"], result, stem, config.openpose_layout))
    if "overlay" in outputs:
        written.append(_write_overlay(inp, outputs["overlay"], meta, result, processed,
                                      config.draw_angles, overlay_progress))
    written.append(write_config(outputs["config"], single,
                                header=f"transpose-studio annotate: the configuration that "
                                       f"produced {stem}.* (main.py annotate --config "
                                       f"{outputs['config'].name})"))
    return result


def _write_overlay(inp: str, path: Path, meta: ExportMetadata, result: AnalysisResult,
                   processed: list[PoseFrame], draw_angles: bool,
                   progress: Callable[[], None] | None) -> Path:
    """Second pass over the source: the frames are decoded again and drawn with the
    post-processed skeletons (the images were not kept while tracking: a whole video of
    frames would not fit in memory)."""
    import dataclasses
    from ..video import open_source

    source = open_source(inp)
    h, w = source.size_hw
    writer = (AngleOverlayVideoWriter(path, source.fps, (h, w), result=result) if draw_angles
              else OverlayVideoWriter(path, source.fps, (h, w)))
    by_index = {f.index: f for f in processed}
    try:
        for frame in source:
            pose = by_index.get(frame.index)
            if pose is None:
                continue
            writer.write(dataclasses.replace(pose, image=frame.image))
            if progress is not None:
                progress()
        return writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        source.close()


def _single_input(config: AnnotateConfig, inp: str) -> AnnotateConfig:
    """The run's configuration for this input alone (absolute paths; `force` so that
    repeating it with --config redoes the outputs it describes)."""
    import dataclasses
    return with_absolute_paths(dataclasses.replace(config, inputs=(inp,), force=True))
