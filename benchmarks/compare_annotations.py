#!/usr/bin/env python
"""Compare two `main.py annotate` JSON outputs of the same clip: track ids, person-frames
(people labelled, summed over frames) and the frames whose number of people differs.

How a change to the step or the tracker is judged on real clips (docs/performance.md):

    git worktree add /tmp/before <old commit>
    (cd /tmp/before && /path/to/.venv/bin/python main.py annotate CLIP --out /tmp/a \\
        --formats json --no-overlay)
    .venv/bin/python main.py annotate CLIP --out /tmp/b --formats json --no-overlay
    .venv/bin/python benchmarks/compare_annotations.py /tmp/a/CLIP.json /tmp/b/CLIP.json

Fewer ids for the same person-frames is the aim; whether a differing frame is better needs
a look at it (the listed frames give each person's id and confident keypoints).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def summary(doc: dict) -> tuple[int, int, dict[int, tuple[int, int, int]]]:
    """(ids, person-frames, {id: (first frame, last frame, frames)})."""
    frames: dict[int, list[int]] = {}
    for f in doc["frames"]:
        for p in f["people"]:
            frames.setdefault(p["track_id"], []).append(f["frame"])
    spans = {t: (v[0], v[-1], len(v)) for t, v in sorted(frames.items())}
    return len(spans), sum(n for _, _, n in spans.values()), spans


def people(frame: dict) -> list[tuple[int, int]]:
    """(id, confident keypoints) of each person on a frame."""
    return [(p["track_id"], sum(k[2] is not None for k in p["keypoints"]))
            for p in frame["people"]]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("before", type=Path)
    p.add_argument("after", type=Path)
    p.add_argument("--show", type=int, default=15, help="differing frames to list (15)")
    args = p.parse_args(argv)
    a, b = (json.loads(path.read_text()) for path in (args.before, args.after))
    for name, doc in (("before", a), ("after", b)):
        ids, person_frames, spans = summary(doc)
        print(f"{name:<7} ids {ids:>4}  person-frames {person_frames:>6}")
        if ids <= 6:
            print("        " + "  ".join(f"#{t} {s}-{e} ({n})" for t, (s, e, n) in spans.items()))
    differ = [(fa["frame"], people(fa), people(fb)) for fa, fb in zip(a["frames"], b["frames"])
              if len(fa["people"]) != len(fb["people"])]
    print(f"frames with a different number of people: {len(differ)}")
    for index, before, after in differ[: args.show]:
        print(f"  {index}: {before}  ->  {after}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
