"""One input annotated into files: the outputs it gets (`outputs_for`), the job itself
(`annotate_one`: the input's lock, the engine's pipeline, the streaming sinks or the
analysis step, temporary names renamed when complete) and its result (`InputResult`).

The serial run of `main.py annotate`, the worker processes (`local`), the Ray actors
(`ray_backend`) and the GUI's batch dialog all run inputs through `annotate_one`.
"""
from __future__ import annotations

import dataclasses
import glob
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..engine import Engine, EngineConfig
from ..errors import InputError
from ..export import (ExportMetadata, KeypointCsvWriter, KeypointJsonWriter, ModelInfo,
                      OverlayVideoWriter, SourceInfo)
from ..io_utils import display_path, log
from .config import DEFAULT_FORMATS, AnnotateConfig
from .locks import OutputBusy, OutputLock
from .plan import default_key


@dataclass
class InputResult:
    name: str
    status: str          # done | skipped | failed | cancelled
    frames: int = 0
    seconds: float = 0.0
    message: str = ""
    warnings: list[str] = field(default_factory=list)

    def warning_note(self) -> str:
        """The first warning, for a one-line summary (a file cut short, frames left out;
        without the input's name, which the line shows), or ""."""
        if not self.warnings:
            return ""
        first = self.warnings[0]
        if first.startswith(f"{self.name}: "):
            first = first[len(self.name) + 2:]
        more = len(self.warnings) - 1
        return f"warning: {first}" + (f" (+{more} more)" if more else "")


def outputs_for(inp: str, out_dir: Path, overlay: bool,
                formats: tuple[str, ...] = DEFAULT_FORMATS,
                analysis_run: bool = False, key: str | None = None) -> dict[str, Path]:
    """The fixed output paths of one input (per-person files are named after the tracks, so
    they are only known after the run). An analysis run also writes `<stem>.config.toml`,
    last, which marks the input as done. `key` (from the batch plan: the stem, or a path
    mirroring the input's folders) names the outputs; default: the input's stem."""
    key = key or default_key(inp)
    folder = out_dir / Path(key).parent
    stem = Path(key).name
    out_dir = folder
    paths = {}
    if "csv" in formats:
        paths["csv"] = out_dir / f"{stem}.csv"
    if "json" in formats:
        paths["json"] = out_dir / f"{stem}.json"
    if "openpose" in formats:
        paths["openpose"] = out_dir / f"{stem}.openpose"
    if overlay:
        paths["overlay"] = out_dir / f"{stem}.overlay.mp4"
    if analysis_run:
        paths["config"] = out_dir / f"{stem}.config.toml"
    return paths


def progress_bar(total, desc, position, leave):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="frame", position=position, leave=leave,
                file=sys.stderr, dynamic_ncols=True, disable=None)


def annotate_one(engine: Engine, inp: str, outputs: dict[str, Path], overall,
                 progress: Callable[[int, int | None], None] | None = None,
                 config: AnnotateConfig | None = None, *, if_locked: str = "wait",
                 skip_if_done: bool = False, print_warnings: bool = True,
                 bar_position: int = 1) -> InputResult:
    """Annotate one input. `overall` (a tqdm-like bar or None) gets update(1) per frame;
    `progress(frames_done, frame_count_or_None)`, when given, is called after every frame
    instead of drawing a per-file tqdm bar (the GUI's progress bars); an exception it
    raises cancels the input and removes its unfinished outputs.

    With an analysis `config` (`config.is_analysis_run`), the frames are collected while
    tracking and every output is written afterwards by the post-processing step
    (`analysis_outputs.write_analysis_outputs`); otherwise the CSV/JSON/overlay are
    streamed as the frames arrive.

    The input's outputs are locked while they are written (`<out>/<key>.lock`): another
    run on them makes this one wait (`if_locked`: or skip, or fail); with `skip_if_done`,
    outputs that exist once the lock is ours (another run finished them) are kept."""
    if not outputs:
        raise InputError(f"{inp}: no output format chosen")
    first = next(iter(outputs.values()))
    stem_path = first.parent / _output_stem(first)
    try:
        first.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{first.parent}: cannot create the output folder "
                         f"({e.strerror or e})") from None
    lock = OutputLock(stem_path.with_name(stem_path.name + ".lock"))
    waited: list[str] = []

    def on_wait(holder: str) -> None:
        waited.append(holder)
        log(f"{display_path(inp)}: waiting for another run ({holder}) writing "
            f"{stem_path}.*")
    lock.acquire(if_locked, on_wait=on_wait)
    try:
        _remove_stale_parts(outputs)
        if skip_if_done and all(p.exists() for p in outputs.values()):
            note = (f"finished meanwhile by another run ({waited[0]})" if waited else
                    "outputs exist (use --force to redo)")
            return InputResult(inp, "skipped", message=note)
        return _annotate_locked(engine, inp, outputs, overall, progress, config,
                                print_warnings, bar_position)
    finally:
        lock.release()


def clean_unfinished(outputs: dict[str, Path], wait_s: float = 0.0) -> None:
    """After a worker was stopped from outside: remove its temporary files for these
    outputs, unless another run holds their lock (then they may be that run's)."""
    first = next(iter(outputs.values()))
    lock = OutputLock(first.parent / (_output_stem(first) + ".lock"))
    deadline = time.monotonic() + wait_s
    while True:
        try:
            lock.acquire("skip")
            break
        except OutputBusy:
            if time.monotonic() >= deadline:
                return
            time.sleep(0.1)
        except InputError:
            return
    try:
        _remove_stale_parts(outputs)
    finally:
        lock.release()


