"""`main.py annotate`: batch annotation of videos and image folders to CSV/JSON/overlay."""
from __future__ import annotations

import argparse
import glob
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import InputError, StudioError
from ..export import (ExportMetadata, KeypointCsvWriter, KeypointJsonWriter, ModelInfo,
                      OverlayVideoWriter, SourceInfo)
from ..engine import Engine, EngineConfig, build_engine
from ..analysis.angles import parse_angle_names
from ..analysis.selection import PersonSelection
from .annotate_config import (CONVERTERS, DEFAULT_FORMATS, AnnotateConfig, resolve_config,
                              with_absolute_paths, write_config)
from .common import log


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
    p.add_argument("--model",
                   help="auto (shipped TransPose, else MediaPipe), mediapipe, a model-zoo name "
                   "or a TransPose or TFPose .pth file")
    p.add_argument("--detector", help="auto | blazepose | hog | yolox-nano | onnx:FILE")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--smoothing", choices=("kalman", "one-euro", "none"))
    p.add_argument("--strength", type=float, help="smoothing strength (0 = off)")
    p.add_argument("--detect-every", type=int, metavar="N",
                   help="run the person detector every N frames (and whenever a person is lost)")
    p.add_argument("--overlay", action=argparse.BooleanOptionalAction, default=None,
                   help="also write <stem>.overlay.mp4")
    p.add_argument("--force", action="store_true", default=None,
                   help="redo inputs whose outputs exist")
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


def expand_inputs(patterns: list[str]) -> list[str]:
    """Globs expanded (sorted), other entries kept as given so missing ones get reported."""
    out: list[str] = []
    for p in patterns:
        if glob.has_magic(p):
            matches = sorted(glob.glob(p))
            out.extend(matches if matches else [p])
        else:
            out.append(p)
    return list(dict.fromkeys(out))


def input_stem(inp: str) -> str:
    return Path(inp.rstrip("/")).stem if Path(inp).is_file() else Path(inp.rstrip("/")).name


def outputs_for(inp: str, out_dir: Path, overlay: bool,
                formats: tuple[str, ...] = DEFAULT_FORMATS,
                analysis_run: bool = False) -> dict[str, Path]:
    """The fixed output paths of one input (per-person files are named after the tracks, so
    they are only known after the run). An analysis run also writes `<stem>.config.toml`,
    last, which marks the input as done."""
    stem = input_stem(inp)
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
                 config: AnnotateConfig | None = None) -> InputResult:
    """Annotate one input. `overall` (a tqdm-like bar or None) gets update(1) per frame;
    `progress(frames_done, frame_count_or_None)`, when given, is called after every frame
    instead of drawing a per-file tqdm bar (the GUI's progress bars); an exception it
    raises cancels the input and removes its unfinished outputs.

    With an analysis `config` (`config.is_analysis_run`), the frames are collected while
    tracking and every output is written afterwards by the post-processing step
    (`annotate_analysis.write_analysis_outputs`); otherwise the CSV/JSON/overlay are
    streamed as the frames arrive."""
    from ..video import open_source

    t0 = time.perf_counter()
    analysis = config.analysis() if config is not None and config.is_analysis_run else None
    source = open_source(inp)
    sinks = []
    collected: list = []
    written: list[Path] = []
    frames = 0
    bar = None
    try:
        h, w = source.size_hw
        info = SourceInfo(path=str(inp), width=w, height=h, fps=source.fps,
                          frame_count=source.frame_count, rotation=source.rotation)
        meta = ExportMetadata(info, ModelInfo(engine.model_name, engine.weights,
                                              engine.config.detector, engine.config.smoothing))
        if analysis is not None:
            # checked before tracking starts: the filter needs the input's real frame rate
            analysis.postprocess.check_sampling_rate(source.fps, inp)
        else:
            if "csv" in outputs:
                sinks.append(KeypointCsvWriter(outputs["csv"]))
            if "json" in outputs:
                sinks.append(KeypointJsonWriter(outputs["json"], meta))
            if "overlay" in outputs:
                sinks.append(OverlayVideoWriter(outputs["overlay"], source.fps, (h, w)))
        total = source.frame_count
        if progress is None:
            bar = _progress_bar(total, Path(inp).name[:30], 1, False)
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
        for sink in sinks:
            sink.close()
        sinks.clear()
        if analysis is not None:
            from .annotate_analysis import write_analysis_outputs
            write_analysis_outputs(inp, input_stem(inp), collected, outputs, meta, config,
                                   analysis, written)
            written.clear()
        for warning in getattr(source, "warnings", []):
            log(f"warning: {inp}: {warning}")
        return InputResult(inp, "done", frames, time.perf_counter() - t0)
    finally:
        for sink in sinks:          # failed or interrupted: nothing half-written survives
            sink.abort()
        for path in written:        # an analysis run is complete only with all its files
            _remove(path)
        if bar is not None:
            bar.close()
        source.close()


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
    out_dir = Path(config.out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{out_dir}: cannot create the output folder ({e.strerror or e})") from None
    inputs = expand_inputs(list(config.inputs))
    analysis_run = config.is_analysis_run

    def outputs(inp: str) -> dict[str, Path]:
        return outputs_for(inp, out_dir, config.overlay, config.formats, analysis_run)
    plan = [(inp, outputs(inp)) for inp in inputs]
    todo = [(i, o) for i, o in plan if config.force or not all(p.exists() for p in o.values())]
    results = [InputResult(i, "skipped", message="outputs exist (use --force to redo)")
               for i, o in plan if (i, o) not in todo]
    if todo:
        _check_cutoffs(config, [i for i, _ in todo])
        engine = build_engine(EngineConfig(model=config.model, detector=config.detector,
                                           device=config.device, smoothing=config.smoothing,
                                           smoothing_strength=config.strength,
                                           detect_every=config.detect_every))
        log(f"pose model: {engine.pose_description}")
        log(f"detector: {config.detector}, smoothing: {config.smoothing}")
        overall = _progress_bar(None, "all inputs", 0, True)
        try:
            for inp, outs in todo:
                try:
                    results.append(annotate_one(engine, inp, outs, overall, config=config))
                except StudioError as e:
                    log(f"error: {e}")
                    results.append(InputResult(inp, "failed", message=str(e)))
                except KeyboardInterrupt:
                    results.append(InputResult(inp, "cancelled", message="interrupted (Ctrl-C)"))
                    raise
        except KeyboardInterrupt:
            overall.close()
            print_summary(results)
            log("interrupted: finished outputs are kept; unfinished ones were removed")
            return 130
        overall.close()
    print_summary(results)
    ok = all(r.status in ("done", "skipped") for r in results)
    for r in results:
        if r.status == "done":
            stem = input_stem(r.name)
            for p in outputs(r.name).values():
                print(p)
            if analysis_run:
                for p in sorted(out_dir.glob(f"{glob.escape(stem)}.person*")):
                    print(p)
    return 0 if ok else 1
