"""Make tests/data/clip_person.mp4, the small real clip the video-source tests decode.

Source: the first 30 frames of ../shared/datasets/videos/pose2sim_singleperson_cam01.mp4
(PyPI wheel pose2sim 0.10.49, Pose2Sim/Demo_SinglePerson/videos/cam01.mp4, BSD-3-Clause,
(c) 2022 perfanalytics). Portrait 1080x1920 at 60 fps, downscaled 4x to 270x480 (w x h).

Encoding choices (why):
- H.264 (libx264) via PyAV, yuv420p, crf 26: plays everywhere and stays ~100 KB.
- keyframe every 12 frames with B-frames on: the tests need keyframes at 0, 12, 24, frames
  between them to seek to, and decode order != presentation order.
- one encoder thread and no timestamps in the metadata: running it again gives the same bytes
  (with the same PyAV/FFmpeg build).
- "+faststart" puts the moov index at the front of the file, so a truncated copy still opens
  and the tests see an early, clean end rather than a header error.
- 60 fps kept: the timestamps stay those of the source (pts step 1/60 s).

Run: .venv/bin/python tests/data/make_clip.py [--source PATH] [--out PATH]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import av
import cv2

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parents[2] / "shared" / "datasets" / "videos" / "pose2sim_singleperson_cam01.mp4"
N_FRAMES = 30
SIZE_WH = (270, 480)
FPS = 60


def make_clip(source: Path, out_path: Path) -> None:
    with av.open(str(source)) as src:
        in_stream = src.streams.video[0]
        images = []
        for frame in src.decode(in_stream):
            img = frame.to_ndarray(format="bgr24")
            images.append(cv2.resize(img, SIZE_WH, interpolation=cv2.INTER_AREA))
            if len(images) == N_FRAMES:
                break

    with av.open(str(out_path), "w", options={"movflags": "+faststart"}) as out:
        out.metadata.clear()
        stream = out.add_stream("libx264", rate=FPS,
                                options={"crf": "26", "preset": "medium", "g": "12",
                                         "keyint_min": "12", "sc_threshold": "0",
                                         "bf": "2", "threads": "1"})
        stream.width, stream.height = SIZE_WH
        stream.pix_fmt = "yuv420p"
        for i, img in enumerate(images):
            frame = av.VideoFrame.from_ndarray(img, format="bgr24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    ap.add_argument("--out", type=Path, default=HERE / "clip_person.mp4")
    args = ap.parse_args()
    make_clip(args.source, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