def _remove_stale_parts(outputs: dict[str, Path]) -> None:
    """Temporary files of these outputs left by a run that was killed outright (SIGKILL, a
    lost node): with the lock ours, no live run can be writing them."""
    import re
    first = next(iter(outputs.values()))
    stem = _output_stem(first)
    names = "|".join([re.escape(p.name) for p in outputs.values()] +
                     [re.escape(stem) + r"\.person\d+\.(?:csv|trc)"])
    pattern = re.compile(rf"(?:{names})\.\d+-[0-9a-f]+\.part")
    for part in first.parent.glob(glob.escape(stem) + ".*.part"):
        if pattern.fullmatch(part.name):
            remove_output(part)


def _output_stem(path: Path) -> str:
    name = path.name
    for suffix in (".overlay.mp4", ".config.toml", ".openpose", ".csv", ".json"):
        if name.endswith(suffix):
            return name[:-len(suffix)]
    return path.stem


def _annotate_locked(engine: Engine, inp: str, outputs: dict[str, Path], overall,
                     progress, config: AnnotateConfig | None, print_warnings: bool,
                     bar_position: int) -> InputResult:
    from ..video import open_source

    t0 = time.perf_counter()
    analysis = config.analysis() if config is not None and config.is_analysis_run else None
    source = open_source(inp)
    sinks = []
    json_sink: KeypointJsonWriter | None = None
    collected: list = []
    written: list[Path] = []
    frames = 0
    bar = None
    try:
        h, w = source.size_hw
        info = SourceInfo(path=display_path(inp), width=w, height=h, fps=source.fps,
                          frame_count=source.frame_count, rotation=source.rotation,
                          files=tuple(f.name for f in getattr(source, "files", ())))
        meta = ExportMetadata(info, ModelInfo(engine.model_name, display_path(engine.weights),
                                              engine.config.detector, engine.config.smoothing))
        if analysis is not None:
            # checked before tracking starts: the filter needs the input's real frame rate
            analysis.postprocess.check_sampling_rate(source.fps, inp)
        else:
            if "csv" in outputs:
                sinks.append(KeypointCsvWriter(outputs["csv"]))
            if "json" in outputs:
                json_sink = KeypointJsonWriter(outputs["json"], meta)
                sinks.append(json_sink)
            if "overlay" in outputs:
                sinks.append(OverlayVideoWriter(outputs["overlay"], source.fps, (h, w)))
        total = source.frame_count
        if progress is None:
            bar = progress_bar(total, Path(inp).name[:30], bar_position, False)
        pipeline = engine.pipeline(source, keep_images="overlay" in outputs and analysis is None)

        def write(frame):
            nonlocal frames
            for sink in sinks:
                sink.write(frame)
            if analysis is not None:
                collected.append(frame)
            frames += 1
            if bar is not None:
                bar.update(1)
            if overall is not None:
                overall.update(1)
            if progress is not None:
                progress(frames, total)
        pipeline.run(write)
        # what is only known now: the frames written, those skipped, a repaired timeline
        final = dict(frame_count=frames, skipped_frames=tuple(source.skipped_frames),
                     timestamps=_public(source.timestamp_repair),
                     ended_early=getattr(source, "stopped_reason", None))
        meta = dataclasses.replace(meta, source=dataclasses.replace(meta.source, **final))
        if json_sink is not None:
            json_sink.update_source(**final)
        for sink in sinks:
            sink.close()
        sinks.clear()
        if analysis is not None:
            from .analysis_outputs import write_analysis_outputs
            write_analysis_outputs(inp, _output_stem(outputs["config"]), collected, outputs,
                                   meta, config, analysis, written)
            written.clear()
        warnings = list(dict.fromkeys(getattr(source, "warnings", [])))
        if print_warnings:
            for warning in warnings:
                log(f"warning: {warning}")
        return InputResult(inp, "done", frames, time.perf_counter() - t0, warnings=warnings)
    finally:
        for sink in sinks:          # failed or interrupted: nothing half-written survives
            sink.abort()
        for path in written:        # an analysis run is complete only with all its files
            remove_output(path)
        if bar is not None:
            bar.close()
        source.close()


def _public(record: dict | None) -> dict | None:
    return None if record is None else {k: v for k, v in record.items()
                                        if not k.startswith("_")}


def remove_output(path: Path) -> None:
    import shutil
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def engine_config(config: AnnotateConfig, device: str | None = None) -> EngineConfig:
    return EngineConfig(model=config.model, detector=config.detector,
                        device=device or config.device, smoothing=config.smoothing,
                        smoothing_strength=config.strength, detect_every=config.detect_every,
                        cuda_graphs=config.cuda_graphs, backfill=config.backfill)


def busy_result(path: str, e: OutputBusy, if_locked: str) -> InputResult:
    if if_locked == "skip":
        return InputResult(path, "skipped", message=f"another run ({e.holder}) is writing it")
    log(f"error: {e}")
    return InputResult(path, "failed", message=str(e))


class quiet_source_warnings:
    """The sources log their warnings and also keep them; annotate prints them once, after
    the input (no second copy from the logging module)."""

    def __enter__(self) -> None:
        self._logger = logging.getLogger("core.video")
        self._level = self._logger.level
        self._logger.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        self._logger.setLevel(self._level)
