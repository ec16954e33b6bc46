"""Teacher labels for distillation: which model labels, the on-disk cache, the merge rule.

Teachers are pose backends (``backend(image_bgr, boxes_xywh) -> PoseEstimate``):

* ``blazepose``: MediaPipe BlazePose full (core.pose.blazepose), given tight person boxes
  (it frames them x1.5 itself);
* ``movenet:PATH`` (or ``movenet``: the shared movenet_thunder.onnx): MoveNet Thunder
  (core.pose.movenet), given the person box enlarged 1.25x and cut out alone
  (``context="box"``, the better of its two crop protocols in core/evaluation.py);
* ``both:PATH`` (or ``both``): both, combined per keypoint by confidence: where both are
  confident and agree (within 10% of the box size) the confidence-weighted mean, otherwise
  the more confident one.

Every (image, box, teacher) answer is cached in ``cache_dir/<2 hex>/<sha1>.npz`` (keypoints
and scores), keyed by the SHA-1 of the resolved image path, the box (to 0.01 px) and the
teacher's name (model file and crop protocol), so a second run labels nothing again and
``both`` reuses the single teachers' answers.

Merge rule (``merge_labels``): human labels win (weight 1); the teacher fills the
keypoints people left unlabelled, with weight = its confidence, or 0 below ``floor``.

Side check (``check_side_swap``): LSPET mixes person-centric and observer-centric left/right
labels (its README: about 5%, up to 12%, of upright people carry a whole-body swap). For
each person whose limb joints are labelled on both sides where the teacher is confident,
compare the mean distance of the teacher's joints to the human labels as they are
(``d_same``) and with the human sides swapped (``d_swap``). A person is flagged when
``d_swap < ratio * d_same`` and the gain ``d_same - d_swap`` exceeds ``margin`` x the
person's size (so side views, where both sides coincide, are never flagged). The
chosen policy (``swap``, default) swaps the human labels' sides: the human positions are
kept and the teacher, which sees the face and the body's orientation, decides which side
is which; ``drop`` discards that person's human limb labels (the teacher's answer is
used instead); ``keep`` changes nothing.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from ..errors import InputError
from ..keypoints import NUM_KEYPOINTS, flip_permutation

DEFAULT_FLOOR = 0.3
LIMBS = tuple(range(5, 17))          # shoulders .. ankles
SWAP_POLICIES = ("swap", "drop", "keep")

# provenance codes of each merged keypoint
FROM_NONE, FROM_HUMAN, FROM_TEACHER = 0, 1, 2


def enlarge_box(box: np.ndarray | Sequence[float], factor: float) -> np.ndarray:
    """(x, y, w, h) scaled about its centre."""
    x, y, w, h = (float(v) for v in box)
    cx, cy = x + w / 2, y + h / 2
    return np.array([cx - w * factor / 2, cy - h * factor / 2, w * factor, h * factor])


# ---------------------------------------------------------------------------- teachers
class Teacher:
    """A pose backend behind a stable name (the cache key) and its box convention."""

    def __init__(self, name: str, backend: Callable, box_enlarge: float = 1.0) -> None:
        self.name = name
        self.backend = backend
        self.box_enlarge = float(box_enlarge)

    def __call__(self, image_bgr: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tight person boxes (N, 4) -> keypoints (N, 17, 2) and scores (N, 17), float32."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        if not len(boxes):
            return np.zeros((0, NUM_KEYPOINTS, 2), np.float32), np.zeros((0, NUM_KEYPOINTS),
                                                                         np.float32)
        big = np.stack([enlarge_box(b, self.box_enlarge) for b in boxes])
        h, w = image_bgr.shape[:2]
        # keep every box touching the image (the backends refuse boxes outside it)
        big[:, 0] = np.minimum(big[:, 0], w - 1)
        big[:, 1] = np.minimum(big[:, 1], h - 1)
        big[:, 2] = np.maximum(big[:, 2], 1.0)
        big[:, 3] = np.maximum(big[:, 3], 1.0)
        est = self.backend(image_bgr, big)
        return (np.asarray(est.keypoints, np.float32).reshape(-1, NUM_KEYPOINTS, 2),
                np.asarray(est.scores, np.float32).reshape(-1, NUM_KEYPOINTS))

    def __repr__(self) -> str:
        return f"Teacher({self.name!r})"


def default_movenet_path() -> Path:
    from ..pose.movenet import default_model_path
    path = default_model_path()
    if path is None:
        raise InputError("no movenet_thunder.onnx in resources/models or ../shared/models; "
                         "pass the teacher as movenet:PATH/TO/movenet_thunder.onnx")
    return path


def movenet_teacher(path: str | os.PathLike | None = None, num_threads: int = 0) -> Teacher:
    from ..pose.movenet import MoveNetConfig, MoveNetEstimator
    p = Path(path) if path else default_movenet_path()
    if not p.is_file():
        raise InputError(f"{p}: no such MoveNet .onnx model file")
    threads = num_threads or max(1, min(4, os.cpu_count() or 1))
    est = MoveNetEstimator(p, config=MoveNetConfig(context="box", num_threads=threads))
    name = f"movenet:{p.name}:{p.stat().st_size}:box1.25"
    return Teacher(name, est, box_enlarge=1.25)


class MirroredTeacher(Teacher):
    """A teacher run on the mirrored image, its answer mirrored back (x -> w - 1 - x, left
    and right swapped): paired with the plain teacher (``movenet-flip``) it gives
    flip-averaged labels, steadier than either alone."""

    def __init__(self, inner: Teacher) -> None:
        super().__init__(f"mirror:{inner.name}", inner.backend, inner.box_enlarge)
        self.inner = inner

    def __call__(self, image_bgr: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4).copy()
        w = image_bgr.shape[1]
        boxes[:, 0] = w - boxes[:, 0] - boxes[:, 2]
        kps, sc = self.inner(np.ascontiguousarray(image_bgr[:, ::-1]), boxes)
        from .transforms import flip_joints        # the training flip's own convention
        back = [flip_joints(k, s, w) for k, s in zip(kps, sc)]
        if not back:
            return kps, sc
        return (np.stack([k for k, _ in back]).astype(np.float32),
                np.stack([s for _, s in back]).astype(np.float32))


def blazepose_teacher() -> Teacher:
    from ..pose.blazepose import BlazePoseConfig, BlazePoseEstimator
    est = BlazePoseEstimator(BlazePoseConfig())
    return Teacher(f"blazepose:{Path(est.model_path).name}", est, box_enlarge=1.0)


def parse_teacher_spec(spec: str) -> tuple[str, str | None]:
    """'blazepose' | 'movenet[:PATH]' | 'movenet-flip[:PATH]' | 'both[:PATH]' | 'none'
    -> (kind, path)."""
    raw = (spec or "").strip()
    kind, _, path = raw.partition(":")
    kind = kind.lower()
    if kind in ("mediapipe",):
        kind = "blazepose"
    if kind not in ("blazepose", "movenet", "movenet-flip", "both", "none") or (
            kind in ("blazepose", "none") and path):
        raise InputError(f"unknown teacher {spec!r}: use blazepose, movenet:PATH, "
                         f"movenet-flip:PATH (MoveNet on the image and its mirror, averaged), "
                         f"both:PATH (MoveNet ONNX file + BlazePose) or none")
    return kind, (path or None)


def create_teachers(spec: str) -> list[Teacher]:
    """The teacher(s) a spec names (see the module docstring); [] for 'none'."""
    kind, path = parse_teacher_spec(spec)
    if kind == "none":
        return []
    if kind == "blazepose":
        return [blazepose_teacher()]
    if kind == "movenet":
        return [movenet_teacher(path)]
    if kind == "movenet-flip":
        plain = movenet_teacher(path)
        return [plain, MirroredTeacher(plain)]
    return [movenet_teacher(path), blazepose_teacher()]


def combine_teachers(keypoints: Sequence[np.ndarray], scores: Sequence[np.ndarray],
                     boxes: np.ndarray, floor: float = DEFAULT_FLOOR, agree: float = 0.1
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Per keypoint: confidence-weighted mean where all are confident and within
    `agree` x box size of each other, else the most confident teacher's answer."""
    kps = np.stack(keypoints).astype(np.float64)          # (T, N, K, 2)
    sc = np.stack(scores).astype(np.float64)              # (T, N, K)
    best = sc.argmax(axis=0)                              # (N, K)
    n, k = best.shape
    ni, ki = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")
    out = kps[best, ni, ki]
    out_sc = sc[best, ni, ki]
    size = np.maximum(np.asarray(boxes, np.float64).reshape(-1, 4)[:, 2:].max(axis=1), 1.0)
    spread = np.linalg.norm(kps - out[None], axis=-1).max(axis=0)      # (N, K)
    together = (sc >= floor).all(axis=0) & (spread <= agree * size[:, None])
    w = sc / np.maximum(sc.sum(axis=0, keepdims=True), 1e-9)
    mean = (kps * w[..., None]).sum(axis=0)
    out[together] = mean[together]
    return out.astype(np.float32), out_sc.astype(np.float32)


