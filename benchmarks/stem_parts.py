#!/usr/bin/env python
"""How TransPose-M's onnxruntime stem shares a batch of crops among the CPU's threads, with
and without another thread of the pipeline busy beside it. One run, interleaved.

Usage (from the repository root):

    .venv/bin/python benchmarks/stem_parts.py                 # 2, 6 and 10 crops
    .venv/bin/python benchmarks/stem_parts.py --crops 4 8 --rounds 5 --json out/stem.json

Three ways to run the same batch (random crops, the shipped model's stem):

* ``one part a crop`` (the product, ``OnnxRuntimeStem._run_split``): every crop is a part
  of its own, single-threaded, and the workers (this thread and threads - 1 helpers) take
  the next part when they finish one;
* ``fixed halves`` (the product before 2026-12-05): one part of about crops / threads per
  thread, each single-threaded, given out up front;
* ``one call``: the whole batch in one call with all the threads (onnxruntime's intra-op
  threads).

"busy beside" runs a Python thread that sorts arrays (numpy releases the GIL) in 5 ms
bursts half of the time, as the decoder and the tracker take a core now and then in the
pipeline. Each cell is the median over rounds of the median of ``--calls`` calls; the
three ways are timed in turn within every round, so the machine's load hits them alike.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "benchmarks"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from model_speed import cpu_model, load_average  # noqa: E402


class BusyThread:
    """A thread busy `share` of the time in bursts of `burst_s` (numpy sorts, GIL free)."""

    def __init__(self, share: float = 0.5, burst_s: float = 0.005) -> None:
        self.share, self.burst_s = share, burst_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        data = np.random.default_rng(0).random(20000)
        rest = self.burst_s * (1 - self.share) / self.share
        while not self._stop.is_set():
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < self.burst_s:
                np.sort(data)
            time.sleep(rest)

    def __enter__(self) -> "BusyThread":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def fixed_halves(stem, pool: ThreadPoolExecutor) -> Callable[[np.ndarray], list]:
    """The earlier split: min(threads, crops) contiguous parts, one per thread, up front."""
    session = stem._session(1)

    def run(xs: np.ndarray) -> list:
        parts = np.array_split(xs, min(stem.threads, len(xs)))
        futures = [pool.submit(session.run, stem.outputs, {"x": p}) for p in parts[1:]]
        first = session.run(stem.outputs, {"x": parts[0]})
        results = [first] + [f.result() for f in futures]
        return [np.concatenate([r[i] for r in results]) for i in range(len(stem.outputs))]
    return run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--crops", type=int, nargs="+", default=[2, 6, 10])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--calls", type=int, default=5)
    p.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from core.catalogue import shipped_weights
    from core.models import load_weights
    from core.models.mobilenet_fpn import OnnxRuntimeStem, onnxruntime_available
    if not onnxruntime_available():
        print("onnx/onnxruntime are not installed: nothing to time", file=sys.stderr)
        return 1
    weights = shipped_weights()
    if weights is None:
        print("no shipped TransPose-M in resources/models", file=sys.stderr)
        return 1
    stem = OnnxRuntimeStem(load_weights(weights, progress=False).model.stem,
                           threads=args.threads)
    pool = ThreadPoolExecutor(max(1, args.threads - 1))
    ways: dict[str, Callable[[np.ndarray], list]] = {
        "one part a crop": stem._run_split,
        "fixed halves": fixed_halves(stem, pool),
        "one call": lambda xs: stem.session.run(stem.outputs, {"x": xs}),
    }
    print(f"# {cpu_model()}, {args.threads} threads, load average {load_average()}; "
          f"the shipped stem ({weights.name}), random 256x192 crops; ms per call, median of "
          f"{args.rounds} rounds x {args.calls} calls")
    rng = np.random.default_rng(0)
    results: list[dict] = []
    for crops in args.crops:
        xs = rng.standard_normal((crops, 3, 256, 192)).astype(np.float32)
        for fn in ways.values():
            fn(xs)                                   # warm-up (sessions, pages)
        for busy in (False, True):
            times: dict[str, list[float]] = {name: [] for name in ways}
            with BusyThread() if busy else contextlib.nullcontext():
                for _ in range(args.rounds):
                    for name, fn in ways.items():
                        calls = []
                        for _ in range(args.calls):
                            t0 = time.perf_counter()
                            fn(xs)
                            calls.append(time.perf_counter() - t0)
                        times[name].append(statistics.median(calls) * 1e3)
            row = {"crops": crops, "busy_beside": busy,
                   **{name: statistics.median(v) for name, v in times.items()}}
            results.append(row)
    print("| crops | beside | " + " | ".join(ways) + " |")
    print("|---|---|" + "---|" * len(ways))
    for r in results:
        print(f"| {r['crops']} | {'a busy thread' if r['busy_beside'] else 'quiet'} | " +
              " | ".join(f"{r[name]:.1f}" for name in ways) + " |")
    pool.shutdown()
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": args.threads, "rows": results},
                                              indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
