#!/usr/bin/env python
"""Every GPU check in one run (under 5 minutes on an H100/H200 class GPU): correctness of
the CUDA paths against the CPU, crops/s per model, precision and batch, and end-to-end fps.

Usage (from the repository root; the device machine has torch with CUDA, numpy,
opencv-headless and onnxruntime, no PySide6/mediapipe/PyAV, so the clip is read with
OpenCV here):

    python benchmarks/gpu_check.py --json out/gpu_check.json           # on the GPU
    python benchmarks/gpu_check.py --device cpu --quick                  # dry run on a CPU

1. **Correctness**: the same estimator (TransPose-R-A3 and TransPose-H-A4 with the
   deterministic reference weights of tests/data/reference, and the shipped TransPose-M
   with its real weights) on a real photo (tests/data/reference/astronaut.png) on the CPU
   (fp32) and on the device in fp32 and bf16: the largest keypoint difference in image
   pixels, against tolerances stated below (fp32: 0.5 px, bf16: 4 px on a 512 px person,
   i.e. under one heatmap pixel at stride 4 of a 256x192 crop).
2. **Throughput**: crops/s of each network alone (fused, channels_last) at batch 1, 8, 32,
   128, 256 in fp32, bf16 (autocast) and bf16 + torch.compile; batch-1 latency in ms.
3. **End to end**: the pipeline's fps on a real clip (default tests/data/clip_person.mp4;
   pass an HD clip with --video) with the detector and the tracker, beside the pose
   model's own fps on the same crops (e2e / model-only).

Prints one table headed by the device's name; --json writes every figure. Exit status 1
when a correctness check fails.
"""
from __future__ import annotations

import argparse
import json
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
from core.pose.estimator import EstimatorConfig, TransPoseEstimator  # noqa: E402

REFERENCE = ROOT / "tests" / "data" / "reference"
PHOTO = REFERENCE / "astronaut.png"
PHOTO_BOX = [18.0, 9.5, 350.0, 502.0]        # the astronaut, x y w h
CLIP = ROOT / "tests" / "data" / "clip_person.mp4"
TOLERANCE_PX = {"fp32": 0.5, "bf16": 4.0}
BATCHES = (1, 8, 32, 128, 256)


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
def check_correctness(name: str, make: Callable[[], LoadedWeights], device: str,
                      image: np.ndarray) -> list[dict[str, Any]]:
    cpu = TransPoseEstimator(make(), EstimatorConfig(device="cpu", precision="fp32"))
    ref = cpu(image, [PHOTO_BOX])
    rows = []
    for precision in ("fp32", "bf16"):
        if precision == "bf16" and device == "cpu":
            continue                                     # autocast bf16 is the GPU path
        est = TransPoseEstimator(make(), EstimatorConfig(device=device, precision=precision))
        got = est(image, [PHOTO_BOX])
        diff = float(np.abs(got.keypoints - ref.keypoints).max())
        score = float(np.abs(got.scores - ref.scores).max())
        rows.append({"model": name, "precision": precision, "max_px": diff,
                     "max_score": score, "tolerance_px": TOLERANCE_PX[precision],
                     "ok": diff <= TOLERANCE_PX[precision]})
    return rows


# ---------------------------------------------------------------------------- 2. throughput
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_fn(fn: Callable[[], Any], device: torch.device, budget_s: float) -> float:
    """Median seconds per call: a warm-up, then calls until the budget is spent (>= 3)."""
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


def throughput(name: str, make: Callable[[], LoadedWeights], device: torch.device,
               batches: tuple[int, ...], budget_s: float, compile_: bool
               ) -> list[dict[str, Any]]:
    model = fuse_for_inference(make().model, channels_last=True).to(device).eval()
    h, w = model.config.input_size[1], model.config.input_size[0]
    forms: dict[str, Callable[[torch.Tensor], Any]] = {"fp32": model}
    if device.type == "cuda":
        def bf16(x: torch.Tensor, m: torch.nn.Module = model) -> Any:
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return m(x)
        forms["bf16"] = bf16
        if compile_:
            compiled = torch.compile(model, mode="max-autotune-no-cudagraphs", dynamic=False)

            def bf16_compiled(x: torch.Tensor) -> Any:
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    return compiled(x)
            forms["bf16-compiled"] = bf16_compiled
    rows = []
    with torch.inference_mode():
        for batch in batches:
            x = torch.randn(batch, 3, h, w, device=device).contiguous(
                memory_format=torch.channels_last)
            for form, fn in forms.items():
                try:
                    s = time_fn(lambda: fn(x), device, budget_s)
                except Exception as e:  # noqa: BLE001 - report the form and go on
                    print(f"  {name} {form} batch {batch}: failed ({type(e).__name__}: {e})")
                    continue
                rows.append({"model": name, "form": form, "batch": batch,
                             "ms": s * 1e3, "crops_per_s": batch / s})
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


