#!/usr/bin/env python3
"""TransPose Studio command line. With no subcommand it opens the desktop GUI."""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from core.commands import annotate, predict

    parser = argparse.ArgumentParser(
        prog="transpose-studio",
        description="Human pose estimation and tracking with explainable TransPose models.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("predict", help="keypoints of the people in one image")
    predict.add_arguments(p)
    p.set_defaults(run=predict.run)
    p = sub.add_parser("annotate", help="annotate videos or image folders: CSV, JSON, overlay")
    annotate.add_arguments(p)
    p.set_defaults(run=annotate.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        print("The desktop GUI is not built yet; use a subcommand:\n", file=sys.stderr)
        parser.print_help(sys.stderr)
        return 2
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
