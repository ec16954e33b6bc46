"""`python -m app [gui options]`: the desktop GUI."""
from __future__ import annotations

import argparse
import sys

from .cli import add_arguments


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m app", description="TransPose Studio GUI")
    add_arguments(p)
    from .run import run_gui
    return run_gui(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
