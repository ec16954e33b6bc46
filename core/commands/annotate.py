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
from .common import log


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="video files, image folders or glob patterns")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--model", default="auto",
                   help="auto (shipped TransPose, else MediaPipe), mediapipe, a model-zoo name "
                   "or a TransPose or TFPose .pth file")
    p.add_argument("--detector", default="auto",
                   help="auto | blazepose | hog | yolox-nano | onnx:FILE")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--smoothing", default="kalman", choices=("kalman", "one-euro", "none"))
    p.add_argument("--strength", type=float, default=1.0, help="smoothing strength (0 = off)")
    p.add_argument("--detect-every", type=int, default=5, metavar="N",
                   help="run the person detector every N frames (and whenever a person is lost)")
    p.add_argument("--overlay", action="store_true", help="also write <stem>.overlay.mp4")
    p.add_argument("--force", action="store_true", help="redo inputs whose outputs exist")


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


def outputs_for(inp: str, out_dir: Path, overlay: bool) -> dict[str, Path]:
    stem = Path(inp.rstrip("/")).stem if Path(inp).is_file() else Path(inp.rstrip("/")).name
    paths = {"csv": out_dir / f"{stem}.csv", "json": out_dir / f"{stem}.json"}
    if overlay:
        paths["overlay"] = out_dir / f"{stem}.overlay.mp4"
    return paths


def _progress_bar(total, desc, position, leave):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="frame", position=position, leave=leave,
                file=sys.stderr, dynamic_ncols=True, disable=None)


def annotate_one(engine: Engine, inp: str, outputs: dict[str, Path], overall,
                 progress: Callable[[int, int | None], None] | None = None) -> InputResult:
    """Annotate one input. `overall` (a tqdm-like bar or None) gets update(1) per frame;
    `progress(frames_done, frame_count_or_None)`, when given, is called after every frame
    instead of drawing a per-file tqdm bar (the GUI's progress bars); an exception it
    raises cancels the input and removes its unfinished outputs."""
    from ..video import open_source

    t0 = time.perf_counter()
    source = open_source(inp)
    sinks = []
    frames = 0
    bar = None
    try:
        h, w = source.size_hw
        info = SourceInfo(path=str(inp), width=w, height=h, fps=source.fps,
                          frame_count=source.frame_count, rotation=source.rotation)
        meta = ExportMetadata(info, ModelInfo(engine.model_name, engine.weights,
                                              engine.config.detector, engine.config.smoothing))
        sinks.append(KeypointCsvWriter(outputs["csv"]))
        sinks.append(KeypointJsonWriter(outputs["json"], meta))
        if "overlay" in outputs:
            sinks.append(OverlayVideoWriter(outputs["overlay"], source.fps, (h, w)))
        total = source.frame_count
        if progress is None:
            bar = _progress_bar(total, Path(inp).name[:30], 1, False)
        pipeline = engine.pipeline(source, keep_images="overlay" in outputs)

        def write(frame):
            nonlocal frames
            for sink in sinks:
                sink.write(frame)
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
        for warning in getattr(source, "warnings", []):
            log(f"warning: {inp}: {warning}")
        return InputResult(inp, "done", frames, time.perf_counter() - t0)
    finally:
        for sink in sinks:          # failed or interrupted: nothing half-written survives
            sink.abort()
        if bar is not None:
            bar.close()
        source.close()


def print_summary(results: list[InputResult], out=None) -> None:
    out = out or sys.stderr
    width = max([len("input")] + [len(r.name) for r in results])
    print(f"\n{'input':<{width}}  {'status':<9}{'frames':>8}{'fps':>8}  note", file=out)
    for r in results:
        fps = f"{r.frames / r.seconds:8.1f}" if r.seconds > 0 and r.frames else f"{'':>8}"
        print(f"{r.name:<{width}}  {r.status:<9}{r.frames:>8}{fps}  {r.message}", file=out)


def run(args: argparse.Namespace) -> int:
    out_dir = Path(args.out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{out_dir}: cannot create the output folder ({e.strerror or e})") from None
    inputs = expand_inputs(args.inputs)
    plan = [(inp, outputs_for(inp, out_dir, args.overlay)) for inp in inputs]
    todo = [(i, o) for i, o in plan if args.force or not all(p.exists() for p in o.values())]
    results = [InputResult(i, "skipped", message="outputs exist (use --force to redo)")
               for i, o in plan if (i, o) not in todo]
    if todo:
        engine = build_engine(EngineConfig(model=args.model, detector=args.detector,
                                           device=args.device, smoothing=args.smoothing,
                                           smoothing_strength=args.strength,
                                           detect_every=args.detect_every))
        log(f"pose model: {engine.pose_description}")
        log(f"detector: {args.detector}, smoothing: {args.smoothing}")
        overall = _progress_bar(None, "all inputs", 0, True)
        try:
            for inp, outputs in todo:
                try:
                    results.append(annotate_one(engine, inp, outputs, overall))
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
            for p in outputs_for(r.name, out_dir, args.overlay).values():
                print(p)
    return 0 if ok else 1
