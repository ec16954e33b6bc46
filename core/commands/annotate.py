"""`main.py annotate`: batch annotation of videos and image folders to CSV/JSON/overlay."""
from __future__ import annotations

import argparse
import dataclasses
import glob
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import InputError, StudioError
from ..export import (ExportMetadata, KeypointCsvWriter, KeypointJsonWriter, ModelInfo,
                      OverlayVideoWriter, SourceInfo)
from ..engine import Engine, EngineConfig, build_engine
from ..analysis.angles import parse_angle_names
from ..analysis.selection import PersonSelection
from ..batch.locks import IF_LOCKED, OutputBusy, OutputLock
from ..batch.plan import PlannedInput, default_key, parse_shard, shard
from ..batch.signals import interrupt_reason, termination_as_interrupt
from ..io_utils import display_path
from .annotate_config import (CONVERTERS, DEFAULT_FORMATS, AnnotateConfig, resolve_config,
                              with_absolute_paths, write_config)
from .common import log
from .. import catalogue


def add_arguments(p: argparse.ArgumentParser) -> None:
    # Defaults live in AnnotateConfig: every option here defaults to None ("not given"),
    # so that a --config file fills what the command line leaves out.
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="video files, image folders or glob patterns (or inputs in --config)")
    p.add_argument("--out", metavar="DIR", help="output folder (created); required here or "
                   "in --config")
    p.add_argument("--config", metavar="FILE.toml", help="read options from this TOML file "
                   "(keys are the long option names: fill-gaps = 5); options given here win")
    p.add_argument("--write-config", metavar="FILE.toml", help="write the resolved "
                   "configuration to this file and exit without annotating")
    p.add_argument("--model", metavar="MODEL", help=catalogue.help_text("pose"))
    p.add_argument("--detector", metavar="DETECTOR", help=catalogue.help_text("detector"))
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--smoothing", choices=("kalman", "one-euro", "none"))
    p.add_argument("--strength", type=float, help="smoothing strength (0 = off)")
    p.add_argument("--detect-every", type=int, metavar="N",
                   help="run the person detector every N frames (and whenever a person is lost)")
    p.add_argument("--overlay", action=argparse.BooleanOptionalAction, default=None,
                   help="also write <stem>.overlay.mp4")
    p.add_argument("--force", action="store_true", default=None,
                   help="redo inputs whose outputs exist")
    b = p.add_argument_group("batch runs (see docs/scaling.md)")
    b.add_argument("--recursive", action="store_true", default=False,
                   help="a folder argument also takes the videos in its subfolders (mirrored "
                   "under --out)")
    b.add_argument("--workers", type=int, metavar="N", default=None,
                   help="annotate in N worker processes, each loading the model once (with "
                   "--ray: the number of Ray worker actors)")
    b.add_argument("--devices", metavar="LIST", default=None,
                   help="comma list of devices, one worker each: cuda:0,cuda:1")
    b.add_argument("--shard", metavar="i/N", default=None,
                   help="take only share i of N (0 <= i < N) of the inputs: N jobs of a job "
                   "array cover the list exactly once")
    b.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run on a Ray cluster (pip install -e .[distributed]): auto, "
                   "ray://HOST:10001, or nothing for RAY_ADDRESS / a local Ray")
    b.add_argument("--retries", type=int, metavar="N", default=2,
                   help="with --ray: times an input is retried when its worker dies (2)")
    b.add_argument("--if-locked", choices=IF_LOCKED, default="wait",
                   help="when another run is writing an input's outputs: wait for it (then "
                   "skip the input if it finished it), skip the input, or fail it (default "
                   "wait)")
    a = p.add_argument_group("analysis (after tracking; see docs/formats.md and docs/angles.md)")
    a.add_argument("--formats", metavar="LIST", help="comma list of csv, json, wide-csv "
                   "(<stem>.person<ID>.csv), trc (<stem>.person<ID>.trc), openpose "
                   "(<stem>.openpose/); default csv,json")
    a.add_argument("--people", metavar="WHO", help="all (default), largest:N, longest:N, "
                   "or track ids such as 1,3")
    a.add_argument("--outliers", choices=("none", "hampel"),
                   help="reject outlying keypoint positions (Hampel filter)")
    a.add_argument("--outlier-window", type=int, metavar="N", help="Hampel window, frames (7)")
    a.add_argument("--outlier-sigmas", type=float, metavar="K",
                   help="Hampel threshold in robust standard deviations (3)")
    a.add_argument("--fill-gaps", type=int, metavar="N",
                   help="fill gaps of up to N frames (never longer ones)")
    a.add_argument("--gap-method", choices=("linear", "cubic"), help="gap interpolation")
    a.add_argument("--filter", choices=("none", "butterworth"),
                   help="zero-lag low-pass filter of the coordinates")
    a.add_argument("--cutoff", type=float, metavar="HZ", help="Butterworth cutoff (6 Hz)")
    a.add_argument("--order", type=int, metavar="N", help="Butterworth order (4)")
    a.add_argument("--angles", metavar="LIST", help="all (default), joints, segments, none, "
                   "or names such as left_knee,trunk")
    a.add_argument("--draw-angles", action=argparse.BooleanOptionalAction, default=None,
                   help="list the angles beside each person on the overlay video")
    a.add_argument("--person-height", type=float, metavar="METRES",
                   help="scale to metres from the height of the longest-tracked person")
    a.add_argument("--scale-points", type=float, nargs=5, metavar=("X1", "Y1", "X2", "Y2", "M"),
                   help="scale to metres from two image points M metres apart")
    a.add_argument("--floor-angle", metavar="DEG|points", help="the floor's angle in the "
                   "image (degrees anticlockwise), or 'points' for the --scale-points line")
    a.add_argument("--openpose-layout", choices=("coco18", "body25"),
                   help="keypoint layout of the OpenPose JSON (default coco18)")