# ---------------------------------------------------------------------------- cache
class LabelCache:
    """Teacher answers on disk: one small .npz per (image path, box, teacher name)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    @staticmethod
    def key(image_path: str | os.PathLike, box: Sequence[float], teacher: str) -> str:
        p = str(Path(image_path).resolve())
        b = ",".join(f"{float(v):.2f}" for v in box)
        return hashlib.sha1(f"{p}|{b}|{teacher}".encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npz"

    def get(self, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        path = self._path(key)
        try:
            with np.load(path) as z:
                return z["keypoints"].astype(np.float32), z["scores"].astype(np.float32)
        except (OSError, KeyError, ValueError, EOFError):
            return None

    def put(self, key: str, keypoints: np.ndarray, scores: np.ndarray) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, keypoints=np.asarray(keypoints, np.float32),
                 scores=np.asarray(scores, np.float32))
        os.replace(tmp, path)


def default_cache_dir() -> Path:
    from ..models.zoo import cache_dir
    return cache_dir() / "teacher-labels"


class TeacherLabeller:
    """Labels (image path, tight box) pairs with one or two teachers, through the cache.

    ``calls`` counts teacher invocations (one per image with uncached boxes, per teacher);
    ``labelled`` the boxes actually sent to a teacher.
    """

    def __init__(self, teachers: Sequence[Teacher], cache: LabelCache | None = None,
                 floor: float = DEFAULT_FLOOR, image_reader: Callable | None = None) -> None:
        if not teachers:
            raise ValueError("TeacherLabeller needs at least one teacher")
        self.teachers = list(teachers)
        self.cache = cache
        self.floor = floor
        self.calls = 0
        self.labelled = 0
        self.cached = 0
        if image_reader is None:
            from ..io_utils import read_image
            image_reader = read_image
        self.read_image = image_reader

    @property
    def name(self) -> str:
        return " + ".join(t.name for t in self.teachers)

    def _one_teacher(self, teacher: Teacher, items: Sequence[tuple[str, np.ndarray]],
                     progress: Callable[[int], None] | None) -> tuple[np.ndarray, np.ndarray]:
        n = len(items)
        kps = np.zeros((n, NUM_KEYPOINTS, 2), np.float32)
        sc = np.zeros((n, NUM_KEYPOINTS), np.float32)
        todo: dict[str, list[int]] = {}
        keys = [LabelCache.key(p, b, teacher.name) for p, b in items]
        for i, key in enumerate(keys):
            hit = self.cache.get(key) if self.cache is not None else None
            if hit is None:
                todo.setdefault(str(items[i][0]), []).append(i)
            else:
                kps[i], sc[i] = hit
                self.cached += 1
        for path, idx in todo.items():
            image = self.read_image(path)
            boxes = np.stack([np.asarray(items[i][1], np.float64) for i in idx])
            k, s = teacher(image, boxes)
            self.calls += 1
            self.labelled += len(idx)
            for j, i in enumerate(idx):
                kps[i], sc[i] = k[j], s[j]
                if self.cache is not None:
                    self.cache.put(keys[i], k[j], s[j])
            if progress is not None:
                progress(len(idx))
        return kps, sc

    def label(self, items: Sequence[tuple[str | os.PathLike, Sequence[float]]],
              progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """[(image path, tight xywh box)] -> keypoints (N, 17, 2), scores (N, 17)."""
        items = [(str(p), np.asarray(b, np.float64)) for p, b in items]
        if not items:
            return np.zeros((0, NUM_KEYPOINTS, 2), np.float32), np.zeros((0, NUM_KEYPOINTS),
                                                                         np.float32)
        results = [self._one_teacher(t, items, progress) for t in self.teachers]
        if len(results) == 1:
            return results[0]
        boxes = np.stack([b for _, b in items])
        return combine_teachers([r[0] for r in results], [r[1] for r in results], boxes,
                                self.floor)


# ---------------------------------------------------------------------------- merge rule
@dataclass
class SideCheck:
    """Result of the whole-body left/right comparison of human and teacher labels."""

    flagged: bool
    d_same: float = float("nan")      # mean distance, human sides as labelled
    d_swap: float = float("nan")      # mean distance, human sides swapped
    joints: int = 0                   # joints compared


def check_side_swap(human: np.ndarray, t_kps: np.ndarray, t_scores: np.ndarray,
                    box: Sequence[float], floor: float = DEFAULT_FLOOR, ratio: float = 0.5,
                    margin: float = 0.05, min_joints: int = 4) -> SideCheck:
    """Whole-body left/right disagreement between human labels (17, 3) and a confident
    teacher (see the module docstring)."""
    human = np.asarray(human, np.float64)
    perm = np.asarray(flip_permutation(NUM_KEYPOINTS))
    lab = human[:, 2] > 0
    conf = np.asarray(t_scores) >= floor
    limbs = np.zeros(NUM_KEYPOINTS, bool)
    limbs[list(LIMBS)] = True
    use = limbs & lab & lab[perm] & conf
    n = int(use.sum())
    if n < min_joints:
        return SideCheck(False, joints=n)
    t = np.asarray(t_kps, np.float64)[use]
    d_same = float(np.linalg.norm(human[use, :2] - t, axis=1).mean())
    d_swap = float(np.linalg.norm(human[perm][use, :2] - t, axis=1).mean())
    size = max(float(box[2]), float(box[3]), 1.0)
    flagged = d_swap < ratio * d_same and (d_same - d_swap) > margin * size
    return SideCheck(flagged, d_same, d_swap, n)


def apply_side_policy(human: np.ndarray, policy: str) -> np.ndarray:
    """A flagged person's human labels under `policy` (swap, drop or keep)."""
    if policy not in SWAP_POLICIES:
        raise InputError(f"swap policy must be one of {', '.join(SWAP_POLICIES)}, not {policy!r}")
    h = np.asarray(human, np.float64).copy()
    if policy == "swap":
        return h[flip_permutation(NUM_KEYPOINTS)]
    if policy == "drop":
        h[list(LIMBS)] = 0.0
    return h


