#!/usr/bin/env python3
"""TransPose Studio command line. With no subcommand it opens the desktop GUI."""
from __future__ import annotations

import argparse
import sys

PROG = "transpose-studio"
COMMANDS = ("predict", "annotate", "eval", "train", "models", "gui")


def version() -> str:
    """The installed package's version (importlib.metadata; the frozen app carries it),
    else pyproject.toml's beside this file, else 0.1.0."""
    try:
        from importlib.metadata import version as dist_version
        return dist_version("transpose-studio")
    except Exception:  # noqa: BLE001 - not installed: a plain checkout
        pass
    try:
        import re
        from pathlib import Path
        text = (Path(__file__).resolve().parent / "pyproject.toml").read_text(encoding="utf-8")
        found = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
        if found:
            return found.group(1)
    except OSError:
        pass
    return "0.1.0"


def build_parser() -> argparse.ArgumentParser:
    from core.commands import annotate, evaluate, models, predict, train

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Human pose estimation and tracking with explainable TransPose models.")
    parser.add_argument("--version", action="version", version=f"{PROG} {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("predict", help="keypoints of the people in one image")
    predict.add_arguments(p)
    p.set_defaults(run=predict.run)
    p = sub.add_parser("annotate", help="annotate videos or image folders: CSV, JSON, overlay")
    annotate.add_arguments(p)
    p.set_defaults(run=annotate.run)
    p = sub.add_parser("eval", help="keypoint accuracy on ground truth: COCO AP, OKS, PCK")
    evaluate.add_arguments(p)
    p.set_defaults(run=evaluate.run)
    p = sub.add_parser("train", help="train our own TransPose or TFPose weights (distillation from teachers)")
    train.add_arguments(p)
    p.set_defaults(run=train.run)
    p = sub.add_parser("models", help="the pose models and detectors known, and which work offline")
    models.add_arguments(p)
    p.set_defaults(run=models.run)
    from app import cli as gui_cli        # no Qt import: the parser stays fast
    p = sub.add_parser("gui", help="the desktop GUI (also what no subcommand opens)")
    gui_cli.add_arguments(p)
    p.set_defaults(run=_run_gui)
    return parser


def _run_gui(args: argparse.Namespace) -> int:
    from app.run import run_gui           # Qt is imported only when the GUI is wanted
    return run_gui(args)


def _opens_in_gui(arg: str) -> bool:
    """`main.py clip.mp4` (no subcommand): what a desktop's "Open with" runs. Only for a
    path that exists or a camera, so that a mistyped command still gets argparse's error."""
    from pathlib import Path
    if arg in COMMANDS or arg.startswith("-"):
        return False
    return arg.startswith("camera:") or Path(arg).exists()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and _opens_in_gui(argv[0]):
        argv = ["gui", *argv]
    elif argv and argv[0] not in COMMANDS and not argv[0].startswith("-") and \
            ("." in argv[0] or "/" in argv[0]):
        # a file meant to be opened, mistyped: say that, not "invalid choice" of commands
        print(f"error: {argv[0]}: no such file or folder", file=sys.stderr)
        return 2
    if argv in (["--version"], ["-V"]):     # answered before the parser imports torch
        print(f"{PROG} {version()}")
        return 0
    try:                                    # Ctrl-C while torch & co. import: no traceback
        parser = build_parser()
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    if args.command is None:
        return _run_gui(args)
    from core.errors import StudioError
    try:
        return int(args.run(args) or 0)
    except StudioError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