def config_from_args(args: argparse.Namespace) -> AnnotateConfig:
    """The resolved configuration: defaults <- --config file <- the options given."""
    given = {k: v for k, v in vars(args).items() if v is not None and k in CONVERTERS}
    if args.inputs:
        given["inputs"] = tuple(args.inputs)
    else:
        given.pop("inputs", None)
    if "formats" in given:
        given["formats"] = _convert_option("--formats", CONVERTERS["formats"], given["formats"])
    if "angles" in given:
        given["angles"] = parse_angle_names(given["angles"])
    if "people" in given:
        given["people"] = str(PersonSelection.parse(given["people"]))
    if "scale_points" in given:
        given["scale_points"] = tuple(given["scale_points"])
    if "floor_angle" in given and given["floor_angle"] != "points":
        try:
            given["floor_angle"] = float(given["floor_angle"])
        except ValueError:
            raise InputError(f"--floor-angle: expected degrees or 'points', not "
                             f"{given['floor_angle']!r}") from None
    return resolve_config(given, getattr(args, "config", None))


def _convert_option(option: str, convert, value):
    try:
        return convert(value)
    except TypeError as e:
        raise InputError(f"{option}: expected {e}, not {value!r}") from None


@dataclass
class InputResult:
    name: str
    status: str          # done | skipped | failed | cancelled
    frames: int = 0
    seconds: float = 0.0
    message: str = ""
    warnings: list[str] = field(default_factory=list)


def expand_inputs(patterns: list[str], recursive: bool = False) -> list[str]:
    """Globs expanded (sorted), a folder of videos expanded to its videos, other entries
    kept as given so missing ones get reported."""
    from ..batch.plan import expand_inputs as plan_inputs
    return [it.path for it in plan_inputs(patterns, recursive)]


def input_stem(inp: str) -> str:
    return default_key(inp)


def outputs_for(inp: str, out_dir: Path, overlay: bool,
                formats: tuple[str, ...] = DEFAULT_FORMATS,
                analysis_run: bool = False, key: str | None = None) -> dict[str, Path]:
    """The fixed output paths of one input (per-person files are named after the tracks, so
    they are only known after the run). An analysis run also writes `<stem>.config.toml`,
    last, which marks the input as done. `key` (from the batch plan: the stem, or a path
    mirroring the input's folders) names the outputs; default: the input's stem."""
    key = key or input_stem(inp)
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


def _progress_bar(total, desc, position, leave):
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
    (`annotate_analysis.write_analysis_outputs`); otherwise the CSV/JSON/overlay are
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
            _remove(part)


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
                          frame_count=source.frame_count, rotation=source.rotation)
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
            bar = _progress_bar(total, Path(inp).name[:30], bar_position, False)
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
                     timestamps=_public(source.timestamp_repair))
        meta = dataclasses.replace(meta, source=dataclasses.replace(meta.source, **final))
        if json_sink is not None:
            json_sink.update_source(**final)
        for sink in sinks:
            sink.close()
        sinks.clear()
        if analysis is not None:
            from .annotate_analysis import write_analysis_outputs
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
            _remove(path)
        if bar is not None:
            bar.close()
        source.close()


