"""Keypoint ground truth: COCO keypoint JSON and YOLO-pose folders, one representation.

    dataset = load_keypoint_dataset("coco8-pose")                      # YOLO-pose folder
    dataset = load_keypoint_dataset("ann/person_keypoints_x.json", "images/")   # COCO JSON
    gt = to_coco_gt_dict(dataset)            # pycocotools-ready ground truth (both formats)

Every person is a `PersonAnnotation` in image pixels: box (x, y, w, h), keypoints (17, 3)
as (x, y, v) in COCO order with v = 0 unlabelled, 1 labelled but occluded, 2 visible.
Crowd regions and people without keypoints are kept (pycocotools ignores them); the
evaluation chooses whom to score.

COCO JSON: the ``person`` category's annotations (the one carrying ``keypoints``); images
are ``images_dir / file_name``. Without ``images_dir`` the usual layouts are tried:
``annotations/person_keypoints_<split>.json`` beside ``<split>/`` (COCO's own),
``images/`` beside the JSON, or the JSON's own folder.

YOLO-pose (Ultralytics): ``images/<split>/*.jpg`` with ``labels/<split>/*.txt`` (or
``images/`` and ``labels/`` directly); one line per person, ``cls cx cy w h`` followed by
17 x ``x y v`` (or 17 x ``x y``, labelled where not both 0), all normalised to 0..1;
class 0 is the person. YOLO-pose carries no segmentation area, so a person's OKS area is
box w * h * 0.53 (``YOLO_AREA_FACTOR``, the ratio of segment area to box area on COCO
people, as ``../shared/README.md`` evaluates coco8-pose); the image size is read from the
image file.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .errors import InputError
from .keypoints import COCO_KEYPOINT_NAMES, COCO_SKELETON, NUM_KEYPOINTS

YOLO_AREA_FACTOR = 0.53
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass(frozen=True, eq=False)
class PersonAnnotation:
    """One annotated person (or crowd region), pixel coordinates of its image."""

    image_path: Path
    image_id: int
    box: np.ndarray                # (4,) float64 x, y, w, h
    keypoints: np.ndarray          # (17, 3) float64 x, y, v
    area: float                    # OKS scale: segment area (COCO) or w*h*0.53 (YOLO-pose)
    iscrowd: bool = False
    num_keypoints: int = 0         # labelled keypoints (v > 0)
    annotation_id: int = 0
    source: str = ""               # the dataset's name, e.g. "coco8-pose"

    @property
    def labelled(self) -> np.ndarray:
        """(17,) bool: which keypoints are labelled (v > 0)."""
        return self.keypoints[:, 2] > 0


@dataclass(frozen=True)
class ImageInfo:
    id: int
    path: Path
    width: int
    height: int


@dataclass(eq=False)
class KeypointDataset:
    """Images and people of one ground-truth set (or several merged)."""

    images: dict[int, ImageInfo]
    people: list[PersonAnnotation]
    source: str                    # a description: format and files
    name: str = ""                 # short name: the folder or the JSON's stem
    parts: list[str] = field(default_factory=list)   # names of merged sets, in order

    def __len__(self) -> int:
        return len(self.people)

    def evaluable(self, min_keypoints: int = 3) -> list[PersonAnnotation]:
        """Non-crowd people with at least min_keypoints labelled keypoints."""
        return [p for p in self.people if not p.iscrowd and p.num_keypoints >= min_keypoints]


# ---------------------------------------------------------------------- COCO JSON
def _read_json(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a COCO keypoint JSON file (not UTF-8 text)") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column "
                         f"{e.colno})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) \
            or not isinstance(doc.get("annotations"), list):
        raise InputError(f"{path}: not a COCO keypoint file (expected an object with "
                         f"'images' and 'annotations' lists)")
    return doc


def _person_category(doc: dict, path: Path) -> int:
    cats = doc.get("categories") or []
    if not isinstance(cats, list):
        raise InputError(f"{path}: 'categories' must be a list")
    with_kps = [c for c in cats if isinstance(c, dict) and c.get("keypoints")]
    named = [c for c in with_kps if c.get("name") == "person"] or with_kps
    if not named:
        if not cats:
            return 1                # COCO's person id; files without categories exist
        raise InputError(f"{path}: no keypoint category (a 'categories' entry with "
                         f"'keypoints', such as COCO's 'person')")
    kp = named[0]["keypoints"]
    if len(kp) != NUM_KEYPOINTS:
        raise InputError(f"{path}: the '{named[0].get('name')}' category has {len(kp)} "
                         f"keypoints; only COCO's {NUM_KEYPOINTS} are supported")
    return int(named[0]["id"])


def _guess_coco_images(json_path: Path) -> list[Path]:
    guesses = []
    m = re.match(r"person_keypoints_(.+)$", json_path.stem)
    if m:
        guesses += [json_path.parent.parent / m.group(1), json_path.parent.parent / "images" /
                    m.group(1)]
    guesses += [json_path.parent / "images", json_path.parent.parent / "images",
                json_path.parent]
    return guesses


def load_coco_keypoints(json_path: str | os.PathLike,
                        images_dir: str | os.PathLike | None = None) -> KeypointDataset:
    """COCO person-keypoint ground truth. Raises InputError for a missing or malformed
    file, or missing image files (checked for images that have people)."""
    path = Path(json_path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a COCO keypoint JSON file")
    doc = _read_json(path)
    cat = _person_category(doc, path)

    raw_images: dict[int, dict] = {}
    for i, im in enumerate(doc["images"]):
        if not isinstance(im, dict) or "id" not in im or "file_name" not in im:
            raise InputError(f"{path}: images[{i}] needs an 'id' and a 'file_name'")
        raw_images[int(im["id"])] = im

    anns = []
    for i, a in enumerate(doc["annotations"]):
        if not isinstance(a, dict):
            raise InputError(f"{path}: annotations[{i}] is not an object")
        if a.get("category_id", cat) != cat:
            continue
        for key in ("image_id", "bbox"):
            if key not in a:
                raise InputError(f"{path}: annotations[{i}] has no '{key}'")
        if int(a["image_id"]) not in raw_images:
            raise InputError(f"{path}: annotations[{i}] refers to image id {a['image_id']}, "
                             f"which is not in 'images'")
        kp = a.get("keypoints") or [0] * (3 * NUM_KEYPOINTS)
        if len(kp) != 3 * NUM_KEYPOINTS:
            raise InputError(f"{path}: annotations[{i}] has {len(kp)} keypoint values; "
                             f"expected {3 * NUM_KEYPOINTS} (17 x, y, v)")
        bbox = a["bbox"]
        if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
            raise InputError(f"{path}: annotations[{i}] 'bbox' must be [x, y, w, h]")
        try:
            kps = np.asarray(kp, dtype=np.float64).reshape(NUM_KEYPOINTS, 3)
            box = np.asarray(bbox, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(f"{path}: annotations[{i}] has non-numeric keypoints or "
                             f"bbox") from None
        anns.append((i, a, kps, box))

    # Where the images are: check the ones that have people.
    needed = sorted({int(a["image_id"]) for _, a, _, _ in anns})
    names = [raw_images[i]["file_name"] for i in needed]
    if images_dir is not None:
        folder = Path(images_dir)
        if not folder.is_dir():
            raise InputError(f"{folder}: no such images folder")
    else:
        folder = next((g for g in _guess_coco_images(path)
                       if g.is_dir() and all((g / n).is_file() for n in names[:3])),
                      None)
        if folder is None:
            raise InputError(f"{path}: cannot find the images it lists (e.g. "
                             f"{names[0] if names else '?'}); pass the images folder "
                             f"(--images)")
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise InputError(f"{folder}: {len(missing)} of the {len(names)} images of {path.name} "
                         f"are missing there, e.g. {missing[0]}")

    images = {}
    for image_id in needed:
        im = raw_images[image_id]
        p = folder / im["file_name"]
        w, h = im.get("width"), im.get("height")
        if not w or not h:
            h, w = _image_size(p)
        images[image_id] = ImageInfo(image_id, p, int(w), int(h))

    name = path.parent.parent.name if path.parent.name == "annotations" else path.stem
    people = []
    for i, a, kps, box in anns:
        labelled = int((kps[:, 2] > 0).sum())
        area = a.get("area")
        people.append(PersonAnnotation(
            image_path=images[int(a["image_id"])].path, image_id=int(a["image_id"]), box=box,
            keypoints=kps, area=float(area) if area is not None else float(box[2] * box[3]),
            iscrowd=bool(a.get("iscrowd", 0)),
            num_keypoints=int(a.get("num_keypoints", labelled)),
            annotation_id=int(a.get("id", i + 1)), source=name))
    return KeypointDataset(images=images, people=people, name=name,
                           source=f"COCO keypoints {path} (images {folder})")


# ---------------------------------------------------------------------- YOLO-pose
def _image_size(path: Path) -> tuple[int, int]:
    from .io_utils import read_image
    h, w = read_image(path).shape[:2]
    return h, w


def _find_image(label: Path, labels_root: Path, images_root: Path) -> Path | None:
    rel = label.relative_to(labels_root).with_suffix("")
    for base in (images_root / rel.parent, images_root):
        for ext in IMAGE_EXTENSIONS:
            for cand in (base / (rel.name + ext), base / (rel.name + ext.upper())):
                if cand.is_file():
                    return cand
    return None


def _yolo_roots(folder: Path, images: Path | None) -> tuple[Path, Path]:
    """(labels root, images root) of a YOLO-pose folder."""
    if (folder / "labels").is_dir():
        return folder / "labels", images or folder / "images"
    # a split folder such as data/labels/val: Ultralytics swaps the last 'labels' for 'images'
    parts = folder.parts
    if images is None and "labels" in parts:
        i = len(parts) - 1 - parts[::-1].index("labels")
        return folder, Path(*parts[:i], "images", *parts[i + 1:])
    return folder, images or folder


def load_yolo_pose(folder: str | os.PathLike, images_dir: str | os.PathLike | None = None
                   ) -> KeypointDataset:
    """A YOLO-pose folder (see the module docstring). Raises InputError when it has no
    label files, a label line is malformed, or a label's image is missing."""
    root = Path(folder)
    if not root.exists():
        raise InputError(f"{root}: no such folder")
    if not root.is_dir():
        raise InputError(f"{root}: not a folder (a YOLO-pose dataset is a folder with "
                         f"images/ and labels/)")
    if images_dir is not None and not Path(images_dir).is_dir():
        raise InputError(f"{images_dir}: no such images folder")
    labels_root, images_root = _yolo_roots(root, Path(images_dir) if images_dir else None)
    labels = sorted(p for p in labels_root.rglob("*.txt") if p.name not in ("classes.txt",))
    if not labels:
        raise InputError(f"{root}: no YOLO-pose label files (labels/**/*.txt) found")

    entries = []
    for label in labels:
        image = _find_image(label, labels_root, images_root)
        if image is None:
            raise InputError(f"{label}: its image ({label.stem}.jpg or another image "
                             f"type) is not in {images_root}")
        entries.append((label, image))
    stems = [lab.stem for lab, _ in entries]
    numeric = all(s.isdigit() for s in stems) and len(set(int(s) for s in stems)) == len(stems)

    images: dict[int, ImageInfo] = {}
    people: list[PersonAnnotation] = []
    name = root.name if root.name not in ("labels", "train", "val", "test") else \
        f"{root.parent.name}/{root.name}"
    for n, (label, image) in enumerate(entries):
        image_id = int(label.stem) if numeric else n + 1
        h, w = _image_size(image)
        images[image_id] = ImageInfo(image_id, image, w, h)
        try:
            text = label.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"{label}: cannot read the label file ({e})") from None
        for line_no, line in enumerate(text.splitlines(), 1):
            values = line.split()
            if not values:
                continue
            if len(values) not in (5 + 3 * NUM_KEYPOINTS, 5 + 2 * NUM_KEYPOINTS):
                raise InputError(
                    f"{label}: line {line_no} has {len(values)} values; a YOLO-pose line "
                    f"is 'cls cx cy w h' and 17 keypoints of 'x y v' ({5 + 3 * NUM_KEYPOINTS}"
                    f" values) or 'x y' ({5 + 2 * NUM_KEYPOINTS})")
            try:
                v = np.asarray(values, dtype=np.float64)
            except ValueError:
                raise InputError(f"{label}: line {line_no} has a value that is not a "
                                 f"number") from None
            if int(v[0]) != 0:
                continue                                  # not a person
            cx, cy, bw, bh = v[1:5]
            dims = 3 if len(v) == 5 + 3 * NUM_KEYPOINTS else 2
            kp = v[5:].reshape(NUM_KEYPOINTS, dims)
            kps = np.zeros((NUM_KEYPOINTS, 3))
            kps[:, 0], kps[:, 1] = kp[:, 0] * w, kp[:, 1] * h
            kps[:, 2] = kp[:, 2] if dims == 3 else np.where((kp[:, 0] != 0) | (kp[:, 1] != 0),
                                                             2.0, 0.0)
            kps[kps[:, 2] <= 0] = 0.0
            box = np.array([(cx - bw / 2) * w, (cy - bh / 2) * h, bw * w, bh * h])
            people.append(PersonAnnotation(
                image_path=image, image_id=image_id, box=box, keypoints=kps,
                area=float(box[2] * box[3] * YOLO_AREA_FACTOR), iscrowd=False,
                num_keypoints=int((kps[:, 2] > 0).sum()), annotation_id=len(people) + 1,
                source=name))
    return KeypointDataset(images=images, people=people, name=name,
                           source=f"YOLO-pose {root} (area = box w*h*{YOLO_AREA_FACTOR})")