def merge_labels(human: np.ndarray | None, t_kps: np.ndarray | None, t_scores: np.ndarray | None,
                 floor: float = DEFAULT_FLOOR) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """-> joints (17, 2) float32, weights (17,) float32, provenance (17,) int8.

    Human labels (v > 0) win with weight 1; the teacher fills the rest with weight = its
    confidence where that is at least `floor`; everything else has weight 0."""
    joints = np.zeros((NUM_KEYPOINTS, 2), np.float32)
    weights = np.zeros(NUM_KEYPOINTS, np.float32)
    source = np.full(NUM_KEYPOINTS, FROM_NONE, np.int8)
    if t_kps is not None and t_scores is not None:
        s = np.asarray(t_scores, np.float32)
        ok = (s >= floor) & np.isfinite(np.asarray(t_kps)).all(axis=1)
        joints[ok] = np.asarray(t_kps, np.float32)[ok]
        weights[ok] = np.clip(s[ok], 0.0, 1.0)
        source[ok] = FROM_TEACHER
    if human is not None:
        h = np.asarray(human, np.float64)
        lab = h[:, 2] > 0
        joints[lab] = h[lab, :2]
        weights[lab] = 1.0
        source[lab] = FROM_HUMAN
    return joints, weights, source


@dataclass
class LabelStats:
    """What the labelling did, for the run's report."""

    people: int = 0
    with_human: int = 0
    compared: int = 0                 # people with enough joints for the side check
    flagged: int = 0                  # whole-body left/right swaps found
    flagged_ids: list[str] = field(default_factory=list)
    dropped_few_joints: int = 0       # people left with too few weighted joints
    human_joints: int = 0
    teacher_joints: int = 0
    teacher_calls: int = 0
    teacher_labelled: int = 0         # boxes labelled now (not from the cache)
    teacher_cached: int = 0

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["flagged_ids"] = list(self.flagged_ids)
        return d


