#!/usr/bin/env python
"""Videos per minute of `main.py annotate` in one process, with `--workers 2`, and on a
local Ray with 2 worker actors (`--ray --workers 2`), on the same inputs, in one run.

Usage (from the repository root):

    .venv/bin/python benchmarks/batch_scaling.py                   # 6 copies of the test clip
    .venv/bin/python benchmarks/batch_scaling.py --copies 4 --videos ../shared/datasets/videos/*.mp4
    .venv/bin/python benchmarks/batch_scaling.py --model mediapipe --overlay --json out.json

Each mode is one `main.py annotate` command in a fresh process, timed from start to exit,
so the numbers include what a user waits for: loading the model (once per process or
actor) and, for Ray, starting a local Ray (no --ray-address: `ray.init()` starts one with
every CPU). Videos per minute = inputs / wall time * 60. The outputs of the three modes are
then compared byte for byte (CSV and JSON; the overlay by frame count): the benchmark fails
if they differ. Ray is skipped with a note when it is not installed (pip install -e
'.[distributed]').

On a machine with 2 cores, two workers cannot be twice as fast: each worker's pipeline
already uses more than one thread (reader, inference, tracker), and the model load is paid
once per worker.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "tests" / "data" / "clip_person.mp4"


def frame_count(path: Path) -> int:
    import av
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(c.streams.video[0]))


def run_mode(name: str, extra: list[str], inputs: Path, out: Path, args) -> dict:
    cmd = [sys.executable, str(ROOT / "main.py"), "annotate", str(inputs), "--out", str(out),
           "--model", args.model, *(["--overlay"] if args.overlay else []), *extra]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.stderr.write(r.stderr[-3000:])
        raise SystemExit(f"{name}: annotate failed (exit {r.returncode})")
    n = len(list(inputs.iterdir()))
    return {"mode": name, "command": " ".join(["main.py annotate INPUTS --out OUT", *extra]),
            "inputs": n, "wall_s": round(wall, 2), "videos_per_min": round(n / wall * 60, 2)}


def compare(reference: Path, other: Path) -> list[str]:
    problems = []
    for ref in sorted(reference.rglob("*")):
        if not ref.is_file():
            continue
        rel = ref.relative_to(reference)
        got = other / rel
        if not got.exists():
            problems.append(f"{rel}: missing")
        elif ref.suffix == ".mp4":
            if frame_count(ref) != frame_count(got):
                problems.append(f"{rel}: overlay frame counts differ")
        elif ref.read_bytes() != got.read_bytes():
            problems.append(f"{rel}: bytes differ")
    extra = {p.relative_to(other) for p in other.rglob("*") if p.is_file()} - \
        {p.relative_to(reference) for p in reference.rglob("*") if p.is_file()}
    problems += [f"{p}: unexpected file" for p in sorted(extra)]
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", nargs="*", default=[str(CLIP)],
                    help="input videos (default: the 30-frame test clip)")
    ap.add_argument("--copies", type=int, default=6,
                    help="copies of each video (distinct names) to make the batch (6)")
    ap.add_argument("--model", default="mediapipe")
    ap.add_argument("--overlay", action="store_true", help="also write overlay videos")
    ap.add_argument("--json", metavar="OUT.json", help="also write the results here")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="batch_scaling_") as tmp:
        tmp = Path(tmp)
        inputs = tmp / "inputs"
        inputs.mkdir()
        for v in args.videos:
            v = Path(v)
            for i in range(args.copies):
                shutil.copy(v, inputs / f"{v.stem}_{i:02d}{v.suffix}")
        modes = [("1 process", []), ("--workers 2", ["--workers", "2"])]
        if importlib.util.find_spec("ray") is not None:
            modes.append(("--ray, 2 workers", ["--ray", "--workers", "2"]))
        else:
            print("note: Ray is not installed (pip install -e '.[distributed]'): --ray skipped")
        n = len(list(inputs.iterdir()))
        print(f"{n} videos ({', '.join(Path(v).name for v in args.videos)} x {args.copies}), "
              f"model {args.model}, {os.cpu_count()} CPU(s)")
        results = []
        for i, (name, extra) in enumerate(modes):
            res = run_mode(name, extra, inputs, tmp / f"out{i}", args)
            if i:
                problems = compare(tmp / "out0", tmp / f"out{i}")
                res["identical_to_1_process"] = not problems
                if problems:
                    print(f"{name}: outputs differ from the single process: {problems[:5]}")
            results.append(res)
            print(f"{name:<18} {res['wall_s']:8.1f} s  {res['videos_per_min']:8.1f} videos/min"
                  + ("" if not i else
                     f"  (outputs {'identical' if res['identical_to_1_process'] else 'DIFFER'})"))
        if args.json:
            Path(args.json).write_text(json.dumps({"cpus": os.cpu_count(), "model": args.model,
                                                   "results": results}, indent=2) + "\n")
        return 0 if all(r.get("identical_to_1_process", True) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