# ---------------------------------------------------------------------- either
def load_keypoint_dataset(gt: str | os.PathLike, images: str | os.PathLike | None = None
                          ) -> KeypointDataset:
    """A COCO keypoint JSON file (with its images folder, or one found beside it) or a
    YOLO-pose folder; a folder holding ``annotations/person_keypoints_*.json`` is read as
    COCO. Raises InputError with the file and the problem."""
    path = Path(gt)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_file():
        if path.suffix.lower() != ".json":
            raise InputError(f"{path}: not a ground-truth file (expected a COCO keypoint "
                             f".json file or a YOLO-pose folder)")
        return load_coco_keypoints(path, images)
    jsons = sorted((path / "annotations").glob("person_keypoints_*.json")) \
        if (path / "annotations").is_dir() else []
    if (path / "labels").is_dir() or any(path.glob("*.txt")) or (
            not jsons and any(path.rglob("*.txt"))):
        return load_yolo_pose(path, images)
    if len(jsons) == 1:
        return load_coco_keypoints(jsons[0], images)
    if len(jsons) > 1:
        raise InputError(f"{path}: holds several keypoint files ({', '.join(j.name for j in jsons)}"
                         f"); pass one of them")
    raise InputError(f"{path}: neither a YOLO-pose folder (images/ and labels/) nor a folder "
                     f"with annotations/person_keypoints_*.json")