def _public(record: dict | None) -> dict | None:
    return None if record is None else {k: v for k, v in record.items()
                                        if not k.startswith("_")}


def _remove(path: Path) -> None:
    import shutil
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _check_cutoffs(config: AnnotateConfig, inputs: list[str]) -> None:
    """One clear error before any model is loaded when --cutoff is at or above an input's
    Nyquist frequency. Inputs that cannot be opened are left for the run to report."""
    from ..video import open_source
    post = config.analysis().postprocess
    if post.filter == "none":
        return
    for inp in inputs:
        try:
            source = open_source(inp)
        except StudioError:
            continue
        try:
            post.check_sampling_rate(source.fps, inp)
        finally:
            source.close()


def print_summary(results: list[InputResult], out=None) -> None:
    out = out or sys.stderr
    width = max([len("input")] + [len(r.name) for r in results])
    print(f"\n{'input':<{width}}  {'status':<9}{'frames':>8}{'fps':>8}  note", file=out)
    for r in results:
        fps = f"{r.frames / r.seconds:8.1f}" if r.seconds > 0 and r.frames else f"{'':>8}"
        print(f"{r.name:<{width}}  {r.status:<9}{r.frames:>8}{fps}  {r.message}", file=out)


@dataclass(frozen=True)
class BatchOptions:
    """How a batch run is spread: not part of the outputs (never in --config files)."""

    recursive: bool = False
    workers: int | None = None
    devices: tuple[str, ...] = ()
    shard: tuple[int, int] | None = None
    ray: str | None = None
    retries: int = 2
    if_locked: str = "wait"

    @staticmethod
    def from_args(args: argparse.Namespace) -> "BatchOptions":
        devices = tuple(d.strip() for d in (getattr(args, "devices", None) or "").split(",")
                        if d.strip())
        workers = getattr(args, "workers", None)
        if workers is not None and workers < 1:
            raise InputError(f"--workers: expected 1 or more, not {workers}")
        retries = getattr(args, "retries", 2)
        if retries is None or retries < 0:
            raise InputError(f"--retries: expected 0 or more, not {retries}")
        if devices and workers and workers % len(devices):
            raise InputError(f"--workers {workers} with --devices {','.join(devices)}: give a "
                             f"multiple of the device count (workers are spread evenly over "
                             f"the devices)")
        shard_text = getattr(args, "shard", None)
        return BatchOptions(recursive=bool(getattr(args, "recursive", False)), workers=workers,
                            devices=devices,
                            shard=parse_shard(shard_text) if shard_text else None,
                            ray=getattr(args, "ray", None), retries=retries,
                            if_locked=getattr(args, "if_locked", None) or "wait")


@dataclass(frozen=True)
class BatchItem:
    """One input of a run: its path as given, the name its outputs are recorded under and
    where they go."""

    path: str
    key: str
    outputs: dict

    @property
    def name(self) -> str:
        return self.path


def plan_run(config: AnnotateConfig, options: BatchOptions,
             out_dir: Path) -> tuple[list[BatchItem], list[BatchItem]]:
    """(this run's inputs, every input of the list): shards take their share of the whole
    list, so output names never depend on the shard."""
    from ..batch.plan import expand_inputs as plan_inputs
    planned: list[PlannedInput] = plan_inputs(list(config.inputs), options.recursive)
    every = [BatchItem(it.path, it.key, outputs_for(it.path, out_dir, config.overlay,
                                                    config.formats, config.is_analysis_run,
                                                    key=it.key)) for it in planned]
    mine = planned
    if options.shard is not None:
        mine = shard(planned, *options.shard)
    keys = {it.key for it in mine}
    return [b for b in every if b.key in keys], every


def engine_config(config: AnnotateConfig, device: str | None = None) -> EngineConfig:
    return EngineConfig(model=config.model, detector=config.detector,
                        device=device or config.device, smoothing=config.smoothing,
                        smoothing_strength=config.strength, detect_every=config.detect_every)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if getattr(args, "write_config", None):
        path = write_config(args.write_config, with_absolute_paths(config),
                            header="transpose-studio annotate configuration (main.py annotate "
                                   "--config FILE)")
        print(path)
        return 0
    if not config.inputs:
        raise InputError("annotate: no INPUT given (on the command line or as `inputs` in "
                         "--config)")
    if not config.out:
        raise InputError("annotate: --out is required (on the command line or as `out` in "
                         "--config)")
    options = BatchOptions.from_args(args)
    results: list[InputResult] = []
    # SIGTERM / SIGHUP (timeout, docker stop, schedulers) are handled like Ctrl-C: the
    # unfinished outputs are removed, the finished ones kept, the summary printed.
    with termination_as_interrupt(), _quiet_source_warnings():
        try:
            return _run(config, options, results)
        except KeyboardInterrupt as e:
            if results:
                print_summary(results)
            log(f"interrupted ({interrupt_reason(e)}): finished outputs are kept; unfinished "
                f"ones were removed")
            return 130


