"""`main.py models`: the pose models and person detectors this program knows, what each is,
its licence and whether it works offline now (shipped, downloaded, installed, or needs a
download). Nothing is loaded or downloaded: only files are looked for."""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from . import common

# The official TransPose release (github.com/yangsenius/TransPose, MIT licence), COCO-trained.
ZOO_WHAT = {
    "tp-r-a3": "official TransPose-R-A3: ResNet stem, 3 encoder layers, COCO",
    "tp-r-a4": "official TransPose-R-A4: ResNet stem, 4 encoder layers, COCO",
    "tp-h-s": "official TransPose-H-S: HRNet-W32 stem, 4 encoder layers, COCO",
    "tp-h-a4": "official TransPose-H-A4: HRNet-W48 stem, 4 encoder layers, COCO",
    "tp-h-a6": "official TransPose-H-A6: HRNet-W48 stem, 6 encoder layers, COCO",
}
ZOO_LICENCE = "MIT (TransPose release)"


@dataclass
class Row:
    kind: str          # "pose" or "detector"
    name: str          # what --model / --detector takes
    what: str
    licence: str
    offline: str       # shipped / downloaded / installed / built in / needs a download / ...


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the table as JSON")


def _shown(path: Path) -> str:
    root = common.RESOURCES.parent
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except (ValueError, OSError):
        return str(path)


def _mediapipe_status(name: str) -> str:
    from ..errors import StudioError
    from ..tflite import mediapipe_model_path
    try:
        mediapipe_model_path(name)
    except StudioError:
        return "missing (pip install mediapipe==0.10.21)"
    return "installed (mediapipe wheel)"


def pose_rows() -> list[Row]:
    from ..models import zoo
    from ..pose.movenet import default_model_path

    downloaded = zoo.downloaded()
    shipped = sorted(common.SHIPPED_MODELS.glob("*.pth"))
    blazepose = _mediapipe_status("pose_landmark_full")
    if downloaded:
        auto = f"-> {downloaded[0]} (downloaded)"
    elif shipped:
        auto = f"-> {shipped[0].name} (shipped)"
    else:
        auto = "-> mediapipe (no shipped TransPose weights)"
    rows = [Row("pose", "auto", "the default (see below)", "as chosen", auto)]
    card = _shown(common.SHIPPED_MODELS / 'README.md')
    for f in shipped:
        if f.name == "tp-m-s16.pth":     # the model card's entry
            rows.append(Row("pose", _shown(f), "our TransPose-M: MoveNet stem + TransPose "
                            "encoder, distilled here", f"Apache-2.0 ({card})", "shipped"))
        else:
            rows.append(Row("pose", _shown(f), "TransPose checkpoint shipped with the program",
                            f"see {card}", "shipped"))
    rows.append(Row("pose", "mediapipe", "Google MediaPipe BlazePose full, one person per box "
                    "(LiteRT)", "Apache-2.0", blazepose))
    movenet = default_model_path()
    rows.append(Row("pose", "movenet", "Google MoveNet SinglePose Thunder (ONNX, onnxruntime)",
                    "Apache-2.0",
                    f"found ({_shown(movenet)})" if movenet is not None else
                    "missing (put movenet_thunder.onnx in resources/models, or pass a .onnx)"))
    for name in zoo.ZOO:
        rows.append(Row("pose", name, ZOO_WHAT.get(name, "official TransPose, COCO"),
                        ZOO_LICENCE,
                        "downloaded" if name in downloaded else "needs a download"))
    rows.append(Row("pose", "FILE.pth", "your own TransPose or TFPose checkpoint (train)", "yours", "your file"))
    return rows


def detector_rows() -> list[Row]:
    from ..detection.yolox import YOLOX_NANO_FILENAME, shipped_yolox_nano
    from ..models import zoo

    shipped = shipped_yolox_nano()
    if shipped is not None:
        yolox = "shipped"
    elif (zoo.models_dir() / YOLOX_NANO_FILENAME).is_file():
        yolox = "downloaded"
    else:
        yolox = "needs a download"
    auto = "-> yolox-nano (shipped)" if shipped is not None else "-> blazepose"
    return [
        Row("detector", "auto", "the default (see below)", "as chosen", auto),
        Row("detector", "yolox-nano", "Megvii YOLOX-Nano, COCO, people only (onnxruntime)",
            "Apache-2.0", yolox),
        Row("detector", "blazepose", "Google MediaPipe BlazePose person detector (LiteRT)",
            "Apache-2.0", _mediapipe_status("pose_detection")),
        Row("detector", "hog", "OpenCV HOG + linear SVM people detector", "Apache-2.0 (OpenCV)",
            "built in"),
        Row("detector", "onnx:FILE", "your own YOLOX ONNX export", "yours", "your file"),
    ]


def _table(rows: list[Row]) -> str:
    head = ("NAME", "WHAT", "LICENCE", "OFFLINE NOW")
    cells = [(r.name, r.what, r.licence, r.offline) for r in rows]
    widths = [max(len(c[i]) for c in [head, *cells]) for i in range(len(head))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths)).rstrip() for cell in cells]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    pose, detectors = pose_rows(), detector_rows()
    if getattr(args, "json", False):
        print(json.dumps([asdict(r) for r in pose + detectors], indent=2))
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
