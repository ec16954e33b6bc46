#!/usr/bin/env python
"""Every GPU check in one run (under 5 minutes on an H100/H200 class GPU): correctness of
the CUDA paths against the CPU, crops/s per model, precision and batch, and end-to-end fps.

Usage (from the repository root; the device machine has torch with CUDA, numpy,
opencv-headless and onnxruntime, no PySide6/mediapipe/PyAV, so clips are read with
OpenCV here):

    python benchmarks/gpu_check.py --json out/gpu_check.json           # on the GPU
    python benchmarks/gpu_check.py --device cpu --quick                  # dry run on a CPU

1. **Correctness**: the same estimator (TransPose-R-A3 and TransPose-H-A4 with the
   deterministic reference weights of tests/data/reference, and the shipped TransPose-M
   with its real weights) on a real photo (tests/data/reference/astronaut.png) on the CPU
   (fp32) and on the device in fp32, bf16 and fp16, and in the precision "auto" chooses
   with CUDA graphs: the heatmaps' largest difference relative to the CPU's peak, and the
   confident keypoints' largest difference in image pixels (fp32: 0.5 px, reduced
   precision: 4 px on a 512 px person, i.e. under one heatmap pixel at stride 4 of a
   256x192 crop). The random reference weights have flat maps whose peaks any rounding
   moves, so for them only the heatmaps are held to a tolerance.
2. **Throughput**: crops/s of each network alone (fused, channels_last, inputs already on
   the device) at batch 1, 8, 32, 128, 256 in fp32 and bf16 (autocast); then, while the
   time budget lasts, bf16 under torch.compile with CUDA graphs (mode "reduce-overhead",
   one graph per fixed batch size) at a few batch sizes. Beside the network alone, the
   latency of one whole estimator call for one and for four people (uint8 crops up from
   pinned memory, normalise and flip on the device, network, heatmaps back, DARK decode)
   in the precision "auto" chooses, eager and with CUDA graphs, with and without the flip
   test: what a live preview waits for; and the same calls in parts (crop; network with
   the upload, the heatmap peaks found on the device and the peaks back; the keypoints
   mapped to the image), to say where the time goes.
3. **End to end**: the pipeline's fps on real clips (default tests/data/clip_person.mp4,
   and the 1768x994 Sports2D clip when found under out/gpu/ or ../shared; --video to
   choose) with the default detector and the tracker, beside the pose model's own fps on
   exactly the same pose calls replayed alone (same frames, boxes and batches:
   e2e / model-only), and the pipeline's own per-stage ms per frame. The configurations:
   the defaults (detector every 5th frame, boxes followed from the keypoints between, the
   detector's passes started ahead on its own thread); the same with the detector on the
   inference thread as before (``detect_ahead`` off); the detector on every frame with 8
   frames per pose batch (cross-frame batching); the defaults with CUDA graphs.

Prints each table as its section ends, headed by the device's name; --json writes every
figure so far after each section (a run cut short still leaves its figures). Sections that
would overrun --budget-s are skipped and say so. Exit status 1 when a correctness check
fails.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.models import build_model, load_weights  # noqa: E402
from core.models.checkpoint import LoadedWeights  # noqa: E402
from core.models.fuse import fuse_for_inference  # noqa: E402
from core.pose.estimator import (EstimatorConfig, TransPoseEstimator,  # noqa: E402
                                 auto_precision)

REFERENCE = ROOT / "tests" / "data" / "reference"
PHOTO = REFERENCE / "astronaut.png"
PHOTO_BOX = [18.0, 9.5, 350.0, 502.0]        # the astronaut, x y w h
CLIP = ROOT / "tests" / "data" / "clip_person.mp4"
HD_CLIPS = (ROOT / "out" / "gpu" / "sports2d_demo.mp4",          # carried to the device
            ROOT.parent / "shared" / "datasets" / "videos" / "sports2d_demo.mp4")
TOLERANCE_PX = {"fp32": 0.5, "bf16": 4.0, "fp16": 4.0}
# fp32 on a GPU still differs: cuDNN runs fp32 convolutions in TF32 by default
HEATMAP_TOLERANCE = {"fp32": 0.02, "bf16": 0.1, "fp16": 0.1}   # of the CPU map's peak
CONFIDENT = 0.3
BATCHES = (1, 8, 32, 128, 256)
SECTIONS = {"correctness", "e2e", "latency", "throughput", "compile", "eager", "cpu"}
COMPILE_BATCHES = (1, 32, 256)   # each fixed size is one compile and one CUDA graph


def reference_model(variant: str) -> LoadedWeights:
    """The official architecture with the deterministic reference weights."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_weights", REFERENCE / "make_weights.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)                        # type: ignore[union-attr]
    sd = mod.build_state_dict(str(REFERENCE / f"{variant}.keys.json"))
    model = build_model(variant)
    model.load_state_dict(sd, strict=True)
    return LoadedWeights(model=model.eval(), config=model.config,
                         source=f"{variant} (reference weights)", variant=variant)


