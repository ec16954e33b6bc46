"""One catalogue of the pose models and person detectors this program knows.

Every name ``--model`` and ``--detector`` take (in every subcommand), the GUI's lists,
``main.py models`` and the docs' tables come from here, with one name normalisation and
one error message listing the real choices. Nothing is loaded or downloaded: an entry
only knows what it is, its licence, and whether it can run offline now (files are looked
for).

    >>> [e.name for e in pose_models()][0]
    'auto'
    >>> find("pose", "BlazePose").name
    'mediapipe'

Pose entries: ``auto``, the TransPose-M shipped in resources/models (and ``<name>-int8``,
the same with its int8 stem, where ``<name>.stem-int8.onnx`` lies beside it), MediaPipe
BlazePose, MoveNet Thunder, the official TransPose zoo (downloaded on request), the TFPose and
TransPose configurations ``train --config`` builds (no released weights: train them), and a
file (``.pth`` TransPose/TFPose checkpoint, ``.onnx`` MoveNet, ``.tflite`` BlazePose).
Detector entries: ``auto``, YOLOX-Nano, BlazePose's detector, OpenCV HOG, a YOLOX ``.onnx``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

from .errors import InputError

Kind = Literal["pose", "detector"]
Family = Literal["auto", "transpose", "tfpose", "blazepose", "movenet", "yolox", "hog", "file"]

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_MODELS = ROOT / "resources" / "models"
SHIPPED_CARD = SHIPPED_MODELS / "README.md"


def normalise_name(name: str) -> str:
    """The one spelling rule: case-insensitive, '_' and '-' alike ('TP_R_A3' = 'tp-r-a3')."""
    return str(name).strip().lower().replace("_", "-")


def shown_path(path: str | Path) -> str:
    """A path as the user should read it: relative to the project when inside it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(ROOT))
    except (ValueError, OSError):
        return str(path)


INT8_STEM_SUFFIX = ".stem-int8.onnx"


def int8_stem_path(weights: str | os.PathLike) -> Path:
    """Where the int8 stem of a TransPose-M checkpoint lies (core.models.quantize_stem
    writes it): beside it, with the same name."""
    p = Path(weights)
    return p.with_name(p.stem + INT8_STEM_SUFFIX)


def shipped_weights() -> Path | None:
    """Our TransPose-M shipped in resources/models (the first .pth there), if any."""
    files = sorted(SHIPPED_MODELS.glob("*.pth"))
    return files[0] if files else None


@dataclass(frozen=True)
class Entry:
    """One choice: what ``--model``/``--detector`` takes, what it is, whose it is."""

    kind: Kind
    name: str                        # the spec to pass
    family: Family
    what: str
    licence: str
    availability: Callable[[], str]  # "shipped", "downloaded", "needs a download", ...
    aliases: tuple[str, ...] = ()
    label: str = ""                  # short text for the GUI's lists ("" = not listed there)
    runnable: bool = True            # False for configurations without released weights
    source: str = ""                 # the file behind a shipped entry
    stem_int8: str = ""              # ... and its int8 stem (core.models.quantize_stem)
    crop_context: str = ""           # how a MoveNet entry cuts people out ("box": black
                                     # outside the box; "": the whole crop)

    def matches(self, spec: str) -> bool:
        key = normalise_name(spec)
        return key == normalise_name(self.name) or key in (normalise_name(a) for a in self.aliases)

    @property
    def offline(self) -> str:
        """Whether it works offline now (computed when asked: files come and go)."""
        return self.availability()


# ---------------------------------------------------------------------------- availability
def _mediapipe(name: str) -> Callable[[], str]:
    def status() -> str:
        from .errors import StudioError
        from .tflite import mediapipe_model_path
        try:
            mediapipe_model_path(name)
        except StudioError:
            return "missing (pip install mediapipe==0.10.21)"
        return "installed (mediapipe wheel)"
    return status


def _movenet_status() -> str:
    from .pose.movenet import default_model_path
    found = default_model_path()
    return f"found ({shown_path(found)})" if found is not None else \
        "missing (put movenet_thunder.onnx in resources/models, or pass a .onnx)"


def _zoo_status(name: str) -> Callable[[], str]:
    def status() -> str:
        from .models import zoo
        return "downloaded" if name in zoo.downloaded() else "needs a download"
    return status


