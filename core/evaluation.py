"""Keypoint accuracy of a pose model on ground-truth person boxes (COCO AP, OKS, PCK).

    result = evaluate(model, [load_keypoint_dataset("coco8-pose"),
                              load_keypoint_dataset("person_keypoints.json", "images/")])
    result.mean_oks, result.ap, result.pck_per_keypoint["left_wrist"], result.parts[0]

``model`` is any pose backend: ``model(image_bgr, boxes_xywh) -> PoseEstimate``.

Protocol (as ``../shared/README.md`` describes its measured figures):

* Who is scored: non-crowd people with at least ``min_keypoints`` (3) labelled keypoints
  (v > 0). Each one sees its ground-truth box enlarged ``box_enlarge`` (1.25) times about
  its centre *in total*: a model that pads the box it is given by itself (TransPose and
  TFPose: x1.25, the official crop; ``box_padding``) gets the box enlarged
  ``box_enlarge / box_padding`` times, so every model sees the same context (before,
  TransPose models saw 1.25 x 1.25 = 1.56x boxes while MoveNet saw 1.25x). All scored
  people of an image go in one call.
* OKS (COCO's, as pycocotools computes it): the mean over the person's labelled keypoints
  of ``exp(-d^2 / (2 * area * (2 sigma_k)^2))``, d the distance in pixels, sigma_k COCO's
  per-keypoint sigmas, area the annotation's ``area`` (YOLO-pose: box w*h*0.53).
  ``mean_oks`` is the mean over people; ``oks_per_keypoint`` the mean of the term over
  the people where that keypoint is labelled.
* COCO keypoint AP/AR: pycocotools' COCOeval ('keypoints'), one detection per scored
  person (its predicted keypoints, scored by the mean of its keypoint scores). The
  ground truth holds the scored people plus the annotations pycocotools ignores anyway
  (crowd regions, people without keypoints: a detection matching one of them is neither
  a hit nor a false positive); people with 1 to min_keypoints-1 labelled keypoints are
  left out, since they are not scored and get no detection. AP_M/AP_L/AR_M/AR_L are
  pycocotools' medium and large area ranges; -1 (no person in the range) becomes None.
* PCK@0.2 (torso): a labelled keypoint is correct when it lies within 0.2 x the torso
  diameter of the ground truth. The torso diameter is the distance between the left
  shoulder and the right hip when both are labelled, else between the right shoulder and
  the left hip when both are labelled; a person with neither diagonal has no torso and
  is left out of PCK (``pck_people`` counts the rest). ``pck`` pools every labelled
  keypoint of those people; ``pck_per_keypoint`` is per keypoint.
* Speed: ``ms_per_person`` is the model's wall time (its calls only; image decoding
  excluded) over the people it was given, after one untimed warm-up call.

Measured on the public evaluation set (coco8-pose + coco-mini-train, 101 people) with
MoveNet Thunder: mean OKS 0.589 (coco8-pose 0.557, coco-mini-train 0.598), the shared
README's figures to the third decimal. AP is 0.412 and PCK 0.771 here, against the
README's 0.382 and 0.742, whose exact definitions are not written down: with every
annotation as ground truth (1-2 keypoint people as misses) AP is 0.389, with only the
scored people 0.398; pooled PCK with other torso rules gives 0.758-0.783 and the mean
of per-person PCK 0.751 (0.382 happens to be our coco8-pose-only AP). MoveNet's crop
protocol matters more: cutting the enlarged box out alone and zero-padding it to a square
(MoveNetConfig(context="box")) gives mean OKS 0.628 instead of 0.589 (AP 0.444, PCK
0.815), all of it in images with several people.

Several sets are evaluated together as one (image ids renumbered when they clash), and
each also on its own: ``result.parts``.
"""
from __future__ import annotations

import contextlib
import io
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .datasets import KeypointDataset, PersonAnnotation, merge_datasets, to_coco_gt_dict
from .errors import InputError
from .keypoints import COCO_KEYPOINT_NAMES, COCO_SIGMAS, NUM_KEYPOINTS

PCK_THRESHOLD = 0.2
K = {name: i for i, name in enumerate(COCO_KEYPOINT_NAMES)}
TORSO_DIAGONALS = ((K["left_shoulder"], K["right_hip"]), (K["right_shoulder"], K["left_hip"]))
COCO_STATS = ("ap", "ap50", "ap75", "ap_medium", "ap_large",
              "ar", "ar50", "ar75", "ar_medium", "ar_large")
_VARS = (2.0 * np.asarray(COCO_SIGMAS, dtype=np.float64)) ** 2