def _run(config: AnnotateConfig, options: BatchOptions, results: list[InputResult]) -> int:
    out_dir = Path(config.out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{out_dir}: cannot create the output folder ({e.strerror or e})") from None
    items, _ = plan_run(config, options, out_dir)
    if options.shard is not None:
        i, n = options.shard
        log(f"shard {i}/{n}: {len(items)} input(s)")

    def done(item: BatchItem) -> bool:
        return all(p.exists() for p in item.outputs.values())
    todo = [b for b in items if config.force or not done(b)]
    skipped = {b.key: InputResult(b.path, "skipped", message="outputs exist (use --force to redo)")
               for b in items if b not in todo}
    by_key: dict[str, InputResult] = dict(skipped)
    order = [b.key for b in items]

    def record(item: BatchItem, result: InputResult) -> None:
        by_key[item.key] = result
        results[:] = [by_key[k] for k in order if k in by_key]
        for w in result.warnings:
            log(f"warning: {w}")
    results[:] = [by_key[k] for k in order if k in by_key]
    if todo:
        _check_cutoffs(config, [b.path for b in todo])
        try:
            if options.ray is not None:
                from ..batch.ray_backend import run_ray
                run_ray(todo, config, options, record)
            elif (options.workers or 1) > 1 or len(options.devices) > 1:
                from ..batch.local import run_workers
                run_workers(todo, config, options, record)
            else:
                _run_serial(todo, config, options, record)
        except KeyboardInterrupt:
            for b in todo:
                if b.key not in by_key:
                    by_key[b.key] = InputResult(b.path, "cancelled", message="not started")
            results[:] = [by_key[k] for k in order if k in by_key]
            raise
    results[:] = [by_key.get(k) or InputResult(b.path, "failed", message="not run")
                  for k, b in zip(order, items)]
    print_summary(results)
    ok = all(r.status in ("done", "skipped") for r in results)
    for item, r in zip(items, results):
        if r.status == "done":
            for p in item.outputs.values():
                print(p)
            if config.is_analysis_run:
                folder = next(iter(item.outputs.values())).parent
                stem = Path(item.key).name
                for p in sorted(folder.glob(f"{glob.escape(stem)}.person*")):
                    print(p)
    return 0 if ok else 1


def _run_serial(todo: list[BatchItem], config: AnnotateConfig, options: BatchOptions,
                record: Callable[[BatchItem, InputResult], None]) -> None:
    """One process: the model loaded once, the inputs one after the other."""
    device = options.devices[0] if options.devices else None
    engine = build_engine(engine_config(config, device))
    log(f"pose model: {engine.pose_description}")
    log(f"detector: {config.detector}, smoothing: {config.smoothing}")
    overall = _progress_bar(None, "all inputs", 0, True)
    try:
        for item in todo:
            try:
                record(item, annotate_one(engine, item.path, item.outputs, overall,
                                          config=config, if_locked=options.if_locked,
                                          skip_if_done=not config.force, print_warnings=False))
            except OutputBusy as e:
                record(item, busy_result(item.path, e, options.if_locked))
            except StudioError as e:
                log(f"error: {e}")
                record(item, InputResult(item.path, "failed", message=str(e)))
            except KeyboardInterrupt as e:
                record(item, InputResult(item.path, "cancelled",
                                         message=f"interrupted ({interrupt_reason(e)})"))
                raise
    finally:
        overall.close()


def busy_result(path: str, e: OutputBusy, if_locked: str) -> InputResult:
    if if_locked == "skip":
        return InputResult(path, "skipped", message=f"another run ({e.holder}) is writing it")
    log(f"error: {e}")
    return InputResult(path, "failed", message=str(e))


class _quiet_source_warnings:
    """The sources log their warnings and also keep them; annotate prints them once, after
    the input (no second copy from the logging module)."""

    def __enter__(self) -> None:
        self._logger = logging.getLogger("core.video")
        self._level = self._logger.level
        self._logger.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        self._logger.setLevel(self._level)