def _auto_pose() -> str:
    from .models import zoo
    downloaded, shipped = zoo.downloaded(), shipped_weights()
    if downloaded:
        return f"-> {downloaded[0]} (downloaded)"
    if shipped is not None:
        return f"-> {shipped.stem} (shipped)"
    return "-> mediapipe (no shipped TransPose weights)"


def _yolox_status() -> str:
    from .detection.yolox import YOLOX_NANO_FILENAME, shipped_yolox_nano
    from .models import zoo
    if shipped_yolox_nano() is not None:
        return "shipped"
    return "downloaded" if (zoo.models_dir() / YOLOX_NANO_FILENAME).is_file() \
        else "needs a download"


def _auto_detector() -> str:
    from .detection.yolox import shipped_yolox_nano
    return "-> yolox-nano (shipped)" if shipped_yolox_nano() is not None else "-> blazepose"


def _const(text: str) -> Callable[[], str]:
    return lambda: text


# ---------------------------------------------------------------------------- entries
ZOO_WHAT = {
    "tp-r-a3": "official TransPose-R-A3: ResNet stem, 3 encoder layers, COCO",
    "tp-r-a4": "official TransPose-R-A4: ResNet stem, 4 encoder layers, COCO",
    "tp-h-s": "official TransPose-H-S: HRNet-W32 stem, 4 encoder layers, COCO",
    "tp-h-a4": "official TransPose-H-A4: HRNet-W48 stem, 4 encoder layers, COCO",
    "tp-h-a6": "official TransPose-H-A6: HRNet-W48 stem, 6 encoder layers, COCO",
}
ZOO_LICENCE = "MIT (TransPose release)"
MEDIAPIPE_ALIASES = ("blazepose", "mediapipe-blazepose", "blazepose-full",
                     "mediapipe-blazepose-full")
MOVENET_ALIASES = ("movenet-thunder",)


def pose_models() -> list[Entry]:
    """Every pose-model choice, in the order the CLI and the GUI show them."""
    return [*_runnable_pose_models(), *_trainable_configs(), _POSE_FILE]


def _runnable_pose_models() -> list[Entry]:
    """The pose models that run now or after a download (no torch import to list them, so
    the MediaPipe and MoveNet paths stay torch-free)."""
    rows = [Entry("pose", "auto", "auto", "the default: official TransPose weights already "
                  "downloaded, else the shipped TransPose-M, else BlazePose", "as chosen",
                  _auto_pose, label="auto (shipped TransPose-M, or official weights you "
                  "downloaded)")]
    card = shown_path(SHIPPED_CARD)
    for f in sorted(SHIPPED_MODELS.glob("*.pth")):
        rows.append(Entry("pose", f.stem, "transpose",
                          "our TransPose-M: MoveNet stem + TransPose encoder, distilled here",
                          f"Apache-2.0 ({card})", _const("shipped"),
                          aliases=(shown_path(f), str(f)), label=f"TransPose-M {f.stem} (shipped)",
                          source=str(f)))
        int8 = int8_stem_path(f)
        if int8.is_file():
            rows.append(Entry("pose", f"{f.stem}-int8", "transpose",
                              f"{f.stem} with its stem in int8 (onnxruntime, CPU): 1.8x "
                              f"faster a person, about as accurate (live mode's default)",
                              f"Apache-2.0 ({card})", _const("shipped"),
                              label=f"TransPose-M {f.stem} int8 (shipped, faster on a CPU)",
                              source=str(f), stem_int8=str(int8)))
    rows.append(Entry("pose", "mediapipe", "blazepose", "Google MediaPipe BlazePose full, one "
                      "person per box (LiteRT)", "Apache-2.0", _mediapipe("pose_landmark_full"),
                      aliases=MEDIAPIPE_ALIASES, label="MediaPipe BlazePose"))
    rows.append(Entry("pose", "movenet", "movenet", "Google MoveNet SinglePose Thunder (ONNX, "
                      "onnxruntime)", "Apache-2.0", _movenet_status, aliases=MOVENET_ALIASES,
                      label="MoveNet Thunder"))
    rows.append(Entry("pose", "movenet-box", "movenet", "MoveNet Thunder on each box alone, "
                      "black around it (as it labelled our training crops)", "Apache-2.0",
                      _movenet_status, crop_context="box"))
    for name, what in ZOO_WHAT.items():        # = core.models.zoo.ZOO (a test checks)
        rows.append(Entry("pose", name, "transpose", what, ZOO_LICENCE, _zoo_status(name),
                          label=f"TransPose {name} (model zoo)"))
    return rows


