#!/usr/bin/env python
"""Person-detector recall, precision and speed on COCO128's person boxes.

Usage (from the repository root):

    .venv/bin/python benchmarks/detector_recall.py                   # the default set
    .venv/bin/python benchmarks/detector_recall.py --detectors blazepose-auto yolox-opencv yolox-ort
    .venv/bin/python benchmarks/detector_recall.py --json out.json   # also write JSON ('-': stdout)

Data: ``--data DIR`` (default ../shared/datasets/coco128) in YOLO layout,
DIR/images/train2017/*.jpg and DIR/labels/train2017/*.txt (``cls cx cy w h`` normalised;
class 0 = person; an image without a label file has no objects). Every image is run (images
without people count for precision), unless ``--person-images-only``.

Matching: per image, detections in descending score order each take the unmatched ground
truth box with the highest IoU, if that IoU is >= ``--iou`` (0.5): a true positive; otherwise
a false positive. Recall = TP / ground-truth boxes; precision = TP / detections. Recall is
also split by COCO size (small < 32^2 px area <= medium < 96^2 <= large). AP50 is the area
under the interpolated precision/recall curve (all-points, as VOC 2010+).

Time: each detector call (pre-processing, model, decoding) with time.perf_counter, after one
warm-up call; the median over images is reported (ms/frame). It is sensitive to whatever
else runs on the machine: compare detectors within one run.

Detectors: ``blazepose`` (whole frame only), ``blazepose-tiled`` (plus a 2x2 grid of
tiles), ``blazepose-auto`` (the detector's default: tiles only frames >= 640 px on the long
side, which is most of COCO128), ``blazepose-roi`` / ``blazepose-roi-tiled`` (MediaPipe's
square ROI as the box instead of the default tight "body" box), ``hog``, ``yolox-ort``
(YOLOX through onnxruntime, the detector's default runtime; ``yolox`` is the same),
``yolox-opencv`` (the same model through OpenCV's DNN module) and ``auto`` (whatever
``create_detector("auto")`` picks; its description is printed). YOLOX reads ``--yolox-onnx``,
default resources/models/yolox_nano_416x416.onnx (shipped), else
../shared/models/yolox_nano_416x416.onnx. ``--threads`` is both LiteRT's (BlazePose) and
onnxruntime's thread count; OpenCV's DNN uses OpenCV's own (cv2.getNumThreads()). Default
set: blazepose-auto, blazepose, blazepose-tiled, hog, yolox-opencv, yolox-ort.

The 1-minute load average is printed before and after the run: times from a loaded machine
are only comparable within one run.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.detection import box_iou  # noqa: E402

SHARED = Path(os.environ.get("TRANSPOSE_SHARED", ROOT.parent / "shared"))

VARIANTS = {
    "blazepose": ("blazepose", {"tiling": "off"}),
    "blazepose-tiled": ("blazepose", {"tiling": "on"}),
    "blazepose-auto": ("blazepose", {"tiling": "auto"}),
    "blazepose-roi": ("blazepose", {"tiling": "off", "box": "roi"}),
    "blazepose-roi-tiled": ("blazepose", {"tiling": "on", "box": "roi"}),
    "hog": ("hog", {}),
    "yolox": ("yolox", {"runtime": "onnxruntime"}),
    "yolox-ort": ("yolox", {"runtime": "onnxruntime"}),
    "yolox-opencv": ("yolox", {"runtime": "opencv"}),
    "auto": ("auto", {}),
}
DEFAULT = ["blazepose-auto", "blazepose", "blazepose-tiled", "hog", "yolox-opencv", "yolox-ort"]
SHIPPED_YOLOX = ROOT / "resources" / "models" / "yolox_nano_416x416.onnx"


def load_yolo_dataset(root: Path, person_images_only: bool = False, limit: int | None = None
                      ) -> list[tuple[Path, np.ndarray]]:
    """[(image path, (N, 4) person boxes x, y, w, h in pixels)] sorted by file name."""
    images = sorted((root / "images" / "train2017").glob("*.jpg"))
    if not images:
        images = sorted(p for p in (root / "images").rglob("*") if p.suffix.lower() in (".jpg", ".png"))
    if not images:
        sys.exit(f"{root}: no images under images/ (expected the YOLO layout of coco128)")
    out = []
    for img in images:
        lab = Path(str(img.with_suffix(".txt")).replace(f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"))
        rows = []
        if lab.exists():
            for line in lab.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 5 and int(float(parts[0])) == 0:
                    rows.append([float(v) for v in parts[1:5]])
        if person_images_only and not rows:
            continue
        h, w = _image_size(img)
        boxes = np.zeros((len(rows), 4), np.float32)
        for i, (cx, cy, bw, bh) in enumerate(rows):
            boxes[i] = [(cx - bw / 2) * w, (cy - bh / 2) * h, bw * w, bh * h]
        out.append((img, boxes))
        if limit and len(out) >= limit:
            break
    return out


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except (OSError, AttributeError):
        return "n/a"


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except ImportError:
        return None


def _image_size(path: Path) -> tuple[int, int]:
    im = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return int(im.shape[0]), int(im.shape[1])


def match(det_boxes: np.ndarray, det_scores: np.ndarray, gt: np.ndarray, iou_thr: float
          ) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching by score: (is_tp per detection, matched per gt box)."""
    order = np.argsort(-det_scores, kind="stable")
    tp = np.zeros(len(det_boxes), bool)
    taken = np.zeros(len(gt), bool)
    if len(gt) and len(det_boxes):
        iou = box_iou(det_boxes, gt)
        for i in order:
            cand = np.where(taken, -1.0, iou[i])
            j = int(np.argmax(cand))
            if cand[j] >= iou_thr:
                tp[i] = True
                taken[j] = True
    return tp, taken