def models_to_check() -> dict[str, Callable[[], LoadedWeights]]:
    from core.catalogue import shipped_weights
    out: dict[str, Callable[[], LoadedWeights]] = {
        "tp-r-a3": lambda: reference_model("tp-r-a3"),
        "tp-h-a4": lambda: reference_model("tp-h-a4")}
    shipped = shipped_weights()
    if shipped is not None:
        out[shipped.stem] = lambda: load_weights(shipped, progress=False)
    return out


def read_photo() -> np.ndarray:
    import cv2
    img = cv2.imread(str(PHOTO))
    if img is None:
        sys.exit(f"error: cannot read {PHOTO}")
    return img


# ---------------------------------------------------------------------------- 1. correctness
def _heatmaps(est: TransPoseEstimator, image: np.ndarray) -> np.ndarray:
    crops = est._prepare(image, [PHOTO_BOX]).crops
    return est._run_network(crops, False)[0]


def check_correctness(name: str, make: Callable[[], LoadedWeights], device: str,
                      image: np.ndarray, graphs: bool = False) -> list[dict[str, Any]]:
    """The device's heatmaps and keypoints against the CPU's (fp32) on the photo.

    Heatmaps: the largest difference relative to the CPU map's peak. Keypoints: image
    pixels, over the keypoints a trained model finds confidently (CPU score >= CONFIDENT).
    Where a map has two near-equal peaks (every keypoint of the random reference weights,
    whose maps are flat, and an unseen joint of a real model) a rounding difference may
    pick the other one, so those are reported (max_px_all) but held to the heatmap
    tolerance only."""
    loaded = make()
    trained = "reference weights" not in loaded.source
    cpu = TransPoseEstimator(loaded, EstimatorConfig(device="cpu", precision="fp32"))
    ref = cpu(image, [PHOTO_BOX])
    ref_hm = _heatmaps(cpu, image)
    confident = (ref.scores[0] >= CONFIDENT) & trained
    auto = auto_precision(torch.device(device), loaded.config)
    forms = [("fp32", False)]
    if device != "cpu":                         # autocast in bf16 / fp16 is the GPU path
        forms += [("bf16", False), ("fp16", False)] + ([(auto, True)] if graphs else [])
    rows = []
    for precision, with_graphs in forms:
        est = TransPoseEstimator(make(), EstimatorConfig(
            device=device, precision=precision, cuda_graphs=with_graphs))
        got = est(image, [PHOTO_BOX])
        hm_rel = float(np.abs(_heatmaps(est, image) - ref_hm).max() / np.abs(ref_hm).max())
        px = np.abs(got.keypoints - ref.keypoints).max(-1)[0]
        held = float(px[confident].max()) if confident.any() else 0.0
        form = precision + (" (auto)" if precision == auto else "") + \
            (" + CUDA graphs" if with_graphs else "")
        rows.append({"model": name, "precision": form, "heatmap_rel": hm_rel,
                     "used_by_auto": precision in (auto, "fp32"),
                     "heatmap_tolerance": HEATMAP_TOLERANCE[precision],
                     "confident": int(confident.sum()), "max_px": held,
                     "max_px_all": float(px.max()),
                     "max_score": float(np.abs(got.scores - ref.scores).max()),
                     "tolerance_px": TOLERANCE_PX[precision],
                     "ok": hm_rel <= HEATMAP_TOLERANCE[precision]
                     and held <= TOLERANCE_PX[precision]})
    return rows


