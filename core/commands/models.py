"""`main.py models`: the catalogue (core.catalogue) as a table: the pose models and person
detectors this program knows, what each is, its licence and whether it works offline now
(shipped, downloaded, installed, or needs a download). Nothing is loaded or downloaded:
only files are looked for."""
from __future__ import annotations

import argparse
import json

from .. import catalogue
from ..catalogue import Entry


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the table as JSON")


def as_row(e: Entry) -> dict[str, str]:
    return {"kind": e.kind, "name": e.name, "what": e.what, "licence": e.licence,
            "offline": e.offline}


def _table(rows: list[dict[str, str]]) -> str:
    keys = ("name", "what", "licence", "offline")
    head = ("NAME", "WHAT", "LICENCE", "OFFLINE NOW")
    cells = [tuple(r[k] for k in keys) for r in rows]
    widths = [max(len(c[i]) for c in [head, *cells]) for i in range(len(head))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths)).rstrip() for cell in cells]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    pose = [as_row(e) for e in catalogue.pose_models()]
    detectors = [as_row(e) for e in catalogue.detectors()]
    if getattr(args, "json", False):
        print(json.dumps(pose + detectors, indent=2))
        return 0
    print("Pose models (--model):")
    print(_table(pose))
    print("auto: official TransPose weights already downloaded, else the shipped TransPose, "
          "else BlazePose.")
    print()
    print("Person detectors (--detector):")
    print(_table(detectors))
    print("auto: the shipped YOLOX-Nano, else BlazePose's detector.")
    return 0