@dataclass
class PersonResult:
    """One scored person: where, its OKS and (with a torso) its PCK hits."""

    image: str
    image_id: int
    annotation_id: int
    source: str
    oks: float
    score: float                            # mean keypoint score (the detection's score)
    labelled: list[bool]
    pck_hits: list[bool] | None             # None: no torso diagonal labelled


@dataclass
class EvalResult:
    """Metrics of one model on one set (or several merged; see ``parts``)."""

    model: str
    dataset: str
    people: int                             # scored people
    images: int                             # images with scored people
    skipped_crowd: int
    skipped_few_keypoints: int              # non-crowd, 1..min_keypoints-1 labelled
    ap: float
    ap50: float
    ap75: float
    ap_medium: float | None
    ap_large: float | None
    ar: float
    ar50: float
    ar75: float
    ar_medium: float | None
    ar_large: float | None
    mean_oks: float
    oks_per_keypoint: dict[str, float | None]
    pck: float
    pck_per_keypoint: dict[str, float | None]
    pck_people: int
    labelled_per_keypoint: dict[str, int]  # over all scored people
    pck_labelled_per_keypoint: dict[str, int]  # over the people with a torso (PCK's base)
    ms_per_person: float | None
    box_enlarge: float
    min_keypoints: int
    pck_threshold: float = PCK_THRESHOLD
    parts: list["EvalResult"] = field(default_factory=list)
    per_person: list[PersonResult] = field(default_factory=list)

    def to_dict(self, per_person: bool = True) -> dict[str, Any]:
        """JSON-ready (NaN and pycocotools' -1 become None)."""
        d = asdict(self)
        d["parts"] = [p.to_dict(per_person) for p in self.parts]
        if not per_person:
            d.pop("per_person")
        return _clean(d)


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return None if not math.isfinite(v) else round(v, 6)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


# ---------------------------------------------------------------------- per person
def enlarge_box(box: Sequence[float], factor: float) -> np.ndarray:
    """(x, y, w, h) scaled by factor about its centre."""
    x, y, w, h = (float(v) for v in box)
    cx, cy = x + w / 2, y + h / 2
    return np.array([cx - w * factor / 2, cy - h * factor / 2, w * factor, h * factor])


def oks_terms(pred: np.ndarray, gt: np.ndarray, area: float) -> np.ndarray:
    """(17,) exp(-d^2 / (2 area (2 sigma)^2)) per keypoint (pycocotools' formula)."""
    d2 = ((np.asarray(pred, np.float64)[:, :2] - np.asarray(gt, np.float64)[:, :2]) ** 2).sum(1)
    return np.exp(-d2 / _VARS / (float(area) + np.spacing(1)) / 2)


def oks(pred: np.ndarray, gt: np.ndarray, area: float) -> float:
    """OKS of predicted (17, 2) keypoints against ground truth (17, 3) x, y, v: the mean
    over labelled keypoints (NaN when none is labelled)."""
    labelled = np.asarray(gt)[:, 2] > 0
    if not labelled.any():
        return float("nan")
    return float(oks_terms(pred, gt, area)[labelled].mean())


def torso_diameter(gt: np.ndarray) -> float | None:
    """Left shoulder to right hip, else right shoulder to left hip (the first diagonal
    with both ends labelled); None when neither is labelled."""
    gt = np.asarray(gt, np.float64)
    for a, b in TORSO_DIAGONALS:
        if gt[a, 2] > 0 and gt[b, 2] > 0:
            return float(np.hypot(*(gt[a, :2] - gt[b, :2])))
    return None


def pck_hits(pred: np.ndarray, gt: np.ndarray, threshold: float = PCK_THRESHOLD
             ) -> np.ndarray | None:
    """(17,) bool: labelled keypoints within threshold x torso diameter; None without a
    torso. Unlabelled keypoints are False (count them only where labelled)."""
    torso = torso_diameter(gt)
    if torso is None:
        return None
    gt = np.asarray(gt, np.float64)
    d = np.hypot(*(np.asarray(pred, np.float64)[:, :2] - gt[:, :2]).T)
    return (d <= threshold * torso) & (gt[:, 2] > 0)


