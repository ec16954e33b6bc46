#!/usr/bin/env python
"""Per-crop CPU time of the default pose model beside MoveNet Thunder, in one run.

Usage (from the repository root):

    .venv/bin/python benchmarks/default_model_speed.py                 # shipped model
    .venv/bin/python benchmarks/default_model_speed.py --weights X.pth --threads 2 --json -

What is timed: one whole estimator call per person, as the product makes it (crop from the
image, network, decoding), on a real photo with one person box
(tests/data/reference/astronaut.png), for

* ``movenet``: MoveNet Thunder (../shared/models/movenet_thunder.onnx, onnxruntime; the
  teacher and the baseline, its own square crop);
* ``tp-m``: our shipped TransPose-M without flip test, stem in onnxruntime (the product's
  default on a CPU) and in PyTorch (``stem_runtime="torch"``);
* ``tp-m flip``: the same with flip test (the crop and its mirror image in one batch,
  averaged): by default the onnxruntime stem runs the two as parallel single-threaded
  parts; "one call" is the same batch in one multi-threaded call, as before;
* ``tp-m int8``: the same two (without and with flip test) with the stem quantised to
  int8 (``tp-m-s16-int8``: <weights>.stem-int8.onnx beside the weights, when it is there;
  ``--int8 FILE`` names another).

All forms are warmed up, then timed in turn with the order rotating every repeat, so the
load of the machine hits them alike; the ratio column is median / MoveNet's median. The
target of the issue: TransPose-M without flip within 1.5x of MoveNet.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from model_speed import Timer, cpu_model, load_average, summarise, time_interleaved  # noqa: E402

ASTRONAUT_BOX = [11.0, 20.0, 368.0, 507.0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", default="", help="TransPose-M checkpoint (default: shipped)")
    p.add_argument("--movenet", default=str(ROOT.parent / "shared" / "models" /
                                            "movenet_thunder.onnx"))
    p.add_argument("--image", default=str(ROOT / "tests" / "data" / "reference" /
                                          "astronaut.png"))
    p.add_argument("--int8", default="", help="int8 stem (default: the one beside the weights)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--json", metavar="OUT", help="also write the results as JSON ('-': stdout)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from core.catalogue import shipped_weights
    from core.pose.estimator import EstimatorConfig, TopDownEstimator
    from core.pose.movenet import MoveNetConfig, MoveNetEstimator

    weights = args.weights or shipped_weights()
    if not weights:
        print("no --weights and nothing shipped in resources/models", file=sys.stderr)
        return 1
    image = cv2.imread(args.image)
    boxes = np.array([ASTRONAUT_BOX], np.float32)
    forms = {}
    if Path(args.movenet).is_file():
        movenet = MoveNetEstimator(args.movenet, config=MoveNetConfig(num_threads=args.threads))
        forms["movenet"] = lambda: movenet(image, boxes)
    else:
        print(f"{args.movenet} is absent: timing TransPose-M alone", file=sys.stderr)
    from core.catalogue import int8_stem_path
    int8 = Path(args.int8) if args.int8 else int8_stem_path(weights)
    variants = [("tp-m (stem onnxruntime)", "auto", False, True, None),
                ("tp-m (stem torch)", "torch", False, True, None),
                ("tp-m flip (stem onnxruntime)", "auto", True, True, None),
                ("tp-m flip (onnxruntime, one call)", "auto", True, False, None),
                ("tp-m flip (stem torch)", "torch", True, True, None)]
    if int8.is_file():
        variants += [("tp-m int8", "auto", False, True, str(int8)),
                     ("tp-m int8 flip", "auto", True, True, str(int8))]
    else:
        print(f"{int8} is absent: no int8 rows", file=sys.stderr)
    for label, runtime, flip, split, stem_int8 in variants:
        est = TopDownEstimator.from_weights(weights, EstimatorConfig(
            device="cpu", flip_test=flip, stem_runtime=runtime, split_batches=split,
            stem_int8=stem_int8))
        forms[label] = (lambda e=est: e(image, boxes))
    times = time_interleaved(forms, args.warmup, args.repeats, Timer(torch.device("cpu")))
    rows = {name: summarise(t, 1) for name, t in times.items()}
    base = rows.get("movenet", {}).get("median_ms")
    print(f"# per-crop estimator time, {cpu_model()}, {args.threads} threads, "
          f"load average {load_average()}, {args.repeats} interleaved repeats")
    print(f"# weights: {weights}")
    print(f"{'form':32s} {'median ms':>10s} {'min ms':>8s} {'x MoveNet':>10s}")
    for name, r in rows.items():
        ratio = f"{r['median_ms'] / base:.2f}" if base else "-"
        print(f"{name:32s} {r['median_ms']:10.1f} {r['min_ms']:8.1f} {ratio:>10s}")
    if args.json:
        out = {"weights": str(weights), "threads": args.threads, "cpu": cpu_model(),
               "load_average": load_average(),
               "rows": {k: {kk: vv for kk, vv in v.items() if kk != "times_ms"}
                        for k, v in rows.items()}}
        text = json.dumps(out, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