def merge_datasets(datasets: Sequence[KeypointDataset]) -> KeypointDataset:
    """One set from several; image ids are renumbered 1.. when two sets share one."""
    if len(datasets) == 1:
        return datasets[0]
    ids = [i for d in datasets for i in d.images]
    renumber = len(set(ids)) != len(ids)
    images: dict[int, ImageInfo] = {}
    people: list[PersonAnnotation] = []
    names: list[str] = []
    for d in datasets:
        name = d.name or f"set{len(names) + 1}"
        if name in names:                     # two sets of the same name: number them
            name = f"{name}#{sum(n.split('#')[0] == name for n in names) + 1}"
        names.append(name)
        mapping = {}
        for old, info in d.images.items():
            new = len(images) + 1 if renumber else old
            mapping[old] = new
            images[new] = dataclasses.replace(info, id=new)
        for p in d.people:
            people.append(dataclasses.replace(p, image_id=mapping[p.image_id],
                                              annotation_id=len(people) + 1, source=name))
    return KeypointDataset(images=images, people=people, name=" + ".join(names),
                           source="; ".join(d.source for d in datasets), parts=names)


# ---------------------------------------------------------------------- pycocotools
def coco_categories() -> list[dict]:
    return [{"id": 1, "name": "person", "supercategory": "person",
             "keypoints": list(COCO_KEYPOINT_NAMES),
             "skeleton": [[a + 1, b + 1] for a, b in COCO_SKELETON]}]


