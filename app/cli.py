"""Arguments of `main.py gui` (no Qt import here: building the CLI parser stays fast)."""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    # positional too: `main.py gui clip.mp4`, and what a file manager's "Open with" passes
    p.add_argument("source_arg", nargs="?", metavar="SOURCE", default=None,
                   help="as --source")
    p.add_argument("--source", metavar="SPEC",
                   help="open this video, image folder, image or camera (camera:N) at start")
    p.add_argument("--frame", type=int, default=None, metavar="N",
                   help="open --source paused at frame N (with --screenshot: grab that frame "
                   "without playing)")
    p.add_argument("--model", default=None,
                   help="pose model: auto, mediapipe, a model-zoo name or a TransPose/TFPose .pth "
                   "(default: the last one used)")
    p.add_argument("--detector", default=None, help="auto | blazepose | hog | yolox-nano | onnx:FILE")
    p.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N")
    p.add_argument("--detect-every", type=int, default=None, metavar="N",
                   help="run the person detector every N frames (default 5)")
    p.add_argument("--skeleton", action=argparse.BooleanOptionalAction, default=None,
                   help="draw the skeleton overlay (--no-skeleton: only boxes/attention)")
    p.add_argument("--attention", metavar="KEYPOINT", default=None,
                   help="show the attention overlay for this keypoint (a COCO name such as "
                   "left_wrist, or 'all'); needs a TransPose or TFPose model")
    p.add_argument("--angles", metavar="LIST", default=None,
                   help="angles to show and plot (all, joints, segments or names such as "
                   "left_knee,trunk; docs/angles.md)")
    p.add_argument("--track", metavar="ID", type=int, default=None,
                   help="select this track for the angles panel (as a click on the person)")
    p.add_argument("--screenshot", metavar="PNG", default=None,
                   help="headless check: play --source, grab the window after --exit-after "
                   "frames, save it here and exit (fresh settings; offscreen if no display)")
    p.add_argument("--exit-after", metavar="N", type=int, default=None,
                   help="quit after N processed frames (default with --screenshot: 10)")
    p.add_argument("--timeout", metavar="S", type=float, default=300.0,
                   help="with --screenshot/--exit-after: give up (exit 1) after S seconds")


def defaults() -> argparse.Namespace:
    p = argparse.ArgumentParser(add_help=False)
    add_arguments(p)
    return p.parse_args([])


def resolve_source(opts: argparse.Namespace) -> str | None:
    """The source to open: --source or the positional SOURCE (one of them, or the same)."""
    positional = getattr(opts, "source_arg", None)
    if positional is not None and opts.source is not None and positional != opts.source:
        raise ValueError(f"two sources given ({positional!r} and --source {opts.source!r}): "
                         f"give one")
    return opts.source if opts.source is not None else positional