# ---------------------------------------------------------------------------- 2. throughput
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_fn(fn: Callable[[], Any], device: torch.device, budget_s: float) -> float:
    """Median seconds per call: two warm-ups, then calls until the budget is spent (>= 3)."""
    fn()
    fn()
    _sync(device)
    times = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < budget_s and len(times) < 200):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def inference_network(make: Callable[[], LoadedWeights], device: torch.device
                      ) -> torch.nn.Module:
    return fuse_for_inference(make().model, channels_last=True).to(device).eval()


def _bf16(fn: Callable[[torch.Tensor], Any]) -> Callable[[torch.Tensor], Any]:
    def run(x: torch.Tensor) -> Any:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return fn(x)
    return run


def time_forms(name: str, model: torch.nn.Module, forms: dict[str, Callable[[torch.Tensor], Any]],
               device: torch.device, batches: tuple[int, ...], budget_s: float,
               deadline: float | None = None) -> list[dict[str, Any]]:
    h, w = model.config.input_size[1], model.config.input_size[0]
    rows = []
    with torch.inference_mode():
        for batch in batches:
            x = torch.randn(batch, 3, h, w, device=device).contiguous(
                memory_format=torch.channels_last)
            for form, fn in forms.items():
                if deadline is not None and time.perf_counter() > deadline:
                    print(f"  {name} {form} batch {batch}: skipped (time budget spent)")
                    continue
                try:
                    s = time_fn(lambda: fn(x), device, budget_s)
                except Exception as e:  # noqa: BLE001 - report the form and go on
                    print(f"  {name} {form} batch {batch}: failed ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:200] if str(e) else ''})")
                    continue
                rows.append({"model": name, "form": form, "batch": batch,
                             "ms": s * 1e3, "crops_per_s": batch / s})
    return rows


def throughput(name: str, make: Callable[[], LoadedWeights], device: torch.device,
               batches: tuple[int, ...], budget_s: float) -> list[dict[str, Any]]:
    """The network alone in eager mode: fp32, and bf16 autocast on CUDA."""
    model = inference_network(make, device)
    forms: dict[str, Callable[[torch.Tensor], Any]] = {"fp32": model}
    if device.type == "cuda":
        forms["bf16"] = _bf16(model)
    return time_forms(name, model, forms, device, batches, budget_s)


def compiled_throughput(name: str, make: Callable[[], LoadedWeights], device: torch.device,
                        batches: tuple[int, ...], budget_s: float, deadline: float
                        ) -> list[dict[str, Any]]:
    """bf16 under torch.compile with CUDA graphs (one graph per fixed batch size)."""
    if time.perf_counter() > deadline:
        print(f"  {name} compiled: skipped (time budget spent)")
        return []
    model = inference_network(make, device)
    try:
        compiled = torch.compile(model, mode="reduce-overhead", dynamic=False)
    except Exception as e:  # noqa: BLE001
        print(f"  {name} compiled: torch.compile failed ({type(e).__name__}: {e})")
        return []
    return time_forms(name, model, {"bf16-compiled": _bf16(compiled)}, device, batches,
                      budget_s, deadline)


def call_latency(name: str, make: Callable[[], LoadedWeights], device: str,
                 image: np.ndarray, budget_s: float, graphs: bool = False
                 ) -> list[dict[str, Any]]:
    """One whole estimator call (crop, upload, network, heatmaps back, decode) for one and
    for four people, in the precision "auto" chooses (with CUDA graphs when asked), flip
    test on and off."""
    h, w = image.shape[:2]
    four = [PHOTO_BOX, [0, 0, w / 2, h / 2], [w / 2, 0, w / 2, h / 2], [0, h / 2, w, h / 2]]
    rows = []
    loaded = make()
    precision = auto_precision(torch.device(device), loaded.config)
    est = TransPoseEstimator(loaded, EstimatorConfig(device=device, cuda_graphs=graphs))
    t0 = time.perf_counter()
    est.warm_up(max_people=4)
    est.without_flip().warm_up(max_people=4)
    warm = time.perf_counter() - t0
    for flip in (True, False):
        one = est if flip else est.without_flip()
        for boxes in ([PHOTO_BOX], four):
            s = time_fn(lambda: one(image, boxes), torch.device(device), budget_s)
            rows.append({"model": name, "precision": precision, "graphs": graphs,
                         "flip_test": flip, "people": len(boxes), "ms": s * 1e3,
                         "warm_up_s": warm,
                         "parts_ms": call_parts(one, image, boxes, device, budget_s / 2)})
    return rows