def end_to_end(device: str, video: Path, max_frames: int) -> dict[str, Any]:
    from core.engine import EngineConfig, build_engine
    engine = build_engine(EngineConfig(model="auto", detector="auto", device=device),
                          progress=False)
    frames = list(CvClip(video, max_frames))
    if not frames:
        sys.exit(f"error: no frames in {video}")
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    pose = engine.pose

    class Recording:
        """The engine's pose model, recording what it was asked (for the model-only run)."""

        def __getattr__(self, name: str) -> Any:
            return getattr(pose, name)

        def __call__(self, image, boxes=None, *, attention=False, rotations=None):
            seen.append((image, boxes, rotations))
            return pose(image, boxes, attention=attention, rotations=rotations)

        def predict_many(self, requests, *, attention=False):
            seen.extend((r[0], r[1], None) for r in requests)
            return pose.predict_many(requests, attention=attention)
    engine.pose = Recording()                          # type: ignore[assignment]
    engine.pipeline(CvClip(video, 5)).run()            # warm-up (first-call allocations)
    seen.clear()
    t0 = time.perf_counter()
    engine.pipeline(CvClip(video, max_frames)).run()
    e2e = time.perf_counter() - t0
    t0 = time.perf_counter()
    for image, boxes, rotations in seen:   # (the step's unflipped turned retries excluded)
        pose(image, boxes, rotations=rotations)
    model_only = time.perf_counter() - t0
    return {"video": str(video), "frames": len(frames), "pose_calls": len(seen),
            "e2e_fps": len(frames) / e2e, "model_only_fps": len(frames) / model_only,
            "e2e_over_model": model_only / e2e, "pose": engine.pose_description}


# ---------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu (dry run)")
    p.add_argument("--quick", action="store_true",
                   help="batches 1 and 8 only, short timings (a CPU dry run)")
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    p.add_argument("--video", type=Path, default=CLIP, help="clip for the end-to-end run")
    p.add_argument("--max-frames", type=int, default=300)
    p.add_argument("--json", type=Path, help="write every figure to this file")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA GPU here (pass --device cpu for a dry run)", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    batches = (1, 8) if args.quick else BATCHES
    budget = 0.2 if args.quick else 1.0
    t_start = time.perf_counter()
    print(f"# GPU check on {name}; torch {torch.__version__}")
    image = read_photo()
    report: dict[str, Any] = {"device": name, "torch": torch.__version__,
                              "correctness": [], "throughput": []}
    for model_name, make in models_to_check().items():
        report["correctness"] += check_correctness(model_name, make, args.device, image)
        report["throughput"] += throughput(model_name, make, device, batches, budget,
                                           compile_=not args.no_compile and not args.quick)
    report["end_to_end"] = end_to_end(args.device, args.video,
                                      30 if args.quick else args.max_frames)
    report["seconds"] = time.perf_counter() - t_start

    print("\n## Correctness (max keypoint difference to the CPU fp32 result, image px)")
    print("| model | precision | max px | max score diff | tolerance | ok |")
    print("|---|---|---|---|---|---|")
    for r in report["correctness"]:
        print(f"| {r['model']} | {r['precision']} | {r['max_px']:.3f} | {r['max_score']:.4f} "
              f"| {r['tolerance_px']} | {'yes' if r['ok'] else 'NO'} |")
    print(f"\n## Throughput on {name} (network alone, fused, channels_last)")
    forms = sorted({r["form"] for r in report["throughput"]})
    print("| model | batch | " + " | ".join(f"{f} crops/s" for f in forms) + " |")
    print("|---|---|" + "---|" * len(forms))
    for model_name in dict.fromkeys(r["model"] for r in report["throughput"]):
        for batch in batches:
            cells = []
            for f in forms:
                hit = [r for r in report["throughput"] if r["model"] == model_name
                       and r["batch"] == batch and r["form"] == f]
                cells.append(f"{hit[0]['crops_per_s']:,.0f}" + (
                    f" ({hit[0]['ms']:.2f} ms)" if batch == 1 else "") if hit else "-")
            print(f"| {model_name} | {batch} | " + " | ".join(cells) + " |")
    e = report["end_to_end"]
    print(f"\n## End to end ({e['video']}, {e['frames']} frames, {e['pose']})")
    print(f"pipeline {e['e2e_fps']:.1f} fps, pose model alone {e['model_only_fps']:.1f} fps: "
          f"e2e / model-only = {e['e2e_over_model']:.2f}")
    print(f"\n(all checks in {report['seconds']:.0f} s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0 if all(r["ok"] for r in report["correctness"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
