"""`main.py eval`: keypoint accuracy of a pose model on ground truth (AP, OKS, PCK).

    main.py eval --gt ../shared/datasets/coco8-pose \\
        --gt ../shared/datasets/coco-mini-train/annotations/person_keypoints_train2017.json \\
        --images ../shared/datasets/coco-mini-train/train2017 --model movenet --json out.json

Each ``--gt`` is a COCO keypoint JSON file or a YOLO-pose folder; an ``--images`` right
after a ``--gt`` is that set's images folder (a YOLO-pose folder needs none; a COCO JSON
without one looks beside itself). The protocol is core/evaluation.py's. The table goes
to stdout, progress to stderr; ``--json`` writes every figure (and each person's OKS)
atomically.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import InputError
from ..keypoints import COCO_KEYPOINT_NAMES
from ..io_utils import log
from .. import catalogue


class _GtAction(argparse.Action):
    """--gt starts a new (gt, images) pair."""

    def __call__(self, parser, namespace, values, option_string=None):
        sets = list(getattr(namespace, "sets", None) or [])
        pending = getattr(namespace, "_pending_images", None)
        sets.append([values, pending])
        namespace._pending_images = None
        namespace.sets = sets


class _ImagesAction(argparse.Action):
    """--images belongs to the --gt before it (or, given first, to the next one)."""

    def __call__(self, parser, namespace, values, option_string=None):
        sets = list(getattr(namespace, "sets", None) or [])
        if not sets:
            if getattr(namespace, "_pending_images", None) is not None:
                parser.error("two --images before the first --gt; give each --gt its own")
            namespace._pending_images = values
            return
        if sets[-1][1] is not None:
            parser.error(f"--gt {sets[-1][0]} already has --images {sets[-1][1]}; give "
                         f"each --gt at most one --images")
        sets[-1][1] = values
        namespace.sets = sets


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gt", action=_GtAction, metavar="FILE_OR_DIR", required=True,
                   help="ground truth: a COCO keypoint .json file or a YOLO-pose folder "
                   "(images/ + labels/); repeat to evaluate several sets together")
    p.add_argument("--images", action=_ImagesAction, metavar="DIR",
                   help="images folder of the --gt just before it (COCO JSON); not needed "
                   "for YOLO-pose folders")
    p.add_argument("--model", action="append", metavar="MODEL",
                   help=catalogue.help_text("pose") + "; repeat it to compare models on "
                   "the same people in one run (a table each, then ratios to the last one)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (TransPose)")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True,
                   help="TransPose flip test: average with the mirrored crop (on by default, "
                        "as annotate runs it; --no-flip as live mode runs it)")
    p.add_argument("--json", metavar="OUT.json", help="also write every figure as JSON")
    p.add_argument("--box-enlarge", type=float, default=1.25, metavar="F",
                   help="every model sees the ground-truth box enlarged F times about its "
                   "centre in total (1.25); TransPose/TFPose, which pad boxes x1.25 "
                   "themselves, are given F/1.25")
    p.add_argument("--min-keypoints", type=int, default=3, metavar="N",
                   help="score non-crowd people with at least N labelled keypoints (3)")
    p.set_defaults(sets=None, _pending_images=None)


def _f(v, width: int = 7, digits: int = 3) -> str:
    return f"{'-':>{width}}" if v is None or v != v else f"{v:{width}.{digits}f}"


def print_table(result, description: str, out=None) -> None:
    """The readable summary: one row per set (and 'all'), then per-keypoint OKS and PCK."""
    out = out or sys.stdout
    print(f"model: {description}", file=out)
    print(f"protocol: ground-truth boxes x{result.box_enlarge:g} in total (a model's own "
          f"padding included); non-crowd people with >= "
          f"{result.min_keypoints} labelled keypoints; OKS with COCO sigmas; PCK@"
          f"{result.pck_threshold:g} of the torso diameter (left shoulder-right hip, else "
          f"right shoulder-left hip)", file=out)
    print(file=out)
    header = (f"{'set':<22}{'people':>7}{'images':>7}{'AP':>7}{'AP50':>7}{'AP75':>7}"
              f"{'AR':>7}{'meanOKS':>9}{'PCK':>7}{'ms/person':>11}")
    print(header, file=out)
    rows = list(result.parts) + [result] if result.parts else [result]
    for r in rows:
        name = "all" if (r is result and result.parts) else r.dataset
        print(f"{name[:21]:<22}{r.people:>7}{r.images:>7}{_f(r.ap)}{_f(r.ap50)}{_f(r.ap75)}"
              f"{_f(r.ar)}{_f(r.mean_oks, 9)}{_f(r.pck)}{_f(r.ms_per_person, 11, 1)}", file=out)
    print(file=out)
    print(f"{'keypoint':<17}{'labelled':>9}{'OKS':>8}{'PCK n':>8}{'PCK':>8}", file=out)
    for name in COCO_KEYPOINT_NAMES:
        print(f"{name:<17}{result.labelled_per_keypoint[name]:>9}"
              f"{_f(result.oks_per_keypoint[name], 8)}"
              f"{result.pck_labelled_per_keypoint[name]:>8}{_f(result.pck_per_keypoint[name], 8)}",
              file=out)
    print(file=out)
    notes = [f"OKS per keypoint: mean over the people where it is labelled; PCK over the "
             f"{result.pck_people} of {result.people} people with a labelled torso diagonal "
             f"(PCK n: their labelled keypoints)"]
    if result.skipped_crowd or result.skipped_few_keypoints:
        notes.append(f"not scored: {result.skipped_crowd} crowd regions, "
                     f"{result.skipped_few_keypoints} people with 1-{result.min_keypoints - 1} "
                     f"labelled keypoints")
    notes.append(f"AP_M {_f(result.ap_medium).strip()}, AP_L {_f(result.ap_large).strip()}, "
                 f"AR50 {_f(result.ar50).strip()}, AR75 {_f(result.ar75).strip()} "
                 f"(pycocotools keypoints)")
    for n in notes:
        print(n, file=out)


def run(args: argparse.Namespace) -> int:
    from ..datasets import load_keypoint_dataset
    from ..evaluation import evaluate
    from ..io_utils import atomic_write_json
    from ..pose.backends import create_pose_backend

    pairs = [(str(g), None if i is None else str(i)) for g, i in (args.sets or [])]
    if getattr(args, "_pending_images", None) is not None:
        raise InputError(f"--images {args._pending_images} has no --gt after it")
    if not pairs:
        raise InputError("no ground truth: pass --gt FILE_OR_DIR")
    if args.json and not Path(args.json).resolve().parent.is_dir():
        raise InputError(f"{args.json}: the folder {Path(args.json).parent} does not exist")
    if not args.box_enlarge > 0:
        raise InputError(f"--box-enlarge must be positive, not {args.box_enlarge:g}")
    if args.min_keypoints < 1:
        raise InputError(f"--min-keypoints must be at least 1, not {args.min_keypoints}")
    datasets = []
    for gt, images in pairs:                         # fail fast, before loading a model
        d = load_keypoint_dataset(gt, images)
        log(f"ground truth: {d.source}: {len(d.images)} images, "
            f"{len(d.evaluable(args.min_keypoints))} people to score")
        datasets.append(d)
    specs = args.model or ["auto"]
    runs = []
    for spec in specs:
        model, description = create_pose_backend(spec, args.device, flip_test=args.flip)
        log(f"model: {description}")
        last = [-1]

        def progress(done: int, total: int) -> None:
            pct = 100 * done // total
            if pct // 25 != last[0] // 25 or done == total:
                last[0] = pct
                log(f"  {done}/{total} people")

        result = evaluate(model, datasets, box_enlarge=args.box_enlarge,
                          min_keypoints=args.min_keypoints, model_name=description,
                          progress=progress)
        if runs:
            print()
        print_table(result, description)
        runs.append((spec, model, description, result))
        del model
    if len(runs) > 1:
        print_comparison(runs)
    if args.json:
        protocol = {"box_enlarge": args.box_enlarge, "flip_test": args.flip,
                    "box_enlarge_rule": "total context; models that pad boxes themselves "
                                        "(TransPose/TFPose x1.25) get box_enlarge / 1.25",
                    "min_keypoints": args.min_keypoints,
                    "oks": "COCO sigmas, annotation area (YOLO-pose: box w*h*0.53)",
                    "ap": "pycocotools COCOeval keypoints, one detection per scored "
                          "person, score = mean keypoint score",
                    "pck": "PCK@0.2 of the torso diameter: left shoulder-right hip, else "
                           "right shoulder-left hip; people without either are left out"}
        ground_truth = [{"gt": gt, "images": images, "name": d.name, "source": d.source}
                        for (gt, images), d in zip(pairs, datasets)]

        def one(spec, model, description, result):
            return {"model": {"spec": spec, "description": description,
                              "variant": getattr(model, "variant", "")},
                    "result": result.to_dict()}
        if len(runs) == 1:
            doc = {**one(*runs[0]), "ground_truth": ground_truth, "protocol": protocol}
        else:
            doc = {"runs": [one(*r) for r in runs], "ground_truth": ground_truth,
                   "protocol": protocol}
        atomic_write_json(args.json, doc)
        log(f"wrote {args.json}")
    return 0


def print_comparison(runs: list, out=None) -> None:
    """Every model's headline figures side by side, and its ratio to the last model's."""
    out = out or sys.stdout
    base = runs[-1][3]
    print(file=out)
    print(f"comparison (ratio to {runs[-1][0]}):", file=out)
    print(f"{'model':<28}{'meanOKS':>9}{'ratio':>7}{'AP':>7}{'ratio':>7}{'PCK':>7}{'ratio':>7}"
          f"{'ms/person':>11}", file=out)

    def ratio(a, b) -> str:
        return _f(a / b if a is not None and b else None)
    for spec, _, _, r in runs:
        print(f"{spec[:27]:<28}{_f(r.mean_oks, 9)}{ratio(r.mean_oks, base.mean_oks)}"
              f"{_f(r.ap)}{ratio(r.ap, base.ap)}{_f(r.pck)}{ratio(r.pck, base.pck)}"
              f"{_f(r.ms_per_person, 11, 1)}", file=out)