# ---------------------------------------------------------------------- COCO AP
def coco_keypoint_stats(gt: dict, detections: list[dict]) -> dict[str, float | None]:
    """pycocotools COCOeval('keypoints') summary: ap, ap50, ... ar_large (see COCO_STATS).
    pycocotools' prints are swallowed; -1 (nothing to score) becomes None."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    if not detections or not gt["annotations"]:
        return {k: (0.0 if detections or gt["annotations"] else None) for k in COCO_STATS}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(detections)
        ev = COCOeval(coco_gt, coco_dt, "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {k: (None if v < 0 else float(v)) for k, v in zip(COCO_STATS, ev.stats)}


def _detections(people: Sequence[PersonAnnotation], keypoints: np.ndarray,
                scores: np.ndarray) -> list[dict]:
    dets = []
    for p, kp, sc in zip(people, keypoints, scores):
        flat = np.concatenate([np.asarray(kp, np.float64)[:, :2],
                               np.ones((NUM_KEYPOINTS, 1))], axis=1).reshape(-1)
        dets.append({"image_id": int(p.image_id), "category_id": 1,
                     "keypoints": [float(v) for v in flat],
                     "score": float(np.mean(sc))})
    return dets


# ---------------------------------------------------------------------- metrics
def _split(dataset: KeypointDataset, min_keypoints: int
           ) -> tuple[list[PersonAnnotation], list[PersonAnnotation], int, int]:
    """(scored people, ground truth for pycocotools, crowd count, too-few count)."""
    scored, gt, crowd, few = [], [], 0, 0
    for p in dataset.people:
        if p.iscrowd:
            crowd += 1
            gt.append(p)
        elif p.num_keypoints >= min_keypoints:
            scored.append(p)
            gt.append(p)
        elif p.num_keypoints == 0:
            gt.append(p)                     # pycocotools ignores these itself
        else:
            few += 1
    return scored, gt, crowd, few


def compute_metrics(dataset: KeypointDataset, keypoints: np.ndarray, scores: np.ndarray,
                    *, people: Sequence[PersonAnnotation] | None = None,
                    min_keypoints: int = 3, box_enlarge: float = 1.25, model: str = "",
                    seconds: np.ndarray | None = None, by_source: bool = True
                    ) -> EvalResult:
    """Metrics of predictions (N, 17, 2) with scores (N, 17), one per person of
    ``people`` (default: the dataset's scored people, in order); ``seconds`` (N,): model
    time per person, for ms_per_person."""
    scored, gt_people, crowd, few = _split(dataset, min_keypoints)
    if people is not None:
        scored = list(people)
        keep = {id(p) for p in scored}
        gt_people = [p for p in gt_people if id(p) in keep or p.iscrowd or p.num_keypoints == 0]
    keypoints, scores = np.asarray(keypoints, np.float64), np.asarray(scores, np.float64)
    if len(keypoints) != len(scored) or len(scores) != len(scored):
        raise ValueError(f"{len(keypoints)} predictions and {len(scores)} score rows for "
                         f"{len(scored)} scored people")
    keypoints = keypoints.reshape(len(scored), NUM_KEYPOINTS, -1)
    scores = scores.reshape(len(scored), NUM_KEYPOINTS)

    per_person, oks_sum, oks_n = [], np.zeros(NUM_KEYPOINTS), np.zeros(NUM_KEYPOINTS)
    hits_sum, hits_n, pck_people = np.zeros(NUM_KEYPOINTS), np.zeros(NUM_KEYPOINTS), 0
    for p, kp, sc in zip(scored, keypoints, scores):
        lab = p.keypoints[:, 2] > 0
        terms = oks_terms(kp, p.keypoints, p.area)
        oks_sum += np.where(lab, terms, 0.0)
        oks_n += lab
        hits = pck_hits(kp, p.keypoints)
        if hits is not None:
            pck_people += 1
            hits_sum += hits
            hits_n += lab
        per_person.append(PersonResult(
            image=str(p.image_path), image_id=int(p.image_id), annotation_id=int(p.annotation_id),
            source=p.source, oks=float(terms[lab].mean()) if lab.any() else float("nan"),
            score=float(sc.mean()), labelled=lab.tolist(),
            pck_hits=None if hits is None else hits.tolist()))

    def per_kp(num: np.ndarray, den: np.ndarray) -> dict[str, float | None]:
        return {n: (float(num[i] / den[i]) if den[i] else None)
                for i, n in enumerate(COCO_KEYPOINT_NAMES)}

    gt = to_coco_gt_dict(dataset, gt_people)
    stats = coco_keypoint_stats(gt, _detections(scored, keypoints[..., :2], scores))
    result = EvalResult(
        model=model, dataset=dataset.name or dataset.source, people=len(scored),
        images=len({p.image_id for p in scored}), skipped_crowd=crowd,
        skipped_few_keypoints=few, **stats,
        mean_oks=float(np.mean([r.oks for r in per_person])) if per_person else float("nan"),
        oks_per_keypoint=per_kp(oks_sum, oks_n),
        pck=float(hits_sum.sum() / hits_n.sum()) if hits_n.sum() else float("nan"),
        pck_per_keypoint=per_kp(hits_sum, hits_n), pck_people=pck_people,
        labelled_per_keypoint={n: int(oks_n[i]) for i, n in enumerate(COCO_KEYPOINT_NAMES)},
        pck_labelled_per_keypoint={n: int(hits_n[i])
                                   for i, n in enumerate(COCO_KEYPOINT_NAMES)},
        ms_per_person=None if seconds is None or not len(scored) else
        1000.0 * float(np.mean(seconds)), box_enlarge=box_enlarge, min_keypoints=min_keypoints,
        per_person=per_person)
    if by_source and len(dataset.parts) > 1:
        index = {id(p): i for i, p in enumerate(scored)}
        for name in dataset.parts:
            sub = KeypointDataset(images=dataset.images,
                                  people=[p for p in dataset.people if p.source == name],
                                  source=name, name=name)
            mine = [p for p in scored if p.source == name]
            idx = [index[id(p)] for p in mine]
            part = compute_metrics(sub, keypoints[idx], scores[idx], people=mine,
                                   min_keypoints=min_keypoints, box_enlarge=box_enlarge,
                                   model=model, by_source=False,
                                   seconds=None if seconds is None else np.asarray(seconds)[idx])
            _, _, part.skipped_crowd, part.skipped_few_keypoints = _split(sub, min_keypoints)
            result.parts.append(part)
    return result


# ---------------------------------------------------------------------- inference
def model_box_padding(model: Any) -> float:
    """How much context the model adds around the box it is given on its own: TransPose,
    TFPose (x1.25, the official crop) say so in ``box_padding``; MoveNet and BlazePose's
    wrappers here add none of their own beyond their crop rule (1.0)."""
    pad = getattr(model, "box_padding", 1.0)
    return float(pad) if isinstance(pad, (int, float)) and pad > 0 else 1.0


def predict_people(model: Callable, dataset: KeypointDataset,
                   people: Sequence[PersonAnnotation], *, box_enlarge: float = 1.25,
                   progress: Callable[[int, int], None] | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the model on each person's enlarged ground-truth box, all people of an image in
    one call. -> keypoints (N, 17, 2), scores (N, 17), seconds of model time per person
    (N,): each call's time shared by its people, after one untimed warm-up call."""
    from .io_utils import read_image
    kps = np.zeros((len(people), NUM_KEYPOINTS, 2), np.float64)
    scs = np.zeros((len(people), NUM_KEYPOINTS), np.float64)
    by_image: dict[int, list[int]] = {}
    for i, p in enumerate(people):
        by_image.setdefault(p.image_id, []).append(i)
    seconds, warm, done = np.zeros(len(people)), False, 0
    for image_id, idx in by_image.items():
        image = read_image(dataset.images[image_id].path)
        h, w = image.shape[:2]
        boxes = []
        for i in idx:
            b = enlarge_box(people[i].box, box_enlarge / model_box_padding(model))
            b[2:] = np.maximum(b[2:], 1.0)              # degenerate ground-truth boxes
            boxes.append(b)
        boxes = np.asarray(boxes, np.float32)
        if not warm:
            model(image, boxes[:1])
            warm = True
        t0 = time.perf_counter()
        est = model(image, boxes)
        seconds[idx] = (time.perf_counter() - t0) / len(idx)
        kps[idx] = np.asarray(est.keypoints, np.float64)[:, :, :2]
        scs[idx] = np.asarray(est.scores, np.float64)
        done += len(idx)
        if progress is not None:
            progress(done, len(people))
    return kps, scs, seconds


def evaluate(model: Callable, dataset: KeypointDataset | Sequence[KeypointDataset], *,
             box_enlarge: float = 1.25, min_keypoints: int = 3, model_name: str = "",
             progress: Callable[[int, int], None] | None = None) -> EvalResult:
    """Evaluate a pose backend on one set or several (merged, each also in ``parts``).
    Raises InputError when no person qualifies."""
    sets = [dataset] if isinstance(dataset, KeypointDataset) else list(dataset)
    if not sets:
        raise InputError("no ground truth to evaluate on")
    if not box_enlarge > 0:
        raise InputError(f"box_enlarge must be positive, not {box_enlarge!r}")
    merged = merge_datasets(sets)
    scored, _, _, _ = _split(merged, min_keypoints)
    if not scored:
        raise InputError(f"{merged.source}: no non-crowd person with at least {min_keypoints} "
                         f"labelled keypoints to evaluate")
    kps, scs, seconds = predict_people(model, merged, scored, box_enlarge=box_enlarge,
                                       progress=progress)
    name = model_name or getattr(model, "variant", "") or type(model).__name__
    return compute_metrics(merged, kps, scs, people=scored, min_keypoints=min_keypoints,
                           box_enlarge=box_enlarge, model=name, seconds=seconds)