def average_precision(scores: np.ndarray, tp: np.ndarray, n_gt: int) -> float:
    if n_gt == 0 or len(scores) == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    tps = np.cumsum(tp[order])
    fps = np.cumsum(~tp[order])
    rec = tps / n_gt
    prec = tps / np.maximum(tps + fps, 1)
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mpre = np.concatenate([[0.0], prec, [0.0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    idx = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))


def build(variant: str, yolox_onnx: Path, threads: int):
    from core.detection import create_detector
    kind, opts = VARIANTS[variant]
    if kind == "blazepose":
        return create_detector("blazepose", num_threads=threads, **opts)
    if kind == "hog":
        return create_detector("hog")
    if kind == "auto":
        return create_detector("auto")
    if not yolox_onnx.is_file():
        return None
    if opts["runtime"] == "onnxruntime":
        opts = {**opts, "num_threads": threads}
    return create_detector(f"onnx:{yolox_onnx}", **opts)


def evaluate(detector, data: list[tuple[Path, np.ndarray]], iou_thr: float) -> dict:
    times, all_scores, all_tp = [], [], []
    n_gt = 0
    found = {"small": [0, 0], "medium": [0, 0], "large": [0, 0]}
    detector(cv2.imread(str(data[0][0])))  # warm-up
    for path, gt in data:
        image = cv2.imread(str(path))
        t0 = time.perf_counter()
        det = detector(image)
        times.append((time.perf_counter() - t0) * 1000)
        tp, taken = match(det.boxes, det.scores, gt, iou_thr)
        all_scores.append(det.scores)
        all_tp.append(tp)
        n_gt += len(gt)
        area = gt[:, 2] * gt[:, 3]
        for k, sel in (("small", area < 32 ** 2), ("medium", (area >= 32 ** 2) & (area < 96 ** 2)),
                       ("large", area >= 96 ** 2)):
            found[k][0] += int(taken[sel].sum())
            found[k][1] += int(sel.sum())
    scores = np.concatenate(all_scores) if all_scores else np.zeros(0)
    tp = np.concatenate(all_tp) if all_tp else np.zeros(0, bool)
    n_tp, n_det = int(tp.sum()), int(len(tp))
    return {
        "images": len(data), "gt_boxes": n_gt, "detections": n_det, "true_positives": n_tp,
        "recall": n_tp / n_gt if n_gt else float("nan"),
        "precision": n_tp / n_det if n_det else float("nan"),
        "ap50": average_precision(scores, tp, n_gt),
        "recall_by_size": {k: (v[0] / v[1] if v[1] else float("nan")) for k, v in found.items()},
        "gt_by_size": {k: v[1] for k, v in found.items()},
        "ms_median": statistics.median(times), "ms_p90": float(np.percentile(times, 90)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=SHARED / "datasets" / "coco128")
    ap.add_argument("--detectors", nargs="+", default=DEFAULT, choices=list(VARIANTS))
    ap.add_argument("--yolox-onnx", type=Path, default=SHIPPED_YOLOX if SHIPPED_YOLOX.is_file()
                    else SHARED / "models" / "yolox_nano_416x416.onnx")
    ap.add_argument("--iou", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=2,
                    help="LiteRT threads for BlazePose, onnxruntime threads for YOLOX")
    ap.add_argument("--limit", type=int, default=None, help="only the first N images")
    ap.add_argument("--person-images-only", action="store_true")
    ap.add_argument("--json", default=None, help="write the results as JSON to this file ('-': stdout)")
    args = ap.parse_args(argv)

    if not args.data.is_dir():
        sys.exit(f"{args.data}: no such folder (give --data DIR with coco128's YOLO layout)")
    data = load_yolo_dataset(args.data, args.person_images_only, args.limit)
    load_before = _load()
    results, described = {}, {}
    for name in args.detectors:
        det = build(name, args.yolox_onnx, args.threads)
        if det is None:
            print(f"[skip] {name}: {args.yolox_onnx} not found", file=sys.stderr)
            continue
        described[name] = getattr(det, "description", det.name)
        print(f"[run] {name}: {described[name]}", file=sys.stderr)
        results[name] = evaluate(det, data, args.iou)
        results[name]["description"] = described[name]
        r = results[name]
        print(f"[done] {name}: recall {r['recall']:.3f} precision {r['precision']:.3f} "
              f"{r['ms_median']:.1f} ms", file=sys.stderr)

    n_gt = next(iter(results.values()))["gt_boxes"] if results else 0
    load_after = _load()
    print(f"\n{len(data)} images, {n_gt} person boxes, IoU >= {args.iou}, greedy matching by score")
    print(f"{os.cpu_count()} CPUs, 1-minute load average {load_before} before, {load_after} after "
          f"(compare times within one run only)")
    head = ("detector", "recall", "precision", "AP50", "R small", "R medium", "R large",
            "dets", "ms/frame (median)")
    rows = [head]
    for name, r in results.items():
        rs = r["recall_by_size"]
        rows.append((name, f"{r['recall']:.3f}", f"{r['precision']:.3f}", f"{r['ap50']:.3f}",
                     f"{rs['small']:.3f}", f"{rs['medium']:.3f}", f"{rs['large']:.3f}",
                     str(r["detections"]), f"{r['ms_median']:.1f}"))
    if results:
        g = next(iter(results.values()))["gt_by_size"]
        print(f"(ground truth by size: {g['small']} small, {g['medium']} medium, {g['large']} large)")
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    for k, row in enumerate(rows):
        print("| " + " | ".join(c.ljust(widths[i]) for i, c in enumerate(row)) + " |")
        if k == 0:
            print("| " + " | ".join("-" * w for w in widths) + " |")
    for name, text in described.items():
        print(f"  {name}: {text}")

    if args.json:
        payload = {
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                        "python": platform.python_version(), "opencv": cv2.__version__,
                        "onnxruntime": _version("onnxruntime"),
                        "load_average_before": load_before, "load_average_after": load_after},
            "data": str(args.data), "iou": args.iou, "results": results,
        }
        text = json.dumps(payload, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