def to_coco_gt_dict(dataset: KeypointDataset,
                    people: Iterable[PersonAnnotation] | None = None) -> dict:
    """Ground truth as pycocotools' COCO() expects it (category 1 = person), for COCO and
    YOLO-pose sets alike. ``people`` restricts the annotations (default: all)."""
    chosen = list(dataset.people if people is None else people)
    annotations = []
    for n, p in enumerate(chosen):
        kps = np.asarray(p.keypoints, dtype=np.float64)
        annotations.append({
            "id": int(p.annotation_id) or n + 1,
            "image_id": int(p.image_id),
            "category_id": 1,
            "bbox": [float(v) for v in p.box],
            "area": float(p.area),
            "iscrowd": int(bool(p.iscrowd)),
            "keypoints": [float(v) for v in kps.reshape(-1)],
            "num_keypoints": int(p.num_keypoints),
        })
    ids = [a["id"] for a in annotations]
    if len(set(ids)) != len(ids):             # pycocotools indexes annotations by id
        for n, a in enumerate(annotations):
            a["id"] = n + 1
    images = [{"id": int(i), "file_name": info.path.name, "width": int(info.width),
               "height": int(info.height)} for i, info in dataset.images.items()]
    return {"info": {"description": dataset.source}, "images": images,
            "annotations": annotations, "categories": coco_categories()}
