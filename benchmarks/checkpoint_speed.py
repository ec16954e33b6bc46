#!/usr/bin/env python
"""Inference speed of trained checkpoints (TransPose or TFPose, any config), side by side.

Usage (from the repository root):

    .venv/bin/python benchmarks/checkpoint_speed.py out/train/tp-r-tiny-e10/model.pth \\
        out/train/tfpose-tiny-e10/model.pth --batches 1 16 --threads 2
    .venv/bin/python benchmarks/checkpoint_speed.py A.pth B.pth --device cuda --batches 1 64 256

Every checkpoint is loaded as the product loads it (core.models.load_weights) and timed as
the estimator runs it (BatchNorm folded, channels_last on the CPU, bf16 autocast on CUDA),
on the same random crops, interleaved repeat by repeat (the order rotates) so machine
noise hits every model alike. Two figures per batch size:

* ``network``: the forward pass alone (what the model costs);
* ``estimator``: TopDownEstimator on pre-cropped inputs, flip test on, i.e. two forward
  passes plus decoding (DARK for TransPose; coordinates for TFPose): what a person costs
  in the product, before cropping.

The first checkpoint is the baseline the others are compared with (ratio column).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from model_speed import Timer, cpu_model, load_average, summarise, time_interleaved  # noqa: E402

from core.models import load_weights  # noqa: E402
from core.pose.estimator import EstimatorConfig, create_estimator  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoints", nargs="+", type=Path)
    p.add_argument("--batches", nargs="+", type=int, default=[1, 16])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", type=Path, metavar="OUT")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    estimators = {}
    for path in args.checkpoints:
        loaded = load_weights(path)
        est = create_estimator(loaded, EstimatorConfig(device=args.device, flip_test=True))
        label = f"{est.kind} {loaded.config.name} ({path.parent.name})"
        params = sum(t.numel() for t in loaded.model.parameters())
        estimators[label] = (est, params)
    sizes = {tuple(e.model_config.input_size) for e, _ in estimators.values()}
    print(f"# checkpoint speed: {cpu_model() if device.type == 'cpu' else torch.cuda.get_device_name()}"
          f", torch {torch.__version__}, {args.threads} threads, load {load_average()}")
    rows = []
    timer = Timer(device)
    for batch in args.batches:
        forms = {}
        for label, (est, _) in estimators.items():
            w, h = est.model_config.input_size
            x = torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(batch))
            xd = x.to(device)

            def net(est=est, xd=xd):
                with torch.inference_mode(), est._autocast():
                    est.model(xd)
            forms[f"{label}|network"] = net
            forms[f"{label}|estimator"] = lambda est=est, x=x: est._infer(x, False)
        times = time_interleaved(forms, args.warmup, args.repeats, timer)
        for name, t in times.items():
            label, what = name.split("|")
            rows.append({"model": label, "what": what, "batch": batch,
                         "params": estimators[label][1], **summarise(t, batch)})
    base = {(r["what"], r["batch"]): r["median_ms"] for r in rows
            if r["model"] == next(iter(estimators))}
    print(f"\n{'model':<48}{'params':>9}{'form':>11}{'batch':>6}{'median ms':>11}"
          f"{'ms/crop':>9}{'vs first':>9}")
    for r in rows:
        ratio = r["median_ms"] / base[(r["what"], r["batch"])]
        print(f"{r['model']:<48}{r['params'] / 1e6:>8.2f}M{r['what']:>11}{r['batch']:>6}"
              f"{r['median_ms']:>11.2f}{r['median_ms'] / r['batch']:>9.2f}{ratio:>8.2f}x")
    if len(sizes) > 1:
        print(f"note: input sizes differ ({sorted(sizes)})")
    if args.json:
        args.json.write_text(json.dumps({"load": load_average(), "rows": [
            {k: v for k, v in r.items() if k != "times_ms"} for r in rows]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
