"""`main.py predict`: keypoints of the people in one image."""
from __future__ import annotations

import argparse
import sys

import numpy as np

from ..errors import InputError
from ..io_utils import atomic_write_image, atomic_write_json, check_output_path, read_image
from ..keypoints import COCO_KEYPOINT_NAMES, keypoint_index
from ..pose.attention import AttentionMaps
from ..pose.orientation import turned_crops_for
from ..types import PoseEstimate, validate_boxes
from ..visualization import blend_heatmap, draw_decoder_attention, draw_skeleton
from ..io_utils import log
from .. import catalogue


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="image file (any format OpenCV reads)")
    p.add_argument("--model", "--weights", dest="model", default="auto", metavar="MODEL",
                   help=catalogue.help_text("pose"))
    p.add_argument("--box", nargs=4, type=float, action="append", metavar=("X", "Y", "W", "H"),
                   help="person box in image pixels (repeat for several people); default: the "
                   "people --detector finds")
    p.add_argument("--detector", default="auto",
                   help=catalogue.help_text("detector") + "; when no --box is given. "
                   "none: the whole image is one person")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True,
                   help="flip test: average with the mirrored image (on by default, as in "
                   "annotate and eval)")
    p.add_argument("--refine", choices=("dark", "argmax"), default="dark",
                   help="sub-pixel refinement: dark (official) or argmax + quarter offset")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--json", metavar="OUT.json", help="write the keypoints as JSON")
    p.add_argument("--draw", metavar="OUT.png", help="write the image with skeletons drawn")
    p.add_argument("--attention", metavar="KEYPOINT",
                   help="with --draw: explain this keypoint (name like left_wrist, or "
                   "index): TransPose blends its dependency area over the image; TFPose draws "
                   "its query's sampling points and its dependencies on the other joints")
    p.add_argument("--turned-crops", action=argparse.BooleanOptionalAction, default=True,
                   help="someone whose pose shows a turned body (lying, upside down) is posed "
                   "again from a crop turned by their body angle, kept when it poses them "
                   "better (TransPose and TFPose; on by default, as for annotate's first "
                   "frames)")
    p.add_argument("--threshold", type=float, default=0.3,
                   help="with --draw: hide keypoints scoring below this (0.3, as annotate's "
                   "overlay and the GUI draw them; 0 draws every keypoint; the table and "
                   "the JSON always list them all)")


def result_json(image: str, variant: str, weights: str, est: PoseEstimate,
                turns: np.ndarray | None = None) -> dict:
    """`turns`: degrees each person's crop was turned (--turned-crops); None: all upright."""
    people = []
    for i, (box, kps, scores) in enumerate(zip(est.boxes, est.keypoints, est.scores)):
        people.append({
            "box": [round(float(v), 2) for v in box],
            "turn": 0.0 if turns is None else round(float(turns[i]), 1),
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
    from ..pose.backends import create_pose_backend
    image = read_image(args.image)
    try:
        attention_kp = keypoint_index(args.attention) if args.attention is not None else None
    except ValueError as e:
        raise InputError(f"--attention: {e}") from None
    if attention_kp is not None and not args.draw:
        raise InputError("--attention needs --draw OUT.png to show the map")
    validate_boxes(args.box, image.shape[:2])      # fail fast, before loading a model
    if args.json:
        check_output_path(args.json)
    if args.draw:
        check_output_path(args.draw, image=True)
    detector = None
    if args.box is None and str(args.detector).strip().lower() != "none":
        from ..detection import create_detector
        detector = create_detector(args.detector)
    backend, description = create_pose_backend(args.model, args.device, flip_test=args.flip,
                                               refine=args.refine)
    log(f"model: {description}")
    if attention_kp is not None and not hasattr(backend, "model_config"):
        raise InputError(f"--attention needs a TransPose or TFPose model; {description} has "
                         f"no attention to show")
    boxes = args.box
    if detector is not None:
        from ..detection.base import detect_thoroughly
        # one image: nobody is known to be there, so look as hard as the step does on a
        # video's first frame (YOLOX adds tiles on wide frames)
        found = detect_thoroughly(detector, image)
        log(f"detector: {getattr(detector, 'description', detector.name)}: "
            f"{len(found)} {'person' if len(found) == 1 else 'people'}")
        if not len(found):
            log("nobody found; using the whole image as one person (--box to choose)")
        else:
            boxes = found.boxes
    est = backend(image, boxes, attention=attention_kp is not None)
    turns = None
    if args.turned_crops and getattr(backend, "rotates_crops", False) and len(est):
        found = turned_crops_for(backend, image, est.boxes, est)
        if found is not None:
            rows, turned_boxes, angles = found
            boxes = np.asarray(est.boxes, np.float32).copy()
            turns = np.zeros(len(boxes), np.float32)
            boxes[rows], turns[rows] = turned_boxes, angles
            for r, a in zip(rows, angles):
                log(f"person {r}: its crop turned by {a:.0f} degrees (a turned body)")
            est = backend(image, boxes, attention=attention_kp is not None, rotations=turns)
    variant = str(getattr(backend, "variant", "") or args.model)
    weights = str(getattr(backend, "weights_name", "") or args.model)
    print_table(est)
    if args.json:
        atomic_write_json(args.json, result_json(str(args.image), variant, weights, est, turns))
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
                          box=est.boxes[i] if args.box or detector is not None else None)
        atomic_write_image(args.draw, canvas)
        log(f"wrote {args.draw}")
    return 0
