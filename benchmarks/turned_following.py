#!/usr/bin/env python
"""What turned crops (core.step, StepConfig.follow_turns) buy and cost on real clips.

Usage (from the repository root):

    .venv/bin/python benchmarks/turned_following.py                   # all clips, all frames
    .venv/bin/python benchmarks/turned_following.py --max-frames 300 --json out/turns.json

For every clip the synchronous step (the pipeline's per-frame work: detector schedule,
following, pose, pose NMS, tracker; all defaults, batch-mode tracker) runs over the same
decoded frames twice, with turned crops off (the baseline) and on, and prints side by
side: track ids, person-frames (people labelled, summed over frames), turned retries
(collapsed poses tried again a quarter turn away), detector passes, and seconds. Each
track's span is listed for clips with few people. The frames are decoded once, before any
timing, and a few frames run untimed first. Clips: the Sports2D demo (the back-flipping jumper; cached by ``make demo``) and
the shared clips in ../shared/datasets/videos.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import time
from pathlib import Path

from clip_runs import add_clip_arguments, chosen_videos, default_engine, read_frames

from core.step import run_batch



def run(engine, frames, follow_turns: bool) -> dict:
    step = engine.step()
    step.config = dataclasses.replace(step.config, follow_turns=follow_turns)
    spans: dict[int, list[int]] = collections.defaultdict(list)
    t0 = time.perf_counter()
    for r in run_batch(step, frames):            # as annotate runs it (people followed back)
        for p in r.people:
            spans[p.track_id].append(r.index)
    seconds = time.perf_counter() - t0
    return {"follow_turns": follow_turns, "ids": len(spans),
            "person_frames": sum(len(v) for v in spans.values()),
            "turn_retries": step.turn_retries, "detector_runs": step.detector_runs,
            "seconds": round(seconds, 2),
            "spans": {t: [v[0], v[-1], len(v)] for t, v in sorted(spans.items())}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_clip_arguments(p)
    args = p.parse_args(argv)
    videos = chosen_videos(args)
    if not videos:
        return 1
    engine = default_engine()
    results = []
    for video in videos:
        frames = read_frames(video, args.max_frames)
        run(engine, frames[:10], True)                 # warm-up (first-call allocations)
        rows = [run(engine, frames, False), run(engine, frames, True)]
        results.append({"video": str(video), "frames": len(frames), "runs": rows})
        print(f"\n{video.name}: {len(frames)} frames")
        print(f"  {'turned crops':<13}{'ids':>5}{'person-frames':>15}{'retries':>9}"
              f"{'detector':>10}{'seconds':>9}")
        for r in rows:
            print(f"  {'on' if r['follow_turns'] else 'off (base)':<13}{r['ids']:>5}"
                  f"{r['person_frames']:>15}{r['turn_retries']:>9}{r['detector_runs']:>10}"
                  f"{r['seconds']:>9.1f}")
        for r in rows:
            if r["ids"] <= 6:
                print(f"  {'on' if r['follow_turns'] else 'off'}: " + "  ".join(
                    f"#{t} {a}-{b} ({n})" for t, (a, b, n) in r["spans"].items()))
        base, on = rows
        print(f"  time on / off: {on['seconds'] / max(base['seconds'], 1e-9):.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
