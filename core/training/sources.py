"""Where training people come from: LSPET, coco128 boxes, footage, user COCO JSON.

Each loader returns TrainPerson records with a tight person box and the human labels
(or None); labels.label_people then merges in the teacher.

* LSPET (``--lspet DIR``): ``person_keypoints_lspet.json`` + ``images/``; the ``bbox`` is
  the tight box of the labelled joints (head top included), so the person box is that
  box enlarged 1.2x (hands and feet reach past the wrists and ankles).
* coco128 (``--coco128 DIR``): YOLO detection labels, class 0 (person), no keypoints:
  teacher-only labels. The 8 coco8-pose images (ids 36, 49, 77, 86, 110, 113, 136, 151)
  are always left out, and so are boxes under ``min_box_height`` px.
* footage (``--frames``): videos, image folders or images; frames are sampled every
  ``every_s`` seconds (at most ``max_frames`` per video), people found by a detector
  (``core.detection.create_detector``), and each person is cut out (x2 context) into
  the frame cache as a JPEG, so training reads a small crop, not a 4K frame. The
  detection pass is cached in a manifest next to the crops.
* COCO keypoint JSON (``--coco-json FILE --coco-images DIR``): human labels; non-crowd
  people with at least one labelled keypoint or a box at least ``min_box_height`` tall.

The public evaluation set (``coco8-pose``, ``coco-mini-train``) is refused by name.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Iterable, Sequence

import cv2
import numpy as np

from ..errors import InputError
from ..keypoints import NUM_KEYPOINTS
from .data import TrainPerson
from .labels import enlarge_box

EVALUATION_SETS = ("coco8-pose", "coco-mini-train")
COCO8_POSE_IDS = frozenset({36, 49, 77, 86, 110, 113, 136, 151})
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def guard_not_evaluation(path: str | os.PathLike) -> Path:
    """The path, or InputError when it lies in the public evaluation set."""
    p = Path(path).expanduser()
    parts = {s.lower() for s in p.resolve().parts} | {s.lower() for s in p.parts}
    hit = [name for name in EVALUATION_SETS if name in parts]
    if hit:
        raise InputError(f"{path}: {hit[0]} is part of the public evaluation set; it is never "
                         f"used for training")
    return p


def _subset(items: list, max_people: int | None, seed: int) -> list:
    if max_people is None or max_people <= 0 or len(items) <= max_people:
        return items
    idx = np.sort(np.random.default_rng(seed).permutation(len(items))[:max_people])
    return [items[i] for i in idx]


# ---------------------------------------------------------------------------- LSPET
def lspet_people(folder: str | os.PathLike, max_people: int | None = None, seed: int = 0,
                 box_enlarge: float = 1.2) -> list[TrainPerson]:
    root = guard_not_evaluation(folder)
    ann = root / "person_keypoints_lspet.json"
    if not ann.is_file():
        raise InputError(f"{root}: no person_keypoints_lspet.json (an LSPET folder holds it and "
                         f"images/)")
    from ..datasets import load_coco_keypoints
    ds = load_coco_keypoints(ann, root / "images")
    out = []
    for p in ds.people:
        if p.iscrowd or p.num_keypoints < 1:
            continue
        out.append(TrainPerson(
            image_path=str(p.image_path), box=enlarge_box(p.box, box_enlarge),
            human=np.asarray(p.keypoints, np.float64).reshape(NUM_KEYPOINTS, 3),
            source="lspet", uid=f"lspet:{p.image_id}", group=f"lspet:{p.image_id}"))
    return _subset(out, max_people, seed)


# ---------------------------------------------------------------------------- coco128
def coco128_people(folder: str | os.PathLike, min_box_height: float = 48.0,
                   max_people: int | None = None, seed: int = 0) -> list[TrainPerson]:
    root = guard_not_evaluation(folder)
    labels = root / "labels" / "train2017" if (root / "labels" / "train2017").is_dir() \
        else root / "labels"
    images = root / "images" / "train2017" if (root / "images" / "train2017").is_dir() \
        else root / "images"
    if not labels.is_dir():
        raise InputError(f"{root}: no labels/ folder of YOLO detection labels")
    out = []
    for lab in sorted(labels.glob("*.txt")):
        if lab.stem.isdigit() and int(lab.stem) in COCO8_POSE_IDS:
            continue                                 # the coco8-pose evaluation images
        img = next((images / (lab.stem + e) for e in IMAGE_EXTENSIONS
                    if (images / (lab.stem + e)).is_file()), None)
        if img is None:
            continue
        rows = [r.split() for r in lab.read_text().splitlines() if r.strip()]
        rows = [r for r in rows if len(r) >= 5 and int(float(r[0])) == 0]
        if not rows:
            continue
        im = cv2.imread(str(img), cv2.IMREAD_COLOR)
        if im is None:
            continue
        h, w = im.shape[:2]
        for k, r in enumerate(rows):
            cx, cy, bw, bh = (float(v) for v in r[1:5])
            box = np.array([(cx - bw / 2) * w, (cy - bh / 2) * h, bw * w, bh * h])
            if box[3] < min_box_height or box[2] < min_box_height / 6:
                continue
            out.append(TrainPerson(image_path=str(img), box=box, human=None, source="coco128",
                                   uid=f"coco128:{lab.stem}:{k}", group=f"coco128:{lab.stem}"))
    return _subset(out, max_people, seed)


# ---------------------------------------------------------------------------- COCO JSON
def coco_json_people(json_path: str | os.PathLike, images_dir: str | os.PathLike | None,
                     min_box_height: float = 48.0, max_people: int | None = None,
                     seed: int = 0) -> list[TrainPerson]:
    path = guard_not_evaluation(json_path)
    if images_dir is not None:
        guard_not_evaluation(images_dir)
    from ..datasets import load_coco_keypoints
    ds = load_coco_keypoints(path, images_dir)
    name = ds.name or path.stem
    out = []
    for p in ds.people:
        guard_not_evaluation(p.image_path)
        if p.iscrowd or p.box[2] <= 1 or p.box[3] <= 1:
            continue
        if p.num_keypoints < 1 and p.box[3] < min_box_height:
            continue
        kps = np.asarray(p.keypoints, np.float64).reshape(NUM_KEYPOINTS, 3)
        out.append(TrainPerson(image_path=str(p.image_path), box=np.asarray(p.box, np.float64),
                               human=kps if (kps[:, 2] > 0).any() else None, source=name,
                               uid=f"{name}:{p.image_id}:{p.annotation_id}",
                               group=f"{name}:{p.image_id}"))
    return _subset(out, max_people, seed)


# ---------------------------------------------------------------------------- footage
def _footage_files(spec: str) -> list[tuple[Path, bool]]:
    """(path, is_video) for a video, an image, or a folder of videos and images."""
    p = guard_not_evaluation(spec)
    if not p.exists():
        raise InputError(f"{spec}: no such video, image or folder")
    if p.is_file():
        return [(p, p.suffix.lower() not in IMAGE_EXTENSIONS)]
    files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
    out = [(f, f.suffix.lower() not in IMAGE_EXTENSIONS) for f in files
           if f.suffix.lower() in IMAGE_EXTENSIONS or f.suffix.lower() in
           (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")]
    if not out:
        raise InputError(f"{spec}: holds no images or videos")
    return out


def _sample_frames(path: Path, is_video: bool, every_s: float, max_frames: int
                   ) -> Iterable[tuple[int, np.ndarray]]:
    if not is_video:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise InputError(f"{path}: not an image OpenCV can decode")
        yield 0, img
        return
    from ..video import open_source
    src = open_source(path)
    try:
        fps = src.fps or 30.0
        step = max(1, int(round(every_s * fps)))
        taken = 0
        for frame in src:
            if frame.index % step == 0:
                yield frame.index, frame.image
                taken += 1
                if taken >= max_frames:
                    break
    finally:
        src.close()


def frame_people(inputs: Sequence[str], cache_dir: str | os.PathLike, detector: str = "auto",
                 every_s: float = 1.0, max_frames: int = 100, min_score: float = 0.5,
                 min_box_height: float = 64.0, context: float = 2.0,
                 log: Callable[[str], None] | None = None) -> list[TrainPerson]:
    """People detected in sampled frames, each cut out into the frame cache."""
    out: list[TrainPerson] = []
    det = None
    for spec in inputs:
        for path, is_video in _footage_files(spec):
            st = path.stat()
            tag = f"{path.resolve()}|{st.st_size}|{detector}|{every_s}|{max_frames}|" \
                  f"{min_score}|{min_box_height}|{context}"
            folder = Path(cache_dir) / hashlib.sha1(tag.encode()).hexdigest()[:16]
            manifest = folder / "people.json"
            if manifest.is_file():
                entries = json.loads(manifest.read_text())
            else:
                if det is None:
                    from ..detection import create_detector
                    det = create_detector(detector)
                entries = []
                folder.mkdir(parents=True, exist_ok=True)
                for index, image in _sample_frames(path, is_video, every_s, max_frames):
                    found = det(image)
                    h, w = image.shape[:2]
                    for k, (box, score) in enumerate(zip(found.boxes, found.scores)):
                        if score < min_score or box[3] < min_box_height:
                            continue
                        # crop with context, clipped to the frame
                        big = enlarge_box(box, context)
                        x0, y0 = max(0, int(np.floor(big[0]))), max(0, int(np.floor(big[1])))
                        x1 = min(w, int(np.ceil(big[0] + big[2])))
                        y1 = min(h, int(np.ceil(big[1] + big[3])))
                        if x1 - x0 < 8 or y1 - y0 < 8:
                            continue
                        name = f"f{index:06d}_p{k}.jpg"
                        cv2.imwrite(str(folder / name), image[y0:y1, x0:x1],
                                    [cv2.IMWRITE_JPEG_QUALITY, 95])
                        entries.append({"file": name, "frame": int(index), "score": float(score),
                                        "box": [float(box[0] - x0), float(box[1] - y0),
                                                float(box[2]), float(box[3])]})
                tmp = manifest.with_suffix(".tmp")
                tmp.write_text(json.dumps(entries))
                os.replace(tmp, manifest)
                if log:
                    log(f"{path.name}: {len(entries)} people in sampled frames")
            for e in entries:
                out.append(TrainPerson(
                    image_path=str(folder / e["file"]), box=np.asarray(e["box"], np.float64),
                    human=None, source=f"frames:{path.name}",
                    uid=f"frames:{path.name}:{e['frame']}:{e['file']}",
                    group=f"frames:{path.name}:{e['frame']}"))
    return out
