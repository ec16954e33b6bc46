#!/usr/bin/env python
"""What the tracker's lineage stage (core.tracking, stage 5) changes on real clips.

Usage (from the repository root):

    .venv/bin/python benchmarks/tracking_lineage.py                     # all clips, all frames
    .venv/bin/python benchmarks/tracking_lineage.py --max-frames 300 --skips 1 3

For every clip the synchronous step (all defaults) runs over the same decoded frames with
the lineage stage off (``TrackerConfig.lineage_min_iou`` above 1: no box overlap reaches
it) and on (the default), in batch mode (a person shown from their first frame; as
annotate runs it since 2026-12-04, with people found late followed back,
``core.step.run_batch``) and live mode (no flip test, three hits before a person is
shown, frame by frame), feeding every frame or every
2nd / 3rd one (live mode skips frames when the pose model is slower than the camera).
It prints track ids and person-frames (people labelled, summed over frames) side by side,
and each track's span on clips with few people. Fewer ids for the same person-frames is
the aim; whether a merge is right needs a look at the frames (the pedestrian merges were
checked by eye, see docs/performance.md). Clips: the Sports2D demo (cached by ``make
demo``) and the shared clips in ../shared/datasets/videos.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import json
from pathlib import Path

from clip_runs import add_clip_arguments, chosen_videos, default_engine, read_frames

from core.step import run_batch

OFF = 2.0          # a lineage_min_iou no box IoU reaches: the stage never matches


def run(engine, frames, mode: str, lineage: bool) -> dict:
    step = engine.step(mode=mode)
    if not lineage:
        step.tracker.config = dataclasses.replace(step.tracker.config, lineage_min_iou=OFF)
    spans: dict[int, list[int]] = collections.defaultdict(list)
    results = run_batch(step, frames) if mode == "batch" else (step(f) for f in frames)
    for r in results:
        for p in r.people:
            spans[p.track_id].append(r.index)
    return {"mode": mode, "lineage": lineage, "ids": len(spans),
            "person_frames": sum(len(v) for v in spans.values()),
            "spans": {t: [v[0], v[-1], len(v)] for t, v in sorted(spans.items())}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_clip_arguments(p)
    p.add_argument("--skips", type=int, nargs="+", default=[1, 2, 3],
                   help="feed every Nth frame (default: 1 2 3)")
    args = p.parse_args(argv)
    videos = chosen_videos(args)
    if not videos:
        return 1
    engine = default_engine()
    results = []
    for video in videos:
        frames = read_frames(video, args.max_frames)
        print(f"\n{video.name}: {len(frames)} frames")
        print(f"  {'frames fed':<12}{'mode':<7}{'ids off':>8}{'ids on':>8}"
              f"{'person-frames off':>19}{'on':>7}")
        for skip in args.skips:
            fed = frames[::skip]
            for mode in ("batch", "live"):
                off, on = run(engine, fed, mode, False), run(engine, fed, mode, True)
                results.append({"video": str(video), "every": skip, "runs": [off, on]})
                print(f"  {'every ' + str(skip):<12}{mode:<7}{off['ids']:>8}{on['ids']:>8}"
                      f"{off['person_frames']:>19}{on['person_frames']:>7}")
                for r in (off, on):
                    if r["ids"] <= 6:
                        print(f"      {'on ' if r['lineage'] else 'off'}: " + "  ".join(
                            f"#{t} {a}-{b} ({n})" for t, (a, b, n) in r["spans"].items()))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