_POSE_FILE = Entry("pose", "FILE.pth", "file", "your own TransPose or TFPose checkpoint "
                   "(train); FILE.onnx: a MoveNet model; FILE.tflite: a BlazePose model",
                   "yours", _const("your file"))


def _trainable_configs() -> list[Entry]:
    """TransPose and TFPose configurations ``train --config`` builds; no released weights."""
    from .models.tfpose import TFPOSE_CONFIGS
    from .training.configs import TRAIN_CONFIGS
    from .training.distill import DISTILL_CONFIGS
    shipped = {f.stem for f in SHIPPED_MODELS.glob("*.pth")}   # those are listed as shipped
    rows = []
    for name in (n for n in (*DISTILL_CONFIGS, *TRAIN_CONFIGS) if n not in shipped):
        rows.append(Entry("pose", name, "transpose", "TransPose configuration to train "
                          "(train --config)", "yours", _const("train it first"),
                          runnable=False))
    for name in TFPOSE_CONFIGS:
        rows.append(Entry("pose", name, "tfpose", "TFPose (keypoint regression) configuration "
                          "to train (train --config)", "yours", _const("train it first"),
                          runnable=False))
    return rows


def detectors() -> list[Entry]:
    """Every person-detector choice."""
    return [
        Entry("detector", "auto", "auto", "the default: the shipped YOLOX-Nano, else "
              "BlazePose's detector", "as chosen", _auto_detector,
              label="auto (shipped YOLOX-Nano)"),
        Entry("detector", "yolox-nano", "yolox", "Megvii YOLOX-Nano, COCO, people only "
              "(onnxruntime)", "Apache-2.0", _yolox_status, aliases=("yolox",),
              label="YOLOX-Nano"),
        Entry("detector", "blazepose", "blazepose", "Google MediaPipe BlazePose person "
              "detector (LiteRT)", "Apache-2.0", _mediapipe("pose_detection"),
              aliases=("mediapipe",), label="BlazePose"),
        Entry("detector", "hog", "hog", "OpenCV HOG + linear SVM people detector",
              "Apache-2.0 (OpenCV)", _const("built in"), label="HOG (OpenCV)"),
        Entry("detector", "onnx:FILE", "file", "your own YOLOX ONNX export (also FILE.onnx)",
              "yours", _const("your file")),
    ]


def entries(kind: Kind) -> list[Entry]:
    return pose_models() if kind == "pose" else detectors()


def find(kind: Kind, spec: str) -> Entry | None:
    """The named entry (not a file path); None when the name is not in the catalogue."""
    groups = (_runnable_pose_models, _trainable_configs) if kind == "pose" else (detectors,)
    for group in groups:                     # the trainable configurations import torch
        for e in group():
            if e.family != "file" and e.matches(spec):
                return e
    return None


def choices(kind: Kind) -> list[str]:
    """The names to offer in an error message or a help text (runnable ones)."""
    return [e.name for e in entries(kind) if e.runnable]


def unknown(kind: Kind, spec: str) -> InputError:
    """The one message for a name nobody knows, listing the real choices."""
    what = "pose model" if kind == "pose" else "detector"
    flag = "--model" if kind == "pose" else "--detector"
    return InputError(f"unknown {what} {spec!r}: {flag} takes one of "
                      f"{', '.join(choices(kind))} (main.py models lists them)")


def not_trained(entry: Entry) -> InputError:
    return InputError(f"{entry.name} is a configuration without released weights: train it "
                      f"(main.py train --config {entry.name} ...) and pass the .pth it writes")


def help_text(kind: Kind) -> str:
    """The one help line for --model / --detector, from the catalogue (no torch import)."""
    if kind == "pose":
        names = [e.name for e in _runnable_pose_models()]
        return (f"the pose model: {', '.join(names)}, or a file (a TransPose or TFPose .pth, a "
                f"MoveNet .onnx, a BlazePose .tflite); auto = downloaded official TransPose "
                f"weights, else the shipped TransPose-M. main.py models lists them all")
    return (f"the person detector: {', '.join(choices('detector'))} (or FILE.onnx); auto = "
            f"the shipped YOLOX-Nano. main.py models lists them")
