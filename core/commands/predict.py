"""`main.py predict`: keypoints of the people in one image."""
from __future__ import annotations

import argparse
import sys

import numpy as np

from ..errors import InputError
from ..io_utils import atomic_write_image, atomic_write_json, read_image
from ..keypoints import COCO_KEYPOINT_NAMES, keypoint_index
from ..models.checkpoint import load_weights
from ..pose.attention import AttentionMaps
from ..pose.estimator import EstimatorConfig, PoseEstimate, create_estimator, validate_boxes
from ..visualization import blend_heatmap, draw_decoder_attention, draw_skeleton
from .common import default_weights, log


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="image file (any format OpenCV reads)")
    p.add_argument("--weights", help="TransPose or TFPose checkpoint (.pth) or a TransPose "
                   "model-zoo name (tp-r-a3, tp-r-a4, tp-h-s, tp-h-a4, tp-h-a6); default: the "
                   "shipped model")
    p.add_argument("--box", nargs=4, type=float, action="append", metavar=("X", "Y", "W", "H"),
                   help="person box in image pixels (repeat for several people); "
                   "default: the whole image")
    p.add_argument("--flip", action="store_true", help="flip test (average with the mirror)")
    p.add_argument("--refine", choices=("dark", "argmax"), default="dark",
                   help="sub-pixel refinement: dark (official) or argmax + quarter offset")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--json", metavar="OUT.json", help="write the keypoints as JSON")
    p.add_argument("--draw", metavar="OUT.png", help="write the image with skeletons drawn")
    p.add_argument("--attention", metavar="KEYPOINT",
                   help="with --draw: explain this keypoint (name like left_wrist, or "
                   "index): TransPose blends its dependency area over the image; TFPose draws "
                   "its query's sampling points and its dependencies on the other joints")
    p.add_argument("--threshold", type=float, default=0.0,
                   help="with --draw: hide keypoints scoring below this")


def result_json(image: str, variant: str, weights: str, est: PoseEstimate) -> dict:
    people = []
    for box, kps, scores in zip(est.boxes, est.keypoints, est.scores):
        people.append({
            "box": [round(float(v), 2) for v in box],
            "keypoints": [[round(float(x), 2), round(float(y), 2), round(float(s), 4)]
                          for (x, y), s in zip(kps, scores)],
        })
    return {"image": image, "model": {"variant": variant, "weights": weights}, "people": people}


def print_table(est: PoseEstimate, out=None) -> None:
    out = out or sys.stdout
    for i, (box, kps, scores) in enumerate(zip(est.boxes, est.keypoints, est.scores)):
        x, y, w, h = box
        print(f"person {i}  box x={x:.1f} y={y:.1f} w={w:.1f} h={h:.1f}", file=out)
        print(f"  {'keypoint':<15}{'x':>9}{'y':>9}{'score':>8}", file=out)
        for name, (kx, ky), s in zip(COCO_KEYPOINT_NAMES, kps, scores):
            print(f"  {name:<15}{kx:9.1f}{ky:9.1f}{s:8.3f}", file=out)


def run(args: argparse.Namespace) -> int:
    image = read_image(args.image)
    attention_kp = keypoint_index(args.attention) if args.attention is not None else None
    if attention_kp is not None and not args.draw:
        raise InputError("--attention needs --draw OUT.png to show the map")
    validate_boxes(args.box, image.shape[:2])      # fail fast, before loading a model
    weights = args.weights or default_weights()
    log(f"loading {weights}")
    loaded = load_weights(weights)
    estimator = create_estimator(loaded, EstimatorConfig(device=args.device, flip_test=args.flip,
                                                         refine=args.refine))
    log(f"model {estimator.kind} {loaded.variant} on {estimator.device}")
    est = estimator(image, args.box, attention=attention_kp is not None)
    print_table(est)
    if args.json:
        atomic_write_json(args.json, result_json(str(args.image), loaded.variant, str(weights), est))
        log(f"wrote {args.json}")
    if args.draw:
        canvas = image.copy()
        if attention_kp is not None and isinstance(est.attention, AttentionMaps):
            heat = np.zeros(image.shape[:2], np.float32)
            for i in range(len(est)):
                area = est.attention.dependency_area(i, attention_kp)
                heat = np.maximum(heat, est.attention.to_image(area, i, image.shape[:2]))
            blend_heatmap(canvas, heat)
        elif attention_kp is not None and est.attention is not None:      # TFPose
            for i in range(len(est)):
                draw_decoder_attention(canvas, est.attention, i, attention_kp, est.keypoints[i])
        for i in range(len(est)):
            draw_skeleton(canvas, est.keypoints[i], est.scores[i], args.threshold,
                          box=est.boxes[i] if args.box else None)
        atomic_write_image(args.draw, canvas)
        log(f"wrote {args.draw}")
    return 0