def label_people(people: Iterable, labeller: TeacherLabeller | None, *,
                 floor: float = DEFAULT_FLOOR, swap_policy: str = "swap",
                 min_joints: int = 4, progress: Callable[[int], None] | None = None,
                 stats: LabelStats | None = None) -> tuple[list, LabelStats]:
    """Merge human and teacher labels of `people` (objects with ``image_path``, ``box``
    (tight xywh), ``human`` ((17, 3) or None), ``uid``); returns the kept people with
    ``joints``/``weights``/``provenance``/``flags`` set, and the statistics."""
    people = list(people)
    stats = stats or LabelStats()
    if swap_policy not in SWAP_POLICIES:
        raise InputError(f"swap policy must be one of {', '.join(SWAP_POLICIES)}, not "
                         f"{swap_policy!r}")
    if labeller is not None:
        c0, l0, h0 = labeller.calls, labeller.labelled, labeller.cached
        t_kps, t_sc = labeller.label([(p.image_path, p.box) for p in people], progress)
        stats.teacher_calls += labeller.calls - c0
        stats.teacher_labelled += labeller.labelled - l0
        stats.teacher_cached += labeller.cached - h0
    else:
        t_kps = t_sc = [None] * len(people)
    kept = []
    for p, tk, ts in zip(people, t_kps, t_sc):
        stats.people += 1
        human = p.human
        flags = []
        if human is not None and (np.asarray(human)[:, 2] > 0).any():
            stats.with_human += 1
            if tk is not None:
                check = check_side_swap(human, tk, ts, p.box, floor)
                if check.joints >= 4:
                    stats.compared += 1
                if check.flagged:
                    stats.flagged += 1
                    stats.flagged_ids.append(str(p.uid))
                    flags.append(f"side-{swap_policy}")
                    human = apply_side_policy(human, swap_policy)
        joints, weights, prov = merge_labels(human, tk, ts, floor)
        if int((weights > 0).sum()) < min_joints:
            stats.dropped_few_joints += 1
            continue
        stats.human_joints += int((prov == FROM_HUMAN).sum())
        stats.teacher_joints += int((prov == FROM_TEACHER).sum())
        p.joints, p.weights, p.provenance, p.flags = joints, weights, prov, tuple(flags)
        kept.append(p)
    return kept, stats