def call_parts(est: TransPoseEstimator, image: np.ndarray, boxes: list, device: str,
               budget_s: float) -> dict[str, float]:
    """Where one call's time goes (each part timed alone, median ms): the crops cut out on
    the CPU; the network on the estimator's thread (upload from pinned memory, normalise
    and flip on the device, forward, heatmap peaks found there and brought back; on a CPU
    the peaks, DARK included, are found in numpy here); the peaks mapped to the image."""
    dev = torch.device(device)
    crops = est._prepare(image, boxes)
    result = est._run_network(crops.crops, False)
    people = slice(0, len(boxes))
    return {"crop": time_fn(lambda: est._prepare(image, boxes), dev, budget_s) * 1e3,
            "network": time_fn(lambda: est._run_network(crops.crops, False), dev,
                               budget_s) * 1e3,
            "finish": time_fn(lambda: est._finish(crops, result, people), dev,
                              budget_s) * 1e3}


def cpu_threads(make: Callable[[], LoadedWeights], image: np.ndarray, budget_s: float
                ) -> list[dict[str, Any]]:
    """The shipped model on this machine's CPU cores (the device machine has more than the
    2-core development machines, where the thread policy was measured): one estimator call
    for one and for five people (flip test on) with 2, 4, 8 and all usable threads, the
    stem's batches split into parts (core.threads, the default) and as one call; and the
    YOLOX detector with 1, 2 and 4 threads. torch's thread count is restored after."""
    from core.detection import create_detector
    from core.threads import usable_cpus
    h, w = image.shape[:2]
    five = [PHOTO_BOX, [0, 0, w / 2, h / 2], [w / 2, 0, w / 2, h / 2],
            [0, h / 2, w / 2, h / 2], [w / 2, h / 2, w / 2, h / 2]]
    cpus, before, rows = usable_cpus(), torch.get_num_threads(), []
    loaded, cpu = make(), torch.device("cpu")
    try:
        for threads in sorted({t for t in (2, 4, 8, cpus) if t <= cpus}):
            torch.set_num_threads(threads)
            for split in (True, False):
                est = TransPoseEstimator(loaded, EstimatorConfig(device="cpu",
                                                                 split_batches=split))
                for boxes in ([PHOTO_BOX], five):
                    s = time_fn(lambda: est(image, boxes), cpu, budget_s)
                    rows.append({"what": "pose", "threads": threads, "split": split,
                                 "people": len(boxes), "ms": s * 1e3,
                                 # onnxruntime, or torch where onnx is missing (no split)
                                 "stem": type(getattr(est.model, "stem", None)).__name__})
    finally:
        torch.set_num_threads(before)
    for threads in (1, 2, 4):
        det = create_detector("yolox-nano", num_threads=threads)
        s = time_fn(lambda: det(image), cpu, budget_s)
        rows.append({"what": "detector", "threads": threads, "ms": s * 1e3})
    return rows


# ---------------------------------------------------------------------------- 3. end to end
class CvClip:
    """A video read with OpenCV (the device machine has no PyAV): a FrameSource enough for
    the pipeline (iterate, seek to 0, close)."""

    def __init__(self, path: Path, max_frames: int) -> None:
        self.path, self.max_frames = path, max_frames
        self.fps = None
        self.frame_count = None

    def __iter__(self):
        import cv2

        from core.types import Frame
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            sys.exit(f"error: cannot open {self.path}")
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        i = 0
        while i < self.max_frames:
            ok, img = cap.read()
            if not ok:
                break
            yield Frame(i, i / fps, img)
            i += 1
        cap.release()

    def seek(self, index: int) -> None:
        pass

    def close(self) -> None:
        pass


