"""What the step benchmarks on real clips share (turned_following.py, tracking_lineage.py):
the default clips, their command-line arguments, decoded frames and the default engine."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEMO = Path.home() / ".cache" / "transpose-studio" / "demo" / "sports2d_demo.mp4"
SHARED = ROOT.parent / "shared" / "datasets" / "videos"
CLIPS = [DEMO, SHARED / "opencv_vtest.avi", SHARED / "pose2sim_multiperson_cam01.mp4",
         SHARED / "pose2sim_singleperson_cam01.mp4"]


def add_clip_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("videos", nargs="*", type=Path, help="clips (default: see above)")
    p.add_argument("--max-frames", type=int, default=0, help="frames per clip (0: all)")
    p.add_argument("--json", metavar="OUT", help="also write the results as JSON")


def chosen_videos(args: argparse.Namespace) -> list[Path]:
    """The clips given, else the default ones present; [] (said on stderr) when none."""
    videos = args.videos or [v for v in CLIPS if v.is_file()]
    if not videos:
        print("no clips: run `make demo` once, or give video files", file=sys.stderr)
    return videos


def default_engine():
    """The shipped model and detector, all defaults; its description printed."""
    from core.engine import EngineConfig, build_engine
    engine = build_engine(EngineConfig(), progress=False)
    print(f"model {engine.weights}; detector every {engine.config.detect_every} frames")
    return engine


def read_frames(video: Path, max_frames: int) -> list:
    """A clip's frames, decoded once (max_frames 0: all)."""
    from core.video import open_source
    with open_source(video) as src:
        return [f for _, f in zip(range(max_frames or 10**9), src)]
