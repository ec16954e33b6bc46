#!/usr/bin/env python
"""Mean OKS of BlazePoseEstimator on the public evaluation set, with ground-truth boxes.

Usage (from the repository root):

    .venv/bin/python benchmarks/blazepose_oks.py
    .venv/bin/python benchmarks/blazepose_oks.py --set crop_scale=1.25 --set roi_passes=0
    .venv/bin/python benchmarks/blazepose_oks.py --box-scale 1.0 --json out.json

The public evaluation set (../shared/datasets/README.md): coco-mini-train (COCO keypoint
JSON, 80 people) and coco8-pose (YOLO-pose, 21 people): every non-crowd person with at
least 3 labelled keypoints (v > 0). Each person's ground-truth box, enlarged x1.25 about
its centre (--box-scale), goes to the estimator alone. OKS uses the COCO sigmas and the
annotation's area (coco8-pose has none: box w * h * 0.53), as pycocotools computes it:
mean over labelled keypoints of exp(-d^2 / (2 * area * (2 sigma)^2)).

Also reports the estimator's time per crop (model + crop + decode, one person per call,
median over the set, after a warm-up). Needs numpy, opencv, ai-edge-litert, mediapipe.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.evaluation import enlarge_box, oks, oks_terms  # noqa: E402

SHARED = Path(os.environ.get("TRANSPOSE_SHARED", ROOT.parent / "shared"))
DATASETS = SHARED / "datasets"
COCO8_AREA_FACTOR = 0.53


@dataclasses.dataclass
class Person:
    image: Path
    box: np.ndarray        # (4,) xywh, tight ground truth
    keypoints: np.ndarray  # (17, 3) x, y, v
    area: float
    source: str


def load_coco_mini(root: Path) -> list[Person]:
    ann = json.loads((root / "annotations" / "person_keypoints_train2017.json").read_text())
    files = {im["id"]: root / "train2017" / im["file_name"] for im in ann["images"]}
    people = []
    for a in ann["annotations"]:
        kp = np.asarray(a.get("keypoints") or [0] * 51, dtype=np.float64).reshape(17, 3)
        if a.get("iscrowd") or (kp[:, 2] > 0).sum() < 3 or a["image_id"] not in files:
            continue
        people.append(Person(files[a["image_id"]], np.asarray(a["bbox"], np.float64), kp,
                             float(a["area"]), "coco-mini-train"))
    return people


def load_coco8_pose(root: Path) -> list[Person]:
    people = []
    for label in sorted((root / "labels").glob("*/*.txt")):
        image = root / "images" / label.parent.name / (label.stem + ".jpg")
        h, w = cv2.imread(str(image)).shape[:2]
        for line in label.read_text().split("\n"):
            v = line.split()
            if len(v) != 5 + 51:
                continue
            cx, cy, bw, bh = (float(t) for t in v[1:5])
            kp = np.asarray(v[5:], dtype=np.float64).reshape(17, 3)
            kp[:, 0] *= w
            kp[:, 1] *= h
            if (kp[:, 2] > 0).sum() < 3:
                continue
            box = np.array([(cx - bw / 2) * w, (cy - bh / 2) * h, bw * w, bh * h])
            people.append(Person(image, box, kp, box[2] * box[3] * COCO8_AREA_FACTOR,
                                 "coco8-pose"))
    return people


def load_public_set(datasets: Path = DATASETS) -> list[Person]:
    return load_coco_mini(datasets / "coco-mini-train") + load_coco8_pose(datasets / "coco8-pose")


def evaluate(estimator, people: list[Person], box_scale: float = 1.25,
             warmup: int = 3) -> dict:
    images: dict[Path, np.ndarray] = {}
    scores, times = [], []
    by_source: dict[str, list[float]] = {}
    per_kp_hits = np.zeros(17)
    per_kp_n = np.zeros(17)
    for i, p in enumerate(people):
        img = images.get(p.image)
        if img is None:
            img = images[p.image] = cv2.imread(str(p.image))
        box = enlarge_box(p.box, box_scale)
        if i < warmup:
            estimator(img, [box])
        t0 = time.perf_counter()
        est = estimator(img, [box])
        times.append(time.perf_counter() - t0)
        s = oks(est.keypoints[0], p.keypoints, p.area)
        scores.append(s)
        by_source.setdefault(p.source, []).append(s)
        vis = p.keypoints[:, 2] > 0
        per_kp_hits += vis * oks_terms(est.keypoints[0], p.keypoints, p.area)
        per_kp_n += vis
    return {
        "people": len(scores),
        "mean_oks": float(np.mean(scores)) if scores else float("nan"),
        "by_source": {k: {"people": len(v), "mean_oks": float(np.mean(v))}
                      for k, v in by_source.items()},
        "per_keypoint_oks": (per_kp_hits / np.maximum(per_kp_n, 1)).round(3).tolist(),
        "ms_per_crop_median": 1000 * statistics.median(times) if times else float("nan"),
        "box_scale": box_scale,
    }


def _parse_set(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
        if isinstance(out[key], list):
            out[key] = tuple(out[key])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", type=Path, default=DATASETS)
    ap.add_argument("--box-scale", type=float, default=1.25,
                    help="ground-truth box enlargement about its centre (default 1.25)")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a BlazePoseConfig field (JSON value), e.g. crop_scale=1.25")
    ap.add_argument("--json", type=Path, help="also write the result here")
    args = ap.parse_args(argv)

    from core.pose.blazepose import BlazePoseConfig, BlazePoseEstimator
    if not (args.datasets / "coco-mini-train").is_dir():
        print(f"{args.datasets}: the public evaluation set is not there", file=sys.stderr)
        return 2
    config = BlazePoseConfig(**_parse_set(args.set))
    est = BlazePoseEstimator(config)
    result = evaluate(est, load_public_set(args.datasets), args.box_scale)
    result["config"] = {k: (list(v) if isinstance(v, tuple) else v)
                        for k, v in dataclasses.asdict(config).items()}
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