class RecordingPose:
    """The engine's pose model, recording every call as it was made (single calls and
    cross-frame predict_many batches alike) so that the model-only run replays exactly the
    same work."""

    def __init__(self, pose: Any) -> None:
        self.pose = pose
        self.calls: list[tuple[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pose, name)

    def __call__(self, image, boxes=None, *, attention=False, **crop_options):
        # crop_options: what the step passes (rotations for turned crops, crop contexts)
        self.calls.append(("one", (image, boxes, crop_options)))
        return self.pose(image, boxes, attention=attention, **crop_options)

    def predict_many(self, requests, *, attention=False):
        self.calls.append(("many", list(requests)))
        return self.pose.predict_many(requests, attention=attention)

    def replay(self) -> float:
        """Seconds for the recorded calls, the pose model alone."""
        t0 = time.perf_counter()
        for kind, payload in self.calls:
            if kind == "one":
                image, boxes, crop_options = payload
                self.pose(image, boxes, **crop_options)
            else:
                self.pose.predict_many(payload)
        return time.perf_counter() - t0


def end_to_end(device: str, video: Path, max_frames: int, *, detect_every: int = 5,
               frames_per_batch: int = 0, label: str = "defaults", graphs: bool = False,
               detect_ahead: bool = True) -> dict[str, Any]:
    """The batch pipeline on `video` (frames read with OpenCV), then the pose model alone on
    the same calls; frames_per_batch 0 = the engine's choice (8 on CUDA with the detector
    on every frame). The model is warmed up first (every batch size up to 8 people, and 16
    with 8 frames per batch), and the seconds that took are reported."""
    from core.engine import EngineConfig, build_engine
    t0 = time.perf_counter()
    engine = build_engine(EngineConfig(model="auto", detector="auto", device=device,
                                       detect_every=detect_every, cuda_graphs=graphs,
                                       frames_per_batch=frames_per_batch,
                                       detect_ahead=detect_ahead), progress=False)
    if hasattr(engine.pose, "warm_up"):
        engine.pose.warm_up(max_people=16 if detect_every == 1 else 8)
    warm = time.perf_counter() - t0
    recording = RecordingPose(engine.pose)
    engine.pose = recording                                 # type: ignore[assignment]
    engine.pipeline(CvClip(video, 5)).run()                 # warm-up (first-call allocations)
    recording.calls.clear()
    pipeline = engine.pipeline(CvClip(video, max_frames))
    t0 = time.perf_counter()
    pipeline.run()
    e2e = time.perf_counter() - t0
    frames = pipeline.stats.frames_out
    if not frames:
        sys.exit(f"error: no frames in {video}")
    model_only = recording.replay()
    crops = sum(len(p[1]) if k == "one" else sum(len(r[1]) for r in p)
                for k, p in recording.calls)
    return {"video": str(video), "config": label + (" + CUDA graphs" if graphs else ""),
            "detect_every": detect_every, "build_and_warm_up_s": warm,
            "frames_per_batch": pipeline.config.frames_per_batch, "frames": frames,
            "pose_calls": len(recording.calls), "crops_per_frame": crops / frames,
            "detector_runs": pipeline.stats.detector_runs,
            "stage_ms_per_frame": {k: v / frames for k, v in pipeline.stats.stage_ms.items()},
            "e2e_fps": frames / e2e, "model_only_fps": frames / model_only,
            "e2e_over_model": model_only / e2e, "pose": engine.pose_description,
            "detector": getattr(engine.detector, "description", type(engine.detector).__name__)}


def default_videos() -> list[Path]:
    """The small test clip, and the first HD clip found."""
    return [CLIP] + [p for p in HD_CLIPS if p.exists()][:1]


# ---------------------------------------------------------------------------- report
def environment(device: torch.device) -> dict[str, Any]:
    env: dict[str, Any] = {"torch": torch.__version__, "numpy": np.__version__,
                           "python": platform.python_version(), "cpu_count": os.cpu_count()}
    try:
        import onnxruntime as ort
        env["onnxruntime"] = ort.__version__
        env["onnxruntime_providers"] = ort.get_available_providers()
    except ImportError:
        env["onnxruntime"] = None
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update({"cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
                    "gpu_memory_gib": round(props.total_memory / 2**30, 1),
                    "capability": f"{props.major}.{props.minor}"})
    return env


def print_correctness(rows: list[dict[str, Any]]) -> None:
    print(f"\n## Correctness against the CPU (fp32): heatmaps (max difference / CPU peak) "
          f"and keypoints (image px; held to the tolerance where the CPU score >= "
          f"{CONFIDENT}); ok only matters for fp32 and the precision auto chooses")
    print("| model | precision | heatmap diff (tol.) | confident kp | max px (tol.) "
          "| max px, all kp | max score diff | ok |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['precision']} | {r['heatmap_rel']:.4f} "
              f"({r['heatmap_tolerance']}) | {r['confident']} | {r['max_px']:.3f} "
              f"({r['tolerance_px']}) | {r['max_px_all']:.1f} | {r['max_score']:.4f} "
              f"| {'yes' if r['ok'] else 'NO'} |")


def print_throughput(name: str, rows: list[dict[str, Any]], batches: tuple[int, ...]) -> None:
    print(f"\n## Throughput on {name} (network alone, fused, channels_last; crops/s, "
          f"batch-1 latency in brackets)")
    forms = list(dict.fromkeys(r["form"] for r in rows))
    print("| model | batch | " + " | ".join(forms) + " |")
    print("|---|---|" + "---|" * len(forms))
    for model_name in dict.fromkeys(r["model"] for r in rows):
        for batch in batches:
            cells = []
            for f in forms:
                hit = [r for r in rows if r["model"] == model_name and r["batch"] == batch
                       and r["form"] == f]
                cells.append((f"{hit[0]['crops_per_s']:,.0f}" + (
                    f" ({hit[0]['ms']:.2f} ms)" if batch == 1 else "")) if hit else "-")
            print(f"| {model_name} | {batch} | " + " | ".join(cells) + " |")


def print_latency(rows: list[dict[str, Any]]) -> None:
    print("\n## One estimator call (crop, upload, network, heatmaps back, decode), ms")
    print("| model | form | 1 person, flip | 1 person, no flip | 4 people, flip "
          "| 4 people, no flip | warm-up s |")
    print("|---|---|---|---|---|---|---|")
    for key in dict.fromkeys((r["model"], r["graphs"]) for r in rows):
        got = {(r["flip_test"], r["people"]): r for r in rows
               if (r["model"], r["graphs"]) == key}
        first = next(iter(got.values()))
        form = first["precision"] + (" + CUDA graphs" if key[1] else "")
        cells = " | ".join(f"{got[(f, n)]['ms']:.2f}" if (f, n) in got else "-"
                           for n in (1, 4) for f in (True, False))
        print(f"| {key[0]} | {form} | {cells} | {first['warm_up_s']:.1f} |")
    print("\nThe same calls in parts (crop / network with upload and heatmap peaks / "
          "peaks mapped to the image), ms:")
    for r in rows:
        if "parts_ms" in r:
            p = r["parts_ms"]
            print(f"  {r['model']} {r['precision']}{' + graphs' if r['graphs'] else ''}, "
                  f"{r['people']} {'person' if r['people'] == 1 else 'people'}, "
                  f"flip {'on' if r['flip_test'] else 'off'}: "
                  f"{p['crop']:.2f} / {p['network']:.2f} / {p['finish']:.2f} "
                  f"(whole call {r['ms']:.2f})")


def print_cpu_threads(rows: list[dict[str, Any]]) -> None:
    from core.threads import detector_threads, usable_cpus
    print(f"\n## The CPU's cores ({usable_cpus()} usable): the shipped model per call, ms "
          f"(flip test on; the stem split into parts is the default), and YOLOX-Nano per "
          f"frame (default {detector_threads()} threads here)")
    print("| threads | 1 person, split | 1 person, one call | 5 people, split "
          "| 5 people, one call |")
    print("|---|---|---|---|---|")
    pose = [r for r in rows if r["what"] == "pose"]
    for t in dict.fromkeys(r["threads"] for r in pose):
        got = {(r["people"], r["split"]): r["ms"] for r in pose if r["threads"] == t}
        print(f"| {t} | " + " | ".join(f"{got[k]:.1f}" if k in got else "-" for k in
                                       ((1, True), (1, False), (5, True), (5, False))) + " |")
    print("stem run by: " + ", ".join(sorted({r["stem"] for r in pose})))
    print("YOLOX-Nano: " + ", ".join(f"{r['threads']} threads {r['ms']:.1f} ms"
                                      for r in rows if r["what"] == "detector"))


def print_end_to_end(rows: list[dict[str, Any]]) -> None:
    print("\n## End to end (batch mode, default model and detector; stage ms per frame)")
    print("| video | configuration | frames | crops/frame | detector runs | pipeline fps "
          "| pose alone fps | e2e / model-only | read | detect | pose | track | warm-up s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for e in rows:
        ms = e["stage_ms_per_frame"]
        print(f"| {Path(e['video']).name} | {e['config']} | {e['frames']} "
              f"| {e['crops_per_frame']:.2f} | {e['detector_runs']} | {e['e2e_fps']:.1f} "
              f"| {e['model_only_fps']:.1f} | {e['e2e_over_model']:.2f} | {ms['read']:.1f} "
              f"| {ms['detect']:.1f} | {ms['pose']:.1f} | {ms['track']:.1f} "
              f"| {e['build_and_warm_up_s']:.1f} |")
    if rows:
        print(f"(pose: {rows[0]['pose']}; detector: {rows[0]['detector']})")


# ---------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu (dry run)")
    p.add_argument("--quick", action="store_true",
                   help="batches 1 and 8 only, short timings, 30 frames (a CPU dry run)")
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    p.add_argument("--video", type=Path, action="append",
                   help="clip for the end-to-end runs (repeatable; default clip_person.mp4 "
                        "and the Sports2D clip when found)")
    p.add_argument("--max-frames", type=int, default=300)
    p.add_argument("--budget-s", type=float, default=270.0,
                   help="compiled timings and end-to-end runs that would start after this "
                        "many seconds are skipped (default 270)")
    p.add_argument("--skip", default="", metavar="LIST",
                   help="comma list of sections to leave out: correctness, e2e, latency, "
                        "throughput, compile (CUDA graphs), eager (the eager forms in e2e "
                        "and latency), cpu (the shipped model and YOLOX on the CPU's cores "
                        "with several thread counts)")
    p.add_argument("--json", type=Path, help="write every figure to this file")
    args = p.parse_args(argv)
    skip = {x.strip() for x in args.skip.split(",") if x.strip()}
    unknown = skip - SECTIONS
    if unknown:
        p.error(f"--skip: unknown section(s) {', '.join(sorted(unknown))}")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA GPU here (pass --device cpu for a dry run)", file=sys.stderr)
        return 2
    for video in args.video or []:
        if not video.is_file():
            print(f"error: {video}: no such video file", file=sys.stderr)
            return 2
    cuda = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if cuda else \
        f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    batches = (1, 8) if args.quick else BATCHES
    budget = 0.2 if args.quick else 1.0
    t_start = time.perf_counter()
    deadline = t_start + args.budget_s
    report: dict[str, Any] = {"device": name, "environment": environment(device),
                              "correctness": [], "throughput": [], "call_latency": [],
                              "end_to_end": []}

    def save() -> None:
        report["seconds"] = time.perf_counter() - t_start
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            tmp = args.json.with_name(args.json.name + ".part")
            tmp.write_text(json.dumps(report, indent=1) + "\n")
            tmp.replace(args.json)

    def in_time(what: str) -> bool:
        if time.perf_counter() <= deadline:
            return True
        print(f"  {what}: skipped (time budget spent)", flush=True)
        return False

    def attempt(what: str, fn: Callable[[], Any], default: Any) -> Any:
        """One measurement; a failure is printed and recorded, and the run goes on."""
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - one run on a lent GPU: keep every figure
            import traceback
            print(f"  {what}: FAILED\n{traceback.format_exc()}", flush=True)
            report.setdefault("errors", []).append(f"{what}: {type(e).__name__}: {e}")
            return default

    print(f"# GPU check on {name}; " + ", ".join(
        f"{k} {v}" for k, v in report["environment"].items()), flush=True)
    image = read_photo()
    models = models_to_check()
    shipped = [m for m in models if m not in ("tp-r-a3", "tp-h-a4")]
    graphs = cuda and "compile" not in skip and not args.quick
    if "correctness" not in skip:
        for model_name, make in models.items():
            report["correctness"] += attempt(
                f"correctness {model_name}", lambda: check_correctness(
                    model_name, make, args.device, image,
                    graphs=graphs and model_name != "tp-h-a4"), [])
        print_correctness(report["correctness"])
        save()
    # end to end: the product's own configurations, most telling first
    videos = args.video or default_videos()
    frames = 30 if args.quick else args.max_frames
    configs: list[dict[str, Any]] = [
        {"label": "defaults", "detect_every": 5},
        {"label": "defaults, detector not ahead", "detect_every": 5, "detect_ahead": False},
        {"label": "detector every frame, 8 frames/batch", "detect_every": 1,
         "frames_per_batch": 8}]
    if "eager" in skip:
        configs = []
    if graphs:
        configs.append({"label": "defaults", "detect_every": 5, "graphs": True})
    if "e2e" not in skip:
        for video in videos[::-1]:                  # the HD clip first
            for cfg in configs:
                if in_time(f"end to end {video.name} ({cfg['label']})"):
                    report["end_to_end"] += attempt(
                        f"end to end {video.name} ({cfg['label']})",
                        lambda: [end_to_end(args.device, video, frames, **cfg)], [])
                    save()
        print_end_to_end(report["end_to_end"])
    if "latency" not in skip:
        for model_name in ["tp-r-a3"] + shipped:
            forms = ([] if "eager" in skip else [False]) + ([True] if graphs else [])
            for g in forms:
                if in_time(f"latency {model_name}{' graphs' if g else ''}"):
                    report["call_latency"] += attempt(
                        f"latency {model_name}", lambda: call_latency(
                            model_name, models[model_name], args.device, image, budget, g), [])
                    save()
        print_latency(report["call_latency"])
    if "cpu" not in skip and shipped and in_time("cpu threads"):
        # before the throughput tables: a few seconds, and no GPU session has measured the
        # thread policy on more than 2 cores
        report["cpu_threads"] = attempt("cpu threads", lambda: cpu_threads(
            models[shipped[0]], image, budget / 2), [])
        print_cpu_threads(report["cpu_threads"])
        save()
    if "throughput" not in skip:
        for model_name, make in models.items():
            if in_time(f"throughput {model_name}"):
                report["throughput"] += throughput(model_name, make, device, batches, budget)
                save()
        print_throughput(name, report["throughput"], batches)
    if graphs and "throughput" not in skip:
        # last: compiling (one graph per batch size) is the slowest part
        for model_name in ["tp-r-a3"] + shipped + ["tp-h-a4"]:
            report["throughput"] += compiled_throughput(model_name, models[model_name], device,
                                                        COMPILE_BATCHES, budget, deadline)
            save()
        print_throughput(name, [r for r in report["throughput"]
                                if r["batch"] in COMPILE_BATCHES], COMPILE_BATCHES)
    if cuda:
        report["environment"]["max_memory_allocated_gib"] = round(
            torch.cuda.max_memory_allocated(device) / 2**30, 2)
    save()
    print(f"\n(all checks in {report['seconds']:.0f} s)")
    # (a precision that "auto" does not choose for a model may fail: it is reported, as
    # bf16 for TransPose-M, and the reason for auto's choice)
    ok = all(r["ok"] for r in report["correctness"] if r["used_by_auto"])
    return 0 if ok and "errors" not in report else 1


if __name__ == "__main__":
    raise SystemExit(main())
