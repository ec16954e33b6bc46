"""PoseTracker: per-frame poses in, people with stable track ids (and smoothed keypoints) out.

    tracker = PoseTracker(TrackerConfig(smoothing="kalman", strength=1.0))
    for frame in frames:
        people = tracker.update(estimator(frame.image, boxes), frame.time_s)

Association (every update)
    Each live track is first *predicted* to the current time with a constant-velocity
    model: its last matched box and keypoints move by the track's box-centre velocity
    times the elapsed time (box size is held). Detections and predicted tracks are
    compared with

        similarity = w * OKS + (1 - w) * IoU,        cost = 1 - similarity

    OKS uses the COCO sigmas, the mean of the two box areas as the object area and only
    keypoints whose score is >= kp_threshold in both; when no keypoint qualifies the
    similarity is the IoU alone. Pairs whose similarity is below the gate are never
    matched. Assignment is Hungarian (scipy's linear_sum_assignment), in stages so that
    a track with a fresh prediction is never out-bid by one with a stale prediction:

        1. confirmed tracks matched in the previous update            (gate min_similarity)
        2. confirmed tracks that missed 1..max_age updates ("coasting") (gate min_similarity)
        3. the lost pool: confirmed tracks beyond max_age, still within reid_max_gap
           updates of their last match                       (gate reid_min_similarity)
        4. tentative tracks                                           (gate min_similarity)
        5. lineage (only when the caller gives one): a detection still unmatched that the
           caller followed from a confirmed track's last match (core.step cuts each
           person's next crop from their keypoints, or holds their box; its FollowPlan
           lineage) continues that track if it is still unmatched, their boxes overlap
           (IoU >= lineage_min_iou with the track's last or predicted box, or within
           detection.base.within_reach of its last box, which grows with the updates
           missed: someone the step held and found again, a leap's landing; or, with no
           update missed, a walker whose last pose was of the lamp post beside him,
           given his lineage back by the step's backfill). It keeps an id through a
           change of pose too fast for OKS (a flip seen every third frame, a thin walker
           whose box doubles in width); it never overrides stages 1-4, and a tentative
           track is confirmed by similarity only (a followed phantom would otherwise
           become a person). A weak pose (mean
           keypoint score < lineage_min_mean: a body half hidden behind a post) keeps the
           id too, but does not become the track's last state: box, keypoints and
           velocity stay those of its last strong match (as the last state a weak pose
           made the next frames' similarity fail; before, it got a new id instead). That
           is where min_hits is 1 (batch mode): where a new track waits for more hits (live
           mode), a weak pose is not matched so, and starts a tentative track as before
        6. motion (batch and live mode): a strong detection still unmatched
           (mean keypoint score >= lineage_min_mean) continues a confirmed track that
           missed the last 1..max_age updates and is still unmatched, when its centre lies
           near where the track's motion puts it (the track's predicted box, constant
           velocity for at most max_extrapolation_s; distance at most motion_reach times
           the track box's longer side after one missed update, growing by
           motion_reach_growth per further one, at most 1.5x) and its size is within
           1.6x; only where that is unambiguous (no other detection of the frame within
           the track's reach, no other unmatched confirmed track, even one matched on the
           last update, within the detection's), and not for someone last seen at the
           frame's edge (with the caller's frame_hw). Someone who walked behind a post or
           another walker for a few frames: their pose on return no longer matches by OKS
           or IoU, and before they got a new id (in live mode, a new id after min_hits
           frames unshown). With the caller's appearance (clothes,
           core.tracking.appearance; a track learns it from its strong poses clear of
           anyone else's box), a pair is unambiguous too when its likeness is at least
           appearance_sure and beats every rival near the track or the detection by
           appearance_margin (a rival whose clothes are unseen cannot be ruled out, unless
           it is a detection another track took by its pose). A low likeness refuses
           nothing: a post across someone's torso changes its colours
        7. detections still unmatched start tentative tracks (when they have at least
           min_keypoints keypoints above kp_threshold)

Life cycle (all counts are *updates*, i.e. processed frames, not seconds)
    * tentative: needs min_hits matches to be confirmed; it may miss at most
      tentative_max_misses updates in a row, else it is dropped. A tentative track has no
      public id: ids are handed out at confirmation, so ids are consecutive, start at 1,
      and a spurious one-frame detection burns none.
    * confirmed: returned every update it is matched. When unmatched it is not returned
      (nothing is invented) and coasts on its prediction for up to max_age updates.
    * deleted after max_age consecutive misses. When reid_max_gap > max_age it goes to
      the lost pool first, where a detection similar enough to its predicted state
      (stage 3) revives it with its old id; after reid_max_gap misses it is forgotten.
    * ids are never reused (reset() starts again at 1 unless told otherwise).

Output
    PersonPose per confirmed track matched this update, sorted by id: the measured box,
    a person score (mean of the keypoint scores >= kp_threshold, times the detection's
    box score when one is given), smoothed keypoints and the measured keypoint scores.
    Keypoints whose score is below kp_threshold this frame (or not finite) are NaN, and
    so are their scores.

Time
    time_s must increase. A timestamp earlier than the previous one (a seek backwards) is
    taken as a new sequence: the live tracks are cleared (the id counter is kept). So is a
    frame of another size than the last (frame_hw; an image folder of photos): its
    coordinates are not the last frame's. The caller starts one with ``start_shot()`` too
    (core.step at a cut in an edited video, or the next photo of a folder: core.shots).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..detection.base import box_iou, within_reach
from ..pose.nms import keypoint_oks, oks_sigmas
from ..types import PersonPose
from .appearance import blend, similarity
from .smoothing import SMOOTHING_KINDS, make_smoother

TENTATIVE, CONFIRMED, LOST = "tentative", "confirmed", "lost"
_INF_COST = 1e6


@dataclass(frozen=True)
class TrackerConfig:
    kp_threshold: float = 0.3          # keypoint score below which a keypoint is missing
    oks_weight: float = 0.7            # w in  similarity = w*OKS + (1-w)*IoU
    min_similarity: float = 0.3        # gate of stages 1, 2 and 4
    reid_min_similarity: float = 0.4   # gate of the lost pool (stage 3)
    min_hits: int = 3                  # matches before a track is confirmed (and gets an id)
    tentative_max_misses: int = 1      # consecutive misses a tentative track survives
    max_age: int = 10                  # updates a confirmed track may miss before deletion
    reid_max_gap: int = 30             # updates since its last match a track stays re-identifiable
    lineage_min_iou: float = 0.1       # gate of the lineage fallback (stage 5): box IoU with
    #                                  # the track's last or predicted box (> 1: off)
    lineage_min_mean: float = 0.3      # a weaker pose kept by lineage keeps the id, not the state
    motion_reach: float = 0.5          # stage 6: distance gate after one missed update, in
    #                                  # track box lengths (0: the stage is off)
    motion_reach_growth: float = 0.2   # ... and its growth per further missed update
    appearance: bool = True            # stage 6 settles ambiguous joins by the caller's
    #                                  # appearance (clothes) where it is clear:
    appearance_sure: float = 0.75      # a likeness from this, beating every rival near
    appearance_margin: float = 0.15    # the track or the detection by this much
    appearance_weight: float = 0.3     # weight of each new sighting in a track's descriptor
    min_keypoints: int = 3             # keypoints above kp_threshold to start a new track
    velocity_smoothing: float = 0.5    # EMA weight of the newest box-centre velocity
    sigmas: tuple[float, ...] | None = None   # OKS sigmas; None: COCO (K=17) or 0.07 each
    smoothing: str = "kalman"          # 'kalman' | 'one-euro' | 'none'
    strength: float = 1.0              # 0 = off, 1 = default, larger = smoother
    smoothing_reset_s: float = 0.5     # a keypoint missing this long restarts its filter
    reference_size_px: float | None = 200.0   # smoother noise figures are for a person
    #                                  # whose box's longer side is this; None: absolute px
    max_extrapolation_s: float = 0.25  # a coasting track's motion is extrapolated this far
    smoothing_params: Mapping[str, Any] = field(default_factory=dict, hash=False)
    #                                  # extra smoother arguments, e.g. {"backend": "filterpy"}

    def __post_init__(self) -> None:
        kind = str(self.smoothing).lower().replace("_", "-")
        if kind not in SMOOTHING_KINDS:
            raise ValueError(f"smoothing must be one of {', '.join(SMOOTHING_KINDS)}, "
                             f"not {self.smoothing!r}")
        if not np.isfinite(self.strength) or self.strength < 0:
            raise ValueError(f"strength must be >= 0, not {self.strength!r}")
        if self.min_hits < 1 or self.max_age < 0 or self.reid_max_gap < 0:
            raise ValueError("min_hits must be >= 1, max_age and reid_max_gap >= 0")
        if not self.lineage_min_iou >= 0.0:
            raise ValueError(f"lineage_min_iou must be >= 0, not {self.lineage_min_iou!r}")
        if not 0.0 <= self.oks_weight <= 1.0:
            raise ValueError(f"oks_weight must lie in [0, 1], not {self.oks_weight!r}")


@dataclass(frozen=True)
class TrackInfo:
    """A read-only view of one track, for GUIs and tests."""

    track_id: int          # -1 while tentative
    state: str             # 'tentative' | 'confirmed' | 'lost'
    hits: int
    misses: int            # consecutive updates without a match
    box: np.ndarray        # last matched box (x, y, w, h)


class _Track:
    __slots__ = ("serial", "track_id", "state", "hits", "misses", "time_s", "box", "keypoints",
                 "kp_scores", "velocity", "anchor", "smoother", "smoothed", "lineage",
                 "appearance")

    def __init__(self, serial, box, keypoints, kp_scores, time_s, smoother) -> None:
        self.serial = serial           # creation order; decides id order at confirmation
        self.track_id = -1
        self.state = TENTATIVE
        self.hits = 0
        self.misses = 0
        self.time_s = time_s
        self.box = box
        self.keypoints = keypoints
        self.kp_scores = kp_scores
        self.velocity: np.ndarray | None = None
        self.anchor = _center(box)     # where the person is: median of confident keypoints
        self.smoother = smoother
        self.smoothed: np.ndarray | None = None     # (K, 2) smoother output of the last match
        self.lineage = -1              # the caller's lineage of the last match (-1: none)
        self.appearance: np.ndarray | None = None   # clothes (tracking.appearance), if given

    def predict(self, time_s: float, horizon_s: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
        if self.velocity is None:
            return self.box, self.keypoints
        # a noisy velocity extrapolated over a long gap throws the track far away
        shift = self.velocity * min(time_s - self.time_s, horizon_s)
        box = self.box.copy()
        box[:2] += shift
        return box, self.keypoints + shift

    def observe(self, box, keypoints, kp_scores, time_s, alpha: float,
                anchor: np.ndarray | None = None) -> None:
        anchor = _center(box) if anchor is None else anchor
        dt = time_s - self.time_s
        if dt > 0:
            v = (anchor - self.anchor) / dt
            self.velocity = v if self.velocity is None else alpha * v + (1 - alpha) * self.velocity
        self.anchor = anchor
        self.box, self.keypoints, self.kp_scores, self.time_s = box, keypoints, kp_scores, time_s
        self.hits += 1
        self.misses = 0


def _center(box: np.ndarray) -> np.ndarray:
    return box[:2] + 0.5 * box[2:]


EDGE_PX = 8.0          # a box this close to the frame's border is at its edge


def _best_other(values: np.ndarray, axis: int) -> np.ndarray:
    """For each entry of a 2-D array, the largest other value along `axis` (-inf if none)."""
    v = np.moveaxis(values, axis, -1)
    if v.shape[-1] < 2:
        return np.full(values.shape, -np.inf)
    order = np.argsort(v, axis=-1)
    top = np.take_along_axis(v, order[..., -1:], axis=-1)
    second = np.take_along_axis(v, order[..., -2:-1], axis=-1)
    is_top = np.arange(v.shape[-1]) == order[..., -1:]
    return np.moveaxis(np.where(is_top, second, top), -1, axis)


def _at_edge(box: np.ndarray, frame_hw: tuple[int, int]) -> bool:
    h, w = frame_hw
    x, y, bw, bh = (float(v) for v in box)
    return x < EDGE_PX or y < EDGE_PX or x + bw > w - EDGE_PX or y + bh > h - EDGE_PX


def _as_arrays(estimate: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """boxes (N,4), keypoints (N,K,2), scores (N,K), box scores (N,) or None."""
    box_scores = None
    if estimate is None:
        return np.zeros((0, 4)), np.zeros((0, 0, 2)), np.zeros((0, 0)), None
    if isinstance(estimate, Mapping):
        boxes, kps, scores = estimate["boxes"], estimate["keypoints"], estimate["scores"]
        box_scores = estimate.get("box_scores")
    elif hasattr(estimate, "keypoints") and hasattr(estimate, "boxes"):
        boxes, kps, scores = estimate.boxes, estimate.keypoints, estimate.scores
        box_scores = getattr(estimate, "box_scores", None)
    else:
        items = tuple(estimate)
        if len(items) not in (3, 4):
            raise ValueError("expected (boxes, keypoints, scores[, box_scores])")
        boxes, kps, scores = items[:3]
        box_scores = items[3] if len(items) == 4 else None
    kps = np.asarray(kps, np.float64)
    n = len(kps)
    kps = kps.reshape(n, -1, 2) if n else kps.reshape(0, kps.shape[1] if kps.ndim == 3 else 0, 2)
    k = kps.shape[1]
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(n, k)
    if len(boxes) != n:
        raise ValueError(f"{len(boxes)} boxes but {n} keypoint sets")
    if box_scores is not None:
        box_scores = np.asarray(box_scores, np.float64).reshape(n)
    return boxes, kps, scores, box_scores


class PoseTracker:
    """Multi-person pose tracker; see the module docstring for the algorithm."""

    def __init__(self, config: TrackerConfig = TrackerConfig()) -> None:
        self.config = config
        self._next_id = 1
        self.reset()

    # -- public ---------------------------------------------------------------------------
    def reset(self, restart_ids: bool = True) -> None:
        """Forget every track. Ids start again at 1 unless restart_ids is False."""
        self._tracks: list[_Track] = []
        self._serial = 0
        self._last_time: float | None = None
        self._last_hw: tuple[int, int] | None = None
        if restart_ids:
            self._next_id = 1

    def start_shot(self) -> None:
        """The next update starts a new shot (a cut): nobody on it is anyone before it. The
        tracks are forgotten; ids go on from the last one."""
        self.reset(restart_ids=False)

    @property
    def tracks(self) -> tuple[TrackInfo, ...]:
        """Every live track (tentative, confirmed, and the lost pool)."""
        return tuple(TrackInfo(t.track_id, t.state, t.hits, t.misses, t.box.copy())
                     for t in self._tracks)

    def ids(self, state: str = CONFIRMED) -> list[int]:
        """Ids of the tracks in a state ('confirmed' includes coasting ones, or 'lost')."""
        return sorted(t.track_id for t in self._tracks if t.state == state)

    @property
    def wants_appearance(self) -> bool:
        """Whether update() uses an `appearance` argument (stage 6 runs, with its gate on):
        callers compute it only then."""
        return self.config.motion_reach > 0 and self.config.appearance

    def update(self, estimate: Any, time_s: float,
               lineage: np.ndarray | Sequence[int] | None = None,
               frame_hw: tuple[int, int] | None = None,
               appearance: np.ndarray | None = None) -> list[PersonPose]:
        """One frame: a PoseEstimate (or anything with boxes/keypoints/scores, a mapping
        with those keys, or a (boxes, keypoints, scores[, box_scores]) tuple; None for no
        people) at time_s seconds. Returns the confirmed people matched this frame.

        ``lineage`` (optional, one int per detection, -1 for none): which person the caller
        followed into each detection (core.step's box following); stage 5 of the module
        docstring. Without it the tracker matches by similarity alone. ``frame_hw`` (the
        frame's height and width, optional): stage 6 does not continue someone last seen
        at the frame's edge (they walked out; who walks in is someone else).
        ``appearance`` (optional, (N, parts, bins), core.tracking.appearance.describe):
        what each detection's clothes look like; stage 6 settles by it joins that its
        geometry leaves ambiguous."""
        cfg = self.config
        time_s = float(time_s)
        hw = None if frame_hw is None else (int(frame_hw[0]), int(frame_hw[1]))
        if (self._last_time is not None and time_s < self._last_time) or \
                (hw is not None and self._last_hw is not None and hw != self._last_hw):
            self.reset(restart_ids=False)
        self._last_time = time_s
        self._last_hw = hw if hw is not None else self._last_hw
        boxes, kps, scores, box_scores = _as_arrays(estimate)
        world = getattr(estimate, "world", None)
        n = len(boxes)
        valid = np.isfinite(kps).all(-1) & (scores >= cfg.kp_threshold)     # NaN score: False
        matched_det = np.full(n, False)
        det_track: dict[int, _Track] = {}

        fresh = [t for t in self._tracks if t.state == CONFIRMED and t.misses == 0]
        coasting = [t for t in self._tracks if t.state == CONFIRMED and t.misses > 0]
        lost = [t for t in self._tracks if t.state == LOST]
        tentative = [t for t in self._tracks if t.state == TENTATIVE]
        stages = ((fresh, cfg.min_similarity), (coasting, cfg.min_similarity),
                  (lost, cfg.reid_min_similarity), (tentative, cfg.min_similarity))
        for tracks, gate in stages:
            free = np.flatnonzero(~matched_det)
            if not tracks or not len(free):
                continue
            sim = self._similarity(tracks, boxes[free], kps[free], valid[free], time_s)
            cost = np.where(sim >= gate, 1.0 - sim, _INF_COST)
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols):
                if cost[r, c] < _INF_COST:
                    det_track[int(free[c])] = tracks[r]
                    matched_det[free[c]] = True
        lineage = (np.full(n, -1, np.int64) if lineage is None
                   else np.asarray(lineage, np.int64).reshape(n))
        # a strong pose may become a track's last state (stages 5 and 6)
        strong = (scores.mean(axis=1) >= cfg.lineage_min_mean if scores.size
                  else np.zeros(n, bool))
        weak = self._match_lineage(lineage, matched_det, det_track, boxes, strong, time_s)
        if appearance is not None:
            appearance = np.asarray(appearance, np.float32).reshape(n, *np.shape(appearance)[1:])
        if cfg.motion_reach > 0:
            self._match_motion(matched_det, det_track, boxes, strong, valid, time_s, frame_hw,
                               appearance if self.wants_appearance else None)
        # a track's clothes are learnt from strong poses clear of everyone else's box
        # (where two people overlap, the colours inside one's torso are partly the other's)
        clear = np.ones(n, bool)
        if appearance is not None and n > 1:
            overlap = box_iou(boxes, boxes)
            np.fill_diagonal(overlap, 0.0)
            clear = overlap.max(axis=1) < 0.1

        # update matched tracks (in creation order, so simultaneous confirmations get ids
        # in the order the people first appeared)
        for d, track in sorted(det_track.items(), key=lambda item: item[1].serial):
            self._observe(track, boxes[d], kps[d], scores[d], valid[d], time_s,
                          state=d not in weak)
            track.lineage = int(lineage[d])
            if appearance is not None and d not in weak and clear[d]:
                track.appearance = blend(track.appearance, appearance[d], cfg.appearance_weight)
        matched_tracks = {id(t) for t in det_track.values()}
        # new tentative tracks
        for d in np.flatnonzero(~matched_det):
            if valid[d].sum() < cfg.min_keypoints:
                continue
            self._serial += 1
            track = _Track(self._serial, boxes[d].copy(), kps[d].copy(), scores[d].copy(), time_s,
                           self._make_smoother(kps.shape[1]))
            track.anchor = np.median(kps[d][valid[d]], axis=0)
            self._observe(track, boxes[d], kps[d], scores[d], valid[d], time_s, first=True)
            track.lineage = int(lineage[d])
            if appearance is not None and clear[d]:
                track.appearance = appearance[d].copy()
            self._tracks.append(track)
            det_track[int(d)] = track
            matched_tracks.add(id(track))
        # age unmatched tracks
        survivors = []
        for t in self._tracks:
            if id(t) not in matched_tracks:
                t.misses += 1
                if t.state == TENTATIVE and t.misses > cfg.tentative_max_misses:
                    continue
                if t.state == CONFIRMED and t.misses > cfg.max_age:
                    if t.misses > cfg.reid_max_gap:
                        continue
                    t.state = LOST
                if t.state == LOST and t.misses > cfg.reid_max_gap:
                    continue
            survivors.append(t)
        self._tracks = survivors

        people = []
        for d, t in det_track.items():
            if t.state != CONFIRMED:
                continue
            people.append(self._person(t, boxes[d], scores[d], valid[d],
                                       None if box_scores is None else box_scores[d], int(d),
                                       None if world is None else world[d]))
        people.sort(key=lambda p: p.track_id)
        return people

    # -- internals ------------------------------------------------------------------------
    def _match_lineage(self, lineage: np.ndarray, matched_det: np.ndarray,
                       det_track: dict[int, _Track], boxes: np.ndarray, strong: np.ndarray,
                       time_s: float) -> set[int]:
        """Stage 5 (module docstring): a detection no stage matched continues the unmatched
        confirmed (or lost) track whose last match had its lineage, when their boxes still
        overlap. Returns the detections matched so whose pose is weak (they keep the id
        but not the track's state)."""
        if not (lineage >= 0).any() or self.config.lineage_min_iou > 1:
            return set()                           # (no lineage, or the stage is off)
        taken = {id(t) for t in det_track.values()}
        by_lineage = {t.lineage: t for t in self._tracks
                      if t.lineage >= 0 and t.state != TENTATIVE and id(t) not in taken}
        horizon = self.config.max_extrapolation_s
        # a weak pose is shown at once only where a new track would show it (min_hits 1,
        # as annotate runs): in live mode it stays unshown, as a tentative track's
        candidates = np.flatnonzero(~matched_det & (lineage >= 0)
                                    & (strong | (self.config.min_hits <= 1)))
        weak: set[int] = set()
        for d in sorted(candidates, key=lambda d: not strong[d]):    # strong poses first
            track = by_lineage.get(int(lineage[d]))
            if track is None:
                continue
            seen = np.stack([track.box, track.predict(time_s, horizon)[0]])
            # or within reach of where it was last seen (the step held the box of someone
            # it lost and found them again below it: a landing; its follow drifted onto a
            # post beside them, and it found them again as new)
            if (box_iou(seen, boxes[d][None]).max() >= self.config.lineage_min_iou
                    or within_reach(track.box[None], boxes[d][None], [track.misses])[0, 0]):
                det_track[int(d)] = track
                matched_det[d] = True
                del by_lineage[track.lineage]
                if not strong[d]:
                    weak.add(int(d))
        return weak

    def _match_motion(self, matched_det: np.ndarray, det_track: dict[int, _Track],
                      boxes: np.ndarray, strong: np.ndarray, valid: np.ndarray,
                      time_s: float, frame_hw: tuple[int, int] | None,
                      appearance: np.ndarray | None = None) -> None:
        """Stage 6 (module docstring): strong detections still unmatched continue confirmed
        tracks that missed the last updates, by where their motion puts them; only where
        that is unambiguous (one detection of the frame, matched or not, within the
        track's reach, and one unmatched confirmed track within the detection's) and not
        for someone last seen at the frame's edge. With `appearance`, a pair whose clothes
        are clearly more alike than any rival's is unambiguous too."""
        cfg = self.config
        taken = {id(t) for t in det_track.values()}
        # every confirmed track left unmatched counts for ambiguity (one matched on the
        # last update too: giving its person to an older track made ids alternate);
        # those that missed updates, away from the edge, may be continued
        tracks = [t for t in self._tracks if t.state == CONFIRMED and id(t) not in taken]
        if not tracks:
            return
        may = np.array([t.misses >= 1 and (frame_hw is None or not _at_edge(t.box, frame_hw))
                        for t in tracks])[:, None]
        free = np.flatnonzero(~matched_det & (valid.sum(axis=1) >= cfg.min_keypoints) & strong)
        if not len(free):
            return
        predicted = np.stack([t.predict(time_s, cfg.max_extrapolation_s)[0] for t in tracks])
        length = predicted[:, 2:].max(axis=1)[:, None]
        det_length = boxes[:, 2:].max(axis=1)[None]
        centres = predicted[:, :2] + predicted[:, 2:] / 2
        det_centres = boxes[:, :2] + boxes[:, 2:] / 2
        distance = np.linalg.norm(centres[:, None] - det_centres[None], axis=2) / length
        misses = np.array([max(t.misses, 1) for t in tracks], np.float64)[:, None]
        reach = np.minimum(cfg.motion_reach + cfg.motion_reach_growth * (misses - 1), 1.5)
        near = distance <= reach                          # (tracks, every detection)
        ok = near & may & (det_length <= 1.6 * length) & (length <= 1.6 * det_length)
        unique = (near.sum(axis=1, keepdims=True) == 1) & (near.sum(axis=0) == 1)
        if appearance is not None and any(t.appearance is not None for t in tracks):
            unseen = np.full(appearance.shape[1:], np.nan, np.float32)
            likeness = similarity(np.stack([unseen if t.appearance is None else t.appearance
                                            for t in tracks]), appearance)
            known = np.isfinite(likeness)
            # the best rival of each pair: another detection near the track, another track
            # near the detection. One whose likeness is unknown cannot be ruled out, unless
            # it is a detection someone else's track already took by its pose (stages 1-5)
            unknown = np.where(matched_det[None], -np.inf, np.inf)
            rival = np.maximum(
                _best_other(np.where(near, np.where(known, likeness, unknown), -np.inf), axis=1),
                _best_other(np.where(near, np.where(known, likeness, np.inf), -np.inf), axis=0))
            settled = (known & (likeness >= cfg.appearance_sure)
                       & (likeness - rival >= cfg.appearance_margin))
            # (a likeness too low never refuses a join: someone half behind a post or a
            # sign has their torso cut out partly from it, 0.21 for a right join)
            ok &= unique | settled
        else:
            ok &= unique
        ok = ok[:, free]
        cost = np.where(ok, distance[:, free], _INF_COST)
        rows, cols = linear_sum_assignment(cost)
        for r, c in zip(rows, cols):
            if cost[r, c] < _INF_COST:
                det_track[int(free[c])] = tracks[r]
                matched_det[free[c]] = True

    def _make_smoother(self, k: int):
        cfg = self.config
        return make_smoother(cfg.smoothing, k, cfg.strength, min_score=cfg.kp_threshold,
                             reset_after_s=cfg.smoothing_reset_s, **dict(cfg.smoothing_params))

    def _sigmas(self, k: int) -> np.ndarray:
        if self.config.sigmas is not None:
            s = np.asarray(self.config.sigmas, np.float64)
            if len(s) != k:
                raise ValueError(f"{len(s)} OKS sigmas configured for {k} keypoints")
            return s
        return oks_sigmas(k)

    def _similarity(self, tracks: list[_Track], boxes, kps, valid, time_s) -> np.ndarray:
        """(T, D) similarity of tracks to detections: the better of the track's predicted
        state and its last seen state (prediction helps fast motion, the last state helps
        when the velocity estimate was thrown off by a jumpy box)."""
        horizon = self.config.max_extrapolation_s
        predicted = self._similarity_to(tracks, [t.predict(time_s, horizon) for t in tracks],
                                        boxes, kps, valid)
        last = self._similarity_to(tracks, [(t.box, t.keypoints) for t in tracks],
                                   boxes, kps, valid)
        return np.maximum(predicted, last)

    def _similarity_to(self, tracks: list[_Track], preds, boxes, kps, valid) -> np.ndarray:
        t_boxes = np.stack([b for b, _ in preds])
        t_kps = np.stack([k for _, k in preds])
        if kps.shape[1] != t_kps.shape[1]:
            raise ValueError("the number of keypoints changed between frames")
        t_scores = np.stack([t.kp_scores for t in tracks])
        t_valid = np.isfinite(t_kps).all(-1) & (t_scores >= self.config.kp_threshold)
        iou = box_iou(t_boxes, boxes)
        oks, used = keypoint_oks(np.where(t_valid[..., None], t_kps, 0.0), t_valid,
                                 t_boxes[:, 2] * t_boxes[:, 3],
                                 np.where(valid[..., None], kps, 0.0), valid,
                                 boxes[:, 2] * boxes[:, 3],
                                 self._sigmas(kps.shape[1]))
        w = self.config.oks_weight
        return np.where(used > 0, w * oks + (1 - w) * iou, iou)

    def _observe(self, track: _Track, box, kps, scores, valid, time_s, first=False,
                 state: bool = True) -> None:
        """A match: the track's state (last box, keypoints, velocity) becomes this
        detection's, unless `state` is False (a weak pose kept by lineage: only its
        count of misses and its smoothed keypoints move on)."""
        cfg = self.config
        if first:
            track.hits, track.misses = 1, 0
        elif state:
            anchor = np.median(kps[valid], axis=0) if valid.sum() >= 3 else None
            track.observe(box.copy(), kps.copy(), scores.copy(), time_s, cfg.velocity_smoothing,
                          anchor)
        else:
            track.hits += 1
            track.misses = 0
        if track.state == LOST:                     # re-identified
            track.state = CONFIRMED
        if track.state == TENTATIVE and track.hits >= cfg.min_hits:
            track.state = CONFIRMED
            track.track_id = self._next_id
            self._next_id += 1
        scale = 1.0
        if cfg.reference_size_px:
            scale = max(float(box[2]), float(box[3]), 1.0) / cfg.reference_size_px
        measured = np.where(valid[:, None], kps, np.nan)
        track.smoothed = track.smoother.update(measured, np.where(valid, scores, 0.0), time_s,
                                               scale)

    def _person(self, track: _Track, box, scores, valid, box_score, row: int,
                world: np.ndarray | None) -> PersonPose:
        kp = np.where(valid[:, None], track.smoothed, np.nan).astype(np.float32)
        ks = np.where(valid, scores, np.nan).astype(np.float32)
        score = float(np.mean(scores[valid])) if valid.any() else 0.0
        if box_score is not None and np.isfinite(box_score):
            score *= float(box_score)
        return PersonPose(track_id=track.track_id, box=np.asarray(box, np.float32).copy(),
                          score=score, keypoints=kp, keypoint_scores=ks, row=row,
                          world=None if world is None else np.where(valid[:, None], world,
                                                                    np.nan))
