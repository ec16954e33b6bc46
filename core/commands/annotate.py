"""`main.py annotate`: batch annotation of videos and image folders to CSV/JSON/overlay."""
from __future__ import annotations

import argparse
import glob
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import InputError, StudioError
from ..engine import build_engine
from ..analysis.angles import parse_angle_names
from ..analysis.selection import PersonSelection
from ..batch.config import (CONVERTERS, AnnotateConfig, resolve_config, with_absolute_paths,
                            write_config)
from ..batch.job import (InputResult, annotate_one, busy_result, engine_config, outputs_for,
                         progress_bar, quiet_source_warnings)
from ..batch.locks import IF_LOCKED, OutputBusy
from ..batch.plan import PlannedInput, expand_inputs, parse_shard, shard
from ..batch.signals import interrupt_reason, termination_as_interrupt
from ..io_utils import log
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
    p.add_argument("--cuda-graphs", action=argparse.BooleanOptionalAction, default=None,
                   help="TransPose on a CUDA GPU: run each batch size as one CUDA graph "
                   "(compiled when the model loads, a minute or two; then a small batch runs "
                   "several times faster; see docs/performance.md)")
    p.add_argument("--backfill", action=argparse.BooleanOptionalAction, default=None,
                   help="follow people the detector finds first back through the frames "
                   "since its previous pass (someone walking in, or out from behind "
                   "something); on by default")
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
                   help="list the angles beside each person on the overlay video (a "
                   "list that would cover another's is left out; all are in the CSV)")
    a.add_argument("--person-height", type=float, metavar="METRES",
                   help="scale to metres from the height of the longest-tracked person "
                   "(of those tracked about as long, the tallest in the image)")
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
        note = r.message or r.warning_note()     # a warning would scroll away above
        print(f"{r.name:<{width}}  {r.status:<9}{r.frames:>8}{fps}  {note}", file=out)


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
    planned: list[PlannedInput] = expand_inputs(list(config.inputs), options.recursive)
    every = [BatchItem(it.path, it.key, outputs_for(it.path, out_dir, config.overlay,
                                                    config.formats, config.is_analysis_run,
                                                    key=it.key)) for it in planned]
    mine = planned
    if options.shard is not None:
        mine = shard(planned, *options.shard)
    keys = {it.key for it in mine}
    return [b for b in every if b.key in keys], every


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
    with termination_as_interrupt(), quiet_source_warnings():
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
    # a file that is not there fails now, before the models load (seconds, for nothing
    # when every input is a typo)
    for item in [b for b in todo if _missing(b.path)]:
        log(f"error: {item.path}: no such file")
        record(item, InputResult(item.path, "failed", message=f"{item.path}: no such file"))
        todo.remove(item)
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


def _missing(path: str) -> bool:
    from ..video import is_camera_spec
    return not is_camera_spec(path) and not Path(path).exists()


def _run_serial(todo: list[BatchItem], config: AnnotateConfig, options: BatchOptions,
                record: Callable[[BatchItem, InputResult], None]) -> None:
    """One process: the model loaded once, the inputs one after the other."""
    device = options.devices[0] if options.devices else None
    engine = build_engine(engine_config(config, device))
    log(f"pose model: {engine.pose_description}")
    log(f"detector: {config.detector}, smoothing: {config.smoothing}")
    overall = progress_bar(None, "all inputs", 0, True)
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
