"""One frame, synchronously: detector schedule -> pose -> pose NMS -> tracker -> PoseFrame.

`PoseStep` is the whole per-frame logic as a plain callable (``step(frame) -> PoseFrame``),
in the spirit of rtmlib's ``PoseTracker``:

* **detector schedule**: the detector runs on the first frame and every ``detect_every``
  frames; in between, each person's box follows their previous keypoints
  (``boxes_from_keypoints``). A person lost after being followed for a while brings the
  detector back at once; one lost right after a detector pass (a false detection, or a
  pose too weak to follow) is dropped until the next scheduled pass, and an empty scene is
  searched on the schedule too, not on every frame (both used to re-run the detector on
  most frames of crowded or empty footage). While nobody is followed, a detector that has
  ``detect_tiled`` (YOLOX) also searches tiles of a wide frame. A detection continues
  the followed person whose box it overlaps best (``continuation``: IoU, or lying inside
  a followed box that inflated around an outstretched arm, or lying near the box held for
  someone whose pose collapsed). With ``keep_undetected``
  a followed person no detection continues stays while their pose stays confident
  (detectors miss backlit, leaping or lying people);
* **new shots** (core.shots, ``shot_threshold``): a frame that starts a new shot (a cut
  in an edited video, the next photo of a folder of photos, a change of size) follows
  nobody in: the detector looks at it as at a first frame, backfill stops there, and the
  tracker starts afresh, so each photo of a folder gets the people it gets alone;
* **turned people** (``follow_turns``, with backends that take ``rotations``): a
  followed person whose body leans beyond ``turn_start`` degrees (a cartwheel, a flip,
  someone lying down) is cropped turned by their body angle, so they stand upright for
  the network (core.pose.orientation), with a box measured along their body that does
  not shrink faster than ``min_box_shrink`` while keypoints are missing. When a followed
  pose collapses from one frame to the next (a body turning fast), the crop is tried
  again a quarter turn either way and the better pose is kept (``retry_collapsed``; not
  in live mode, where it slowed those frames 3x for no gain), and the collapsed person's
  box is held for up to ``hold_frames`` frames until a crop finds them again. On a frame
  nobody was followed into (a first or still frame), someone whose upright crop shows a
  turned body is posed again turned by that body angle when that gives a better pose.
  All of this needs
  detect_every > 1 (with 1 nobody is followed);
* **pose** on all of the frame's boxes in one batch (several frames at once when the
  detector runs on every frame and the backend has ``predict_many``);
* **pose NMS**: poses that are not people (under 3 confident keypoints) or repeat another
  are dropped, together with their rows of attention (``PoseEstimate[keep]``);
* **people found late, followed back** (``backfill``, batch runs only): someone the
  detector first finds on its pass (walking in, or out from behind something) was often
  there on the frames since its previous pass. A batch run holds those frames back from
  tracking (``HeldFrames``) and follows such people back through them, as following works
  forwards, until their pose is lost or repeats someone there; they keep the id they get
  on the pass (the Sports2D woman stepping out from behind the tree: labelled from frame
  36, where the pass on frame 40 found her). When the pose they repeat is of someone
  followed there but lost before the pass, they are that person (the follow lost them
  behind a post): they take on that person's lineage, so their id. ``run_batch`` is
  this without threads;
* **tracking and smoothing** by the tracker, each person keeping the row of the estimate
  it came from, so attention is linked to people by construction. Each row also tells the
  tracker whom the step followed into it (``FollowPlan.lineage``: a serial per detection,
  passed on by following, holding and by the detection that best overlaps a followed
  person), so a person whose pose changes too much between frames to match by similarity
  keeps their id (core.tracking, stage 5).

It is split in two halves, ``infer`` (detector + pose, the expensive part) and ``track``,
so the threaded `core.pipeline.PosePipeline` can run them on two threads; used alone,
``step(frame)`` does both. A caller that sees frames coming (the batch pipeline's queue)
can hand them to ``detect_ahead``: the detector then runs on a thread of its own, on the
frames its schedule will run it on, beside the pose model of the frames before, and
``infer`` takes its result when it gets there (the same people as without it). The GUI's
still frames, ``predict`` and the benchmarks call the
same step, so every path sees the same people.
"""
from __future__ import annotations

import dataclasses
import itertools
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from .detection.base import (box_containment, box_iou, detect_thoroughly,
                             within_reach)
from .pose.nms import pieced, pose_nms, twins
from .pose.preprocess import contexts_for
from .pose.orientation import (body_angle, turned_box, turned_box_hulls, turned_crops_for,
                               wrap_degrees)
from .shots import ShotChange, ShotConfig
from .tracking.appearance import describe
from .types import (Detections, Frame, PersonDetector, PersonPose, PoseBackend, PoseEstimate,
                    PoseFrame, Tracker)

NO_BOXES = np.zeros((0, 4), np.float32)
# FollowPlan.lineage serials, unique in the process: the GUI feeds one tracker from the
# playback pipeline's step and from the steps of its still frames
_LINEAGE_SERIALS = itertools.count()


@dataclass(frozen=True)
class StepConfig:
    detect_every: int = 5            # run the detector at least every N frames (1 = always)
    min_keypoint_score: float = 0.3  # a followed person needs this mean score to be kept
    box_margin: float = 1.25         # box from keypoints: enlarged by this about its centre
    max_people: int = 20
    pose_nms_oks: float = 0.7        # poses more alike than this (OKS) are one person
    joint_share: float = 0.7         # a pose whose keypoints repeat others' this much is no
                                     # one: a skeleton pieced from two people crossing
                                     # (core.pose.nms.pose_nms; > 1: off)
    keep_undetected: bool = True     # a followed person the detector misses stays while
                                     # their pose stays confident (with detect_every=1 the
                                     # detector alone decides)
    attention: bool = False          # keep the pose model's attention in each PoseFrame
    keep_images: bool = False        # keep the frame's image in each PoseFrame
    follow_turns: bool = True        # crop followed people turned by their body angle
                                     # (module docstring; backends with rotates_crops;
                                     # only with detect_every > 1, which follows people)
    turn_start: float = 50.0         # lean (degrees) from which a crop turns with the body
    turn_stop: float = 30.0          # lean under which a turned crop goes back upright
    min_box_shrink: float = 0.85     # a turned person's box keeps this share of its last
                                     # size per frame while some keypoints are missing
    turn_min_size: float = 96.0      # retries and holds only for people at least this tall
                                     # (px, the box's longer side): turned crops of small
                                     # people gave confident-looking noise
    hold_frames: int = 8             # with follow_turns: a followed pose that collapses away
                                     # from the frame's edge (where people leave) is looked
                                     # for in its last box for up to this many frames
    shot_threshold: float | None = 30.0   # content change from which a frame starts a new
    #                                # shot (core.shots: a cut; nobody followed into it, the
    #                                # tracker starts afresh); None: only a change of size
    retry_collapsed: bool = True     # with follow_turns: try a collapsed pose's crop a
                                     # quarter turn either way (live mode: off; there it
                                     # tripled the time of the frames it ran on and found
                                     # no more people on the Sports2D flip)

    def __post_init__(self) -> None:
        if self.detect_every < 1:
            raise ValueError("detect_every must be >= 1")
        if not 0 <= self.turn_stop <= self.turn_start <= 180:
            raise ValueError("need 0 <= turn_stop <= turn_start <= 180 degrees")
        if not 0 <= self.min_box_shrink <= 1:
            raise ValueError("min_box_shrink must lie in [0, 1]")
        if self.hold_frames < 0:
            raise ValueError("hold_frames must be >= 0")


@dataclass
class FollowPlan:
    """The boxes the pose model gets for one frame, and what is known of each person."""

    boxes: np.ndarray                # (N, 4) xywh; a turned person's box is in their frame
    turns: np.ndarray                # (N,) crop rotation, degrees (0: upright crop)
    counts: np.ndarray               # (N,) confident keypoints last frame (0: not followed)
    held: np.ndarray                 # (N,) frames this box has been held after a collapse
    lineage: np.ndarray              # (N,) which followed person the row continues: a serial
                                     # the step gives each detection that starts one (-1: none)
    measured: np.ndarray             # (N,) bool: the detector's box on this frame (not one
                                     # predicted from the last frame's keypoints)

    @classmethod
    def upright(cls, boxes: np.ndarray, measured: bool = False) -> "FollowPlan":
        n = len(boxes)
        return cls(boxes, np.zeros(n, np.float32), np.zeros(n, np.int64), np.zeros(n, np.int64),
                   np.full(n, -1, np.int64), np.full(n, measured))

    def _columns(self) -> list[np.ndarray]:
        return [getattr(self, f.name) for f in dataclasses.fields(self)]

    @classmethod
    def concat(cls, a: "FollowPlan", b: "FollowPlan") -> "FollowPlan":
        return cls(*(np.concatenate([x, y]) for x, y in zip(a._columns(), b._columns())))

    def __getitem__(self, rows) -> "FollowPlan":
        return FollowPlan(*(x[rows] for x in self._columns()))

    def __len__(self) -> int:
        return len(self.boxes)


@dataclass
class FrameInference:
    """A frame after detector and pose, before tracking (what ``infer`` hands ``track``)."""

    frame: Frame
    boxes: np.ndarray                # (N, 4) per estimate row, the box the pose model saw
                                     # (upright hulls of turned crops)
    estimate: PoseEstimate           # one row per kept person (after pose NMS)
    detected: bool                   # whether the detector ran on this frame
    detect_ms: float = 0.0
    pose_ms: float = 0.0
    turned: FollowPlan | None = None  # per estimate row, the turned crops (None: upright)
    lineage: np.ndarray | None = None  # per estimate row, FollowPlan.lineage (the tracker's
                                       # fallback when a pose changed too much to match)
    started: np.ndarray | None = None  # per estimate row, on a detector's frame: a person
                                       # first found here (continuing nobody followed)
    measured: np.ndarray | None = None  # per estimate row, FollowPlan.measured (how the
                                        # crop was cut: see preprocess.contexts_for)
    new_shot: bool = False           # the frame starts a new shot (core.shots): a cut

    def add_people(self, estimate: PoseEstimate, boxes: np.ndarray,
                   lineage: np.ndarray) -> None:
        """More rows: people posed upright in `boxes` (PoseStep.backfill)."""
        n = len(self.estimate)
        self.estimate = self.estimate.extended(estimate)
        self.boxes = np.concatenate([self.boxes, boxes]).astype(np.float32)
        self.lineage = np.concatenate([np.full(n, -1, np.int64) if self.lineage is None
                                       else self.lineage, lineage])
        if self.started is not None:
            self.started = np.concatenate([self.started, np.zeros(len(boxes), bool)])
        if self.measured is not None:        # (backfill poses the whole crop)
            self.measured = np.concatenate([self.measured, np.zeros(len(boxes), bool)])
        if self.turned is not None:
            more = FollowPlan.upright(boxes.astype(np.float32))
            more.lineage[:] = lineage
            self.turned = FollowPlan.concat(self.turned, more)

    def drop_people(self, rows: np.ndarray) -> None:
        """Fewer rows: those in `rows` go (PoseStep.backfill: two poses of one person)."""
        stay = np.setdiff1d(np.arange(len(self.estimate)), rows)
        self.estimate = self.estimate[stay]
        self.boxes = self.boxes[stay]
        for name in ("lineage", "started", "turned", "measured"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value[stay])


_SAME_PERSON = 0.3       # continuation() from which a detection continues a followed person


def continuation(followed: np.ndarray, detections: np.ndarray,
                 held: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(F, D) how well each detection continues each followed person (boxes x, y, w, h),
    and (F, D) bool where the detection's own box is the better one for that person.

    The measure is their IoU; but a followed box inflates when the pose it came from
    stretched out an arm or took in a neighbour's limb, and the detector's tight box of
    that person then overlapped it by IoU 0.2, was taken for someone new, and the person
    got a new id (the Pose2Sim three-person clip, frame 95). So a detection lying almost
    whole (80%) inside a followed box at least twice its area, yet as long as 60% of it
    (a whole person; a box of a part of someone, such as the upper body of a lying man, is
    much shorter than they are), scores _SAME_PERSON plus their IoU.

    A followed person whose box is held after their pose collapsed (`held` > 0 frames, see
    PoseStep) is no longer where that box says: the box is where they were last seen
    well, up to hold_frames ago, and no pose was found in it since. A detection within
    reach of it (detection.base.within_reach, growing with the frames held) that overlaps
    nobody followed who is not held (IoU 0.1) scores _SAME_PERSON. Any detection that
    continues a held person keeps its own box. The Sports2D jumper, held in the air
    through the glare of his backflip, was detected again landing below his held box (IoU
    0.12 and up to 470 px away, or IoU 0.31 and then cropped by the stale box) and got a
    new id in live mode. Among several followed boxes, a detection still goes to the one
    it overlaps best."""
    iou = box_iou(followed, detections)
    if not iou.size:
        return iou, np.zeros(iou.shape, bool)
    area_f = followed[:, 2] * followed[:, 3]
    area_d = detections[:, 2] * detections[:, 3]
    long_f = followed[:, 2:].max(axis=1)
    long_d = detections[:, 2:].max(axis=1)
    inflated = ((box_containment(followed, detections) >= 0.8)
                & (area_f[:, None] >= 2.0 * area_d[None])
                & (long_d[None] >= 0.6 * long_f[:, None]) & (iou < _SAME_PERSON))
    score = np.where(inflated, _SAME_PERSON + iou, iou)
    if held is None or not np.any(held > 0):
        return score, inflated
    is_held = np.asarray(held)[:, None] > 0
    # (not a detection that already overlaps someone followed who is not held: in a crowd
    # that is them, even at a low IoU)
    seen_elsewhere = (np.where(is_held, 0.0, iou) >= 0.1).any(axis=0)
    near = (is_held & (score < _SAME_PERSON) & ~seen_elsewhere[None]
            & within_reach(followed, detections, held))
    return np.where(near, _SAME_PERSON, score), inflated | is_held


def _running_mean(mean: float, value: float, weight: float = 0.2) -> float:
    """Exponential running mean; the first value (mean 0) is taken as it is."""
    return value if mean <= 0 else (1 - weight) * mean + weight * value


def boxes_from_keypoints(keypoints: np.ndarray, scores: np.ndarray, min_score: float,
                         margin: float, image_hw: tuple[int, int]) -> np.ndarray:
    """(N, K, 2) keypoints -> (N, 4) boxes around their confident points, enlarged.

    A person with fewer than 3 confident keypoints gets a NaN box (lost)."""
    out = np.full((len(keypoints), 4), np.nan, np.float32)
    h, w = image_hw
    for i, (kp, sc) in enumerate(zip(keypoints, scores)):
        ok = np.isfinite(kp).all(1) & (sc >= min_score)
        if ok.sum() < 3:
            continue
        x0, y0 = kp[ok].min(0)
        x1, y1 = kp[ok].max(0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        bw, bh = max(x1 - x0, 8.0) * margin, max(y1 - y0, 8.0) * margin
        # keep the box inside the frame (a crop beyond it only adds black)
        bx0, by0 = max(0.0, cx - bw / 2), max(0.0, cy - bh / 2)
        bx1, by1 = min(float(w), cx + bw / 2), min(float(h), cy + bh / 2)
        if bx1 - bx0 > 2 and by1 - by0 > 2:
            out[i] = (bx0, by0, bx1 - bx0, by1 - by0)
    return out


class PoseStep:
    """source frame -> PoseFrame (module docstring). Not thread-safe: ``infer`` and
    ``track`` may run on two threads, but each from one thread at a time."""

    # A followed pose "collapses" when it had at least this many confident keypoints and
    # keeps under half of them. A turned retry must beat it by `_TURN_GAIN` confident
    # keypoints, reach `_TURN_MIN` of them and a mean score of `_TURN_MEAN` (on the
    # pedestrian clip, turned crops of small upright walkers gave 8-9 keypoints at a mean
    # of 0.27-0.33; the back-flipping jumper's right turns 0.41-0.56); a body angle starts
    # turning the crop only from a pose with that mean score too (a person found on a
    # frame nobody was followed into: from turned_crops_for's look_mean, 0.35).
    _COLLAPSE_FROM, _TURN_GAIN, _TURN_MIN, _TURN_MEAN = 6, 3, 6, 0.4
    # detect_ahead starts a scheduled pass as few frames before its frame as cover the
    # pass with pose work (detect_lead; at most MAX_DETECT_LEAD): a pass started earlier is
    # wasted more often, when someone lost brings the detector back sooner (8 of 28 passes
    # on the pedestrian clip with passes started 4 frames ahead)
    MAX_DETECT_LEAD = 4

    def __init__(self, detector: PersonDetector, pose: PoseBackend, tracker: Tracker,
                 config: StepConfig = StepConfig()) -> None:
        self.detector = detector
        self.pose = pose
        self.tracker = tracker
        self.config = config
        self.detector_runs = 0
        self.detector_runs_ahead = 0     # of detector_runs, those detect_ahead had started
        self.detector_runs_unused = 0    # passes detect_ahead started that the schedule then
                                         # did not need (someone lost moved it)
        self.turn_retries = 0            # collapsed poses tried again a quarter turn away
        self.stage = "detector"          # the stage now running (for error reports)
        self._followed = FollowPlan.upright(NO_BOXES)   # the last frame's people, followed
        self._since_detect = 0           # frames since the detector ran (0: run it now)
        self._lost = False               # someone followed was lost on the last frame
        self._shots = ShotChange(ShotConfig(config.shot_threshold))   # cuts (core.shots)
        # detect_ahead: the detector's own thread (every detector call goes through it once
        # it exists: detectors such as OpenCV DNN or TFLite are not thread-safe), and the
        # passes started, by frame index
        self._detector_thread: ThreadPoolExecutor | None = None
        self._ahead: dict[int, tuple[np.ndarray, Future]] = {}
        self._pass_ms = 0.0              # running means: a detector pass (on its thread) and
        self._pose_ms = 0.0              # a frame's pose work (0: not measured yet)

    @property
    def follows_turns(self) -> bool:
        """Whether turned people get turned crops (config and backend both allow it)."""
        return self.config.follow_turns and bool(getattr(self.pose, "rotates_crops", False))

    # ---- the whole step ------------------------------------------------------------
    def __call__(self, frame: Frame) -> PoseFrame:
        return self.track(self.infer([frame])[0])

    def reset(self) -> None:
        """Forget everyone (a seek, a new video): the next frame runs the detector."""
        self.reset_inference()
        self._shots.forget()
        self.tracker.reset()

    def reset_inference(self) -> None:
        self._followed = FollowPlan.upright(NO_BOXES)
        self._since_detect = 0
        self._lost = False
        for index in list(self._ahead):
            self._drop_ahead(index)

    def close(self) -> None:
        """Stop the detector's own thread (detect_ahead), if it was started; the step can
        still be used, and starts it again when asked to."""
        self.reset_inference()
        if self._detector_thread is not None:
            self._detector_thread.shutdown(wait=False, cancel_futures=True)
            self._detector_thread = None

    def _detector_due(self) -> bool:
        c = self.config
        if self._since_detect == 0 or self._since_detect >= c.detect_every:
            return True
        # lost after being followed for a while: look again now; lost right after a
        # detector pass: that pass is what found them, wait for the schedule
        return self._lost and self._since_detect > 1

    # ---- the detector ahead of the pose model ------------------------------------
    def frames_to_detection(self) -> int:
        """How many frames after the next one to infer the detector's next pass is
        scheduled (0: on that frame), if nobody is lost before then."""
        if self._detector_due():
            return 0
        return self.config.detect_every - self._since_detect

    @property
    def detect_lead(self) -> int:
        """How many frames before its frame detect_ahead starts a scheduled pass: enough
        frames of pose work to cover one pass, as measured so far (1 on a CPU, where a pass
        takes about 20 ms and a frame's pose 50 ms or more; 2 on a GPU, where the pose model
        is faster than the detector), at most MAX_DETECT_LEAD and detect_every - 1."""
        need = 1
        if self._pass_ms > 0 and self._pose_ms > 0:
            need = int(np.ceil(self._pass_ms / self._pose_ms))
        return max(1, min(need, self.MAX_DETECT_LEAD, self.config.detect_every - 1))

    def detect_ahead(self, upcoming: Sequence[Frame]) -> None:
        """Start the detector, on a thread of its own, on those of `upcoming` (the next
        frames to infer, in order, starting with the very next) its schedule will run it
        on: the next scheduled pass once it is detect_lead frames away, or with
        detect_every=1 every frame. It then works while the pose model does the frames
        before. A pass the schedule no longer needs when its frame comes (someone lost
        brought the detector back earlier, a reset) is dropped. Every pass gives what the
        same call in ``infer`` would, so the people found are the same as without this;
        only the cost moves off the pose model's thread."""
        if self.config.detect_every == 1:
            due = list(upcoming)
        else:
            k = self.frames_to_detection()
            due = list(upcoming[k:k + 1]) if 0 < k <= self.detect_lead else []
        for frame in due:
            if frame.index not in self._ahead:
                self._ahead[frame.index] = (
                    frame.image, self._detector_pool().submit(self._timed_pass, frame.image))

    def _timed_pass(self, image: np.ndarray) -> Detections:
        t0 = time.perf_counter()
        out = self.detector(image)
        self._pass_ms = _running_mean(self._pass_ms, (time.perf_counter() - t0) * 1e3)
        return out

    def _detector_pool(self) -> ThreadPoolExecutor:
        if self._detector_thread is None:
            self._detector_thread = ThreadPoolExecutor(1, thread_name_prefix="detector")
        return self._detector_thread

    def _run_detector(self, fn, image: np.ndarray) -> Detections:
        """fn(image) on the detector's own thread once there is one (one call at a time)."""
        if self._detector_thread is None:
            return fn(image)
        return self._detector_thread.submit(fn, image).result()

    def _take_ahead(self, frame: Frame) -> Future | None:
        """The pass detect_ahead started on this frame, if any; passes on frames up to this
        one are forgotten (indices only grow between resets)."""
        hit = None
        for index in [i for i in self._ahead if i <= frame.index]:
            image, future = self._ahead.pop(index)
            if index == frame.index and image is frame.image:
                hit = future
            else:
                self._discard(future)
        return hit

    def _drop_ahead(self, index: int) -> None:
        self._discard(self._ahead.pop(index)[1])

    def _discard(self, future: Future) -> None:
        """A pass started ahead that is not needed: cancelled, or counted as wasted."""
        if not future.cancel():
            self.detector_runs_unused += 1

    # ---- first half: detector + pose -----------------------------------------------
    def infer(self, frames: Sequence[Frame]) -> list[FrameInference]:
        """Detector (when scheduled) and pose for consecutive frames. Several frames at
        once only make sense with detect_every=1 (batched frames cannot follow each
        other's keypoints); otherwise pass one at a time."""
        c = self.config
        if len(frames) > 1 and c.detect_every != 1:
            raise ValueError("several frames per call need detect_every=1")
        plans, new_shots = [], []
        for frame in frames:
            new_shots.append(self._shots(frame.image))
            if new_shots[-1]:
                # a cut, the next photo of a folder: nobody can be followed into it
                self.reset_inference()
            ahead = self._take_ahead(frame)
            if self._detector_due():
                plan, ms = self._detect(frame, self._followed if c.detect_every > 1 else None,
                                        ahead)
                plans.append((frame, plan, True, ms))
                self._since_detect = 1
            else:
                if ahead is not None:
                    self._discard(ahead)
                plans.append((frame, self._followed, False, 0.0))
                self._since_detect += 1
        self.stage = "pose"
        t0 = time.perf_counter()
        if len(plans) > 1 and hasattr(self.pose, "predict_many"):
            estimates = self.pose.predict_many(
                [(f.image, p.boxes, None, self._contexts(p.measured).get("contexts"))
                 for f, p, _, _ in plans], attention=c.attention)
        else:
            posed = [self._pose(f.image, p) for f, p, _, _ in plans]
            estimates = [est for est, _ in posed]
            plans = [(f, p, d, ms) for (f, _, d, ms), (_, p) in zip(plans, posed)]
        pose_ms = (time.perf_counter() - t0) * 1e3 / max(1, len(plans))
        self._pose_ms = _running_mean(self._pose_ms, pose_ms)
        out, keeps = [], []
        for (f, plan, detected, ms), est, new_shot in zip(plans, estimates, new_shots):
            keep = self._dedupe(est)
            keeps.append(keep)
            rows = plan if keep is None else plan[keep]
            out.append(FrameInference(f, turned_box_hulls(rows.boxes, rows.turns),
                                      est if keep is None else est[keep], detected, ms, pose_ms,
                                      rows if rows.turns.any() else None, rows.lineage,
                                      # (a detection that continues someone takes on
                                      # their count of keypoints; a new one has none)
                                      rows.counts == 0 if detected else None,
                                      rows.measured.copy(), new_shot))
        last_plan = plans[-1][1]
        # lost: given to the pose model but not followed on (too weak to follow, or
        # dropped by pose NMS as not a person), or held after a collapse; they come back
        # through the detector
        self._followed = self._follow(last_plan, estimates[-1], keeps[-1],
                                      out[-1].frame.size_hw)
        self._lost = int((self._followed.held == 0).sum()) < len(last_plan)
        self.stage = "detector"
        return out

    def _detect(self, frame: Frame, followed: FollowPlan | None, ahead: Future | None = None
                ) -> tuple[FollowPlan, float]:
        """Detector pass (`ahead`: the plain pass detect_ahead started on this frame);
        `followed` people (from the last frame) that no detection overlaps are kept with
        keep_undetected; pose NMS removes any duplicate afterwards. A
        detection of a followed person takes on what is known of them; one of a turned
        person is replaced by their turned box (an upright box cuts a turned body badly).
        The time returned is what this thread spent on it (waiting, with `ahead`)."""
        self.stage = "detector"
        t0 = time.perf_counter()
        whole = None if ahead is None else ahead.result()
        self.detector_runs_ahead += ahead is not None
        # Nobody followed into this frame (a still frame, a video's first frame, an empty
        # scene): the detector alone says who is there, so it looks harder where it can
        # (tiles). Followed people are kept by their keypoints, so other passes stay cheap.
        if not len(self._followed):
            det = self._run_detector(
                lambda image: detect_thoroughly(self.detector, image, whole), frame.image)
        else:
            det = whole if whole is not None else self._run_detector(self.detector, frame.image)
        ms = (time.perf_counter() - t0) * 1e3
        self.detector_runs += 1
        c = self.config
        plan = FollowPlan.upright(
            det.boxes[np.argsort(-det.scores)[: c.max_people]].astype(np.float32),
            measured=True)
        plan.lineage[:] = [next(_LINEAGE_SERIALS) for _ in range(len(plan))]
        if followed is None or not len(followed):
            return plan, ms
        overlap, own_box = continuation(turned_box_hulls(followed.boxes, followed.turns),
                                        plan.boxes, followed.held)
        # each followed person's own detections: those that overlap nobody better
        own = np.full(overlap.shape, -1.0)
        if len(plan):
            who, best = overlap.argmax(axis=0), overlap.max(axis=0)
            own = np.where(who[None] == np.arange(len(followed))[:, None], overlap, -1.0)
            for j in np.flatnonzero(best >= _SAME_PERSON):
                f = who[j]
                # (a fresh box of someone held is no longer held)
                plan.counts[j] = followed.counts[f]
                plan.held[j] = 0 if own_box[f, j] else followed.held[f]
                if own[f].argmax() == j:         # the detection that continues them
                    plan.lineage[j] = followed.lineage[f]
                if followed.turns[f] and not own_box[f, j]:
                    plan.boxes[j], plan.turns[j] = followed.boxes[f], followed.turns[f]
                    plan.measured[j] = False
        if c.keep_undetected:
            # not continued by any detection (one that went to a neighbour does not count)
            missed = own.max(axis=1, initial=-1.0) < _SAME_PERSON
            if missed.any():
                plan = FollowPlan.concat(plan, followed[missed])[: c.max_people]
        return plan, ms

    def _pose(self, image: np.ndarray, plan: FollowPlan) -> tuple[PoseEstimate, FollowPlan]:
        """Pose for one frame's plan; a followed pose that collapsed is tried again turned
        (then the plan that was used comes back with the new turns)."""
        if len(plan) == 0:
            return self.pose(image, NO_BOXES), plan
        if not self.follows_turns:
            return self.pose(image, plan.boxes, attention=self.config.attention,
                             **self._contexts(plan.measured)), plan
        est = self._pose_turned(image, plan)
        retried = self._retry_turned(image, plan, est) if self.config.retry_collapsed else None
        if retried is not None:
            plan = retried
        turned = self._turn_new_people(image, plan, est)
        if turned is not None:
            plan = turned
        if retried is not None or turned is not None:
            est = self._pose_turned(image, plan)
        return est, plan

    def _pose_turned(self, image: np.ndarray, plan: FollowPlan) -> PoseEstimate:
        turns = plan.turns if plan.turns.any() else None
        return self.pose(image, plan.boxes, attention=self.config.attention, rotations=turns,
                         **self._contexts(plan.measured))

    def _contexts(self, measured: np.ndarray) -> dict[str, Any]:
        """The pose call's crop contexts (preprocess.contexts_for): black outside the box
        only around the detector's boxes of this frame. Blacking out around boxes predicted
        from the last frame's keypoints, which lag a fast body, cut the Sports2D jumper's
        limbs off in his backflip: two more frames unlabelled and a third id."""
        return contexts_for(self.pose, measured)

    def _retry_turned(self, image: np.ndarray, plan: FollowPlan, est: PoseEstimate
                      ) -> FollowPlan | None:
        """People followed with a good pose whose pose collapsed on this frame (a body
        turning fast): their crop a quarter turn either way, without the flip test; the
        plan with the turns that gave clearly more keypoints, or None."""
        thr = self.config.min_keypoint_score
        now = (est.scores >= thr).sum(axis=1)
        rows = np.flatnonzero(self._collapsed_alone(plan, now, image.shape[:2]))
        if not len(rows):
            return None
        self.turn_retries += len(rows)
        probe = self.pose.without_flip() if hasattr(self.pose, "without_flip") else self.pose
        # a quarter turn either way, and upright for a turned crop; a box turned by about a
        # quarter swaps what is along and across the body
        tries = [(r, turn, swap) for r in rows
                 for turn, swap in ((plan.turns[r] + 90, True), (plan.turns[r] - 90, True),
                                    (0.0, 45 < abs(wrap_degrees(plan.turns[r])) < 135))
                 if turn != 0 or plan.turns[r] != 0]
        boxes = plan.boxes[[r for r, _, _ in tries]].copy()
        swap = np.array([q for _, _, q in tries])
        centre = boxes[:, :2] + boxes[:, 2:] / 2
        boxes[swap, 2:] = boxes[swap][:, [3, 2]]
        boxes[:, :2] = centre - boxes[:, 2:] / 2
        turns = np.array([wrap_degrees(t) for _, t, _ in tries], np.float32)
        got = probe(image, boxes, rotations=turns, **self._contexts(np.zeros(len(boxes), bool)))
        counts, means = (got.scores >= thr).sum(axis=1), got.scores.mean(axis=1)
        order = np.lexsort((means, counts))              # most keypoints, then mean
        out = dataclasses.replace(plan, boxes=plan.boxes.copy(), turns=plan.turns.copy())
        changed: set[int] = set()
        for j in order[::-1]:
            r = tries[j][0]
            if (r not in changed and means[j] >= self._TURN_MEAN
                    and counts[j] >= max(self._TURN_MIN, now[r] + self._TURN_GAIN)):
                out.boxes[r], out.turns[r] = boxes[j], turns[j]
                changed.add(r)
        return out if changed else None

    def _turn_new_people(self, image: np.ndarray, plan: FollowPlan, est: PoseEstimate
                         ) -> FollowPlan | None:
        """On a frame nobody was followed into (a still frame, a video's first frame,
        after a seek or an empty stretch): people whose upright crop shows a turned body,
        their crop turned by the body angle where that poses them better
        (orientation.turned_crops_for); the plan with those turns, or None.

        Not for someone found while others are followed: the next frame turns their crop
        anyway (_follow), and on the Sports2D flip turning the jumper's re-detection at
        once lost him for a frame more. Like following, only with detect_every > 1 (with
        1, frames may be posed several at once by predict_many, upright)."""
        c = self.config
        if c.detect_every == 1 or not len(plan) or (plan.counts > 0).any():
            return None
        new = np.flatnonzero(plan.turns == 0)
        found = turned_crops_for(self.pose, image, plan.boxes, est, new,
                                 min_score=c.min_keypoint_score, turn_start=c.turn_start,
                                 min_mean=self._TURN_MEAN, min_size=c.turn_min_size,
                                 margin=c.box_margin)
        if found is None:
            return None
        rows, boxes, turns = found
        out = dataclasses.replace(plan, boxes=plan.boxes.copy(), turns=plan.turns.copy(),
                                  measured=plan.measured.copy())
        out.boxes[rows], out.turns[rows] = boxes, turns
        # boxes from keypoints now, posed with the whole crop as turned_crops_for tried them
        out.measured[rows] = False
        return out

    def _follow(self, plan: FollowPlan, est: PoseEstimate, keep: np.ndarray | None,
                image_hw: tuple[int, int]) -> FollowPlan:
        """The next frame's plan from this frame's poses (`est`: a row per plan row; `keep`:
        the rows pose NMS kept, None for all): a box around each kept person's confident
        keypoints; people with fewer than 3 are lost. Upright people get upright boxes
        clipped to the frame. With follow_turns a person leaning beyond turn_start gets a
        turned box, and a followed pose that collapsed keeps its box for up to hold_frames
        frames (module docstring)."""
        c = self.config
        n = len(plan)
        if n == 0:
            return FollowPlan.upright(NO_BOXES)
        thr = c.min_keypoint_score
        counts = (est.scores >= thr).sum(axis=1)
        kept = np.zeros(n, bool)
        kept[np.arange(n) if keep is None else keep] = True
        boxes = np.full((n, 4), np.nan, np.float32)
        if kept.any():
            boxes[kept] = boxes_from_keypoints(est.keypoints[kept], est.scores[kept], thr,
                                               c.box_margin, image_hw)
        out = FollowPlan(boxes, np.zeros(n, np.float32), counts, np.zeros(n, np.int64),
                         plan.lineage.copy(), np.zeros(n, bool))
        if not self.follows_turns:
            return out[np.isfinite(boxes).all(axis=1)]
        h, w = image_hw
        collapsed = self._collapsed_alone(plan, counts, image_hw)
        for i in range(n):
            # (a row pose NMS dropped with 3 or more keypoints repeated another person)
            if collapsed[i] and plan.held[i] < c.hold_frames and (kept[i] or counts[i] < 3):
                out.boxes[i], out.turns[i] = plan.boxes[i], plan.turns[i]
                out.counts[i], out.held[i] = plan.counts[i], plan.held[i] + 1
                continue
            if not kept[i]:
                continue
            angle = body_angle(est.keypoints[i], est.scores[i], thr)
            if not plan.turns[i] and (est.scores[i].mean() < self._TURN_MEAN
                                      or max(boxes[i, 2:]) < c.turn_min_size):
                angle = None                     # too unsure or small a pose to turn on
            turn = self._next_turn(plan.turns[i], angle)
            if turn == 0 and plan.turns[i] == 0:
                continue                         # upright and staying so: as above
            box = turned_box(est.keypoints[i], est.scores[i], thr, turn, c.box_margin)
            if box is not None and counts[i] < est.keypoints.shape[1]:
                box = self._no_faster_shrink(box, plan.boxes[i])
            if box is not None and not (0 <= box[0] + box[2] / 2 < w
                                        and 0 <= box[1] + box[3] / 2 < h):
                box = None                       # gone out of the frame
            out.boxes[i] = np.nan if box is None else box
            out.turns[i] = turn
        return out[np.isfinite(out.boxes).all(axis=1)]

    def _collapsed_alone(self, plan: FollowPlan, counts: np.ndarray,
                         image_hw: tuple[int, int]) -> np.ndarray:
        """(N,) bool: followed people whose pose collapsed on this frame (from at least
        _COLLAPSE_FROM confident keypoints to under half) away from the frame's edge
        (where people leave) and from everyone else (a person hidden behind another comes
        back through the detector), tall enough to be seen well (turn_min_size): worth
        trying turned crops and holding their box."""
        out = (plan.counts >= self._COLLAPSE_FROM) & (counts < np.maximum(3, plan.counts // 2))
        if not out.any():
            return out
        hulls = turned_box_hulls(plan.boxes, plan.turns)
        h, w = image_hw
        x, y, bw, bh = hulls.T
        out &= (x > 2) & (y > 2) & (x + bw < w - 2) & (y + bh < h - 2)
        out &= np.maximum(bw, bh) >= self.config.turn_min_size
        if len(hulls) > 1:
            overlap = box_iou(hulls, hulls)
            np.fill_diagonal(overlap, 0.0)
            out &= overlap.max(axis=1) <= 0.3
        return out

    def _next_turn(self, turn: float, angle: float | None) -> float:
        """The crop's turn for the next frame: the body angle once it leans beyond
        turn_start (and until it is back under turn_stop); unknown angle: as it was."""
        if angle is None:
            return float(turn)
        limit = self.config.turn_stop if turn else self.config.turn_start
        return angle if abs(angle) >= limit else 0.0

    def _no_faster_shrink(self, box: np.ndarray, before: np.ndarray) -> np.ndarray:
        """A box from a partly seen body is smaller than the body: its length along the
        body keeps at least min_box_shrink of the last box's longer side (the crop's scale
        follows the longer side; the last box may have been upright or turned otherwise)."""
        length = max(float(box[3]), self.config.min_box_shrink * float(max(before[2:])))
        centre = box[:2] + box[2:] / 2
        wh = np.array([box[2], length], np.float32)
        return np.concatenate([centre - wh / 2, wh]).astype(np.float32)

    def _dedupe(self, est: PoseEstimate) -> np.ndarray | None:
        """Rows to keep: poses that are people (>= 3 confident keypoints) and do not repeat
        another; None when every row stays."""
        if len(est.keypoints) == 0:
            return None
        c = self.config
        keep = pose_nms(est.keypoints, est.scores, est.boxes, c.pose_nms_oks,
                        c.min_keypoint_score, joint_share=c.joint_share)
        if len(keep) == len(est.keypoints) and np.array_equal(keep, np.arange(len(keep))):
            return None
        return keep

    # ---- people found late, followed back -------------------------------------------
    def backfill(self, earlier: Sequence[FrameInference], later: FrameInference) -> int:
        """People the detector found first on `later` (``FrameInference.started``: someone
        walking in, or out from behind something, between two detector passes), followed
        back through `earlier`, the frames inferred since the detector's previous pass (in
        order): on each, from the last one back, they are posed in a box around their
        keypoints on the frame after, exactly as following works forwards, until their pose
        is lost (under 3 confident keypoints) or repeats someone already there (pose NMS's
        measure). Their rows are added to those frames with the same lineage, so the
        tracker gives them the id they have on `later`. Returns the person-frames added
        (less those dropped, below).

        Where the pose they repeat is of someone the step followed there but lost before
        `later` (no row of `later` has their lineage), they are that person: the follow
        drifted off them (the pedestrian clip's man walking past a lamp post, whose crop
        stayed on the post) and the detector found them again as new. They take on that
        person's lineage, on `later` and on what is followed from it, so the tracker keeps
        that person's id rather than starting one beside a failing pose of them. On each
        frame where both poses of them are then there, the stronger (mean keypoint score)
        stays; the one found on the way back goes on back while it is the stronger.

        A followed pose that is pieced from the people on a frame once the late ones are
        added (core.pose.nms.pieced: two people crossing, the follow of one took the head
        of the other) goes from that frame on, on `later` too, and is followed no more.

        For runs that can hold frames back until the next pass (the batch pipeline,
        ``run_batch``); not with attention kept (the maps of two calls do not join), nor
        with detect_every=1 (nobody is followed)."""
        c = self.config
        if (later.started is None or not later.started.any() or not earlier
                or c.attention or c.detect_every == 1):
            return 0
        thr = c.min_keypoint_score
        rows = np.flatnonzero(later.started)
        est, lineage = later.estimate[rows], later.lineage[rows]
        on_later = set(later.lineage.tolist())
        taken_over: dict[int, int] = {}     # a late person's lineage -> the lost one's
        phantoms: dict[int, int] = {}       # lineage -> the first frame it was pieced
        added, reached = 0, len(earlier)
        self.stage = "pose"
        for k in range(len(earlier) - 1, -1, -1):
            inferred = earlier[k]
            if (earlier[k + 1] if k + 1 < len(earlier) else later).new_shot:
                break                            # a cut after this frame: nobody to follow
            boxes = boxes_from_keypoints(est.keypoints, est.scores, thr, c.box_margin,
                                         inferred.frame.size_hw)
            ok = np.isfinite(boxes).all(axis=1)
            if not ok.any():
                break
            boxes, lineage = boxes[ok], lineage[ok]
            got = self.pose(inferred.frame.image, boxes,
                            **self._contexts(np.zeros(len(boxes), bool)))
            keep = pose_nms(got.keypoints, got.scores, got.boxes, c.pose_nms_oks, thr,
                            joint_share=c.joint_share)
            there = inferred.estimate
            twin = twins(got.keypoints[keep], got.scores[keep], got.boxes[keep],
                         there.keypoints, there.scores, there.boxes, c.pose_nms_oks, thr)
            goes_on = twin < 0
            taken_by = {lost: mine for mine, lost in taken_over.items()}
            for j in np.flatnonzero(~goes_on):
                lost = -1 if inferred.lineage is None else int(inferred.lineage[twin[j]])
                mine = int(lineage[keep[j]])
                # (one late person per lost one, and one lost one per late person)
                if (lost < 0 or lost in on_later or taken_over.get(mine, lost) != lost
                        or taken_by.get(lost, mine) != mine):
                    continue             # someone still followed (or taken): stop here
                taken_over[mine], taken_by[lost] = lost, mine
                goes_on[j] = (got.scores[keep[j]].mean()
                              > there.scores[twin[j]].mean())
            keep = keep[goes_on]
            if not len(keep):
                break
            est, boxes, lineage = got[keep], boxes[keep], lineage[keep]
            inferred.add_people(est, boxes, lineage)
            added += len(keep)
            reached = k
            there = inferred.estimate
            for row in np.flatnonzero(pieced(there.keypoints, there.scores, there.boxes, thr,
                                             c.joint_share)[:-len(keep)]):
                if inferred.lineage[row] >= 0:
                    phantoms[int(inferred.lineage[row])] = k
        if taken_over:
            added -= self._take_over(taken_over, earlier[reached:], later)
        for lost in taken_over.values():
            phantoms.pop(lost, None)          # (a pose of someone found late: theirs now)
        if phantoms:
            added -= self._drop_phantoms(phantoms, earlier, later)
        self.stage = "detector"
        return added

    def _drop_phantoms(self, phantoms: dict[int, int], earlier: Sequence[FrameInference],
                       later: FrameInference) -> int:
        """Followed poses that backfill found pieced from the people there (`phantoms`: their
        lineage -> the first of `earlier` where they were) go from that frame on, and are
        followed no more: had the late person been known on that frame, pose NMS would have
        dropped the pose there and nobody would have followed it on. Returns the rows
        dropped."""
        dropped = 0
        for k, inferred in enumerate([*earlier, later]):
            if inferred.lineage is None:
                continue
            gone = [row for row, serial in enumerate(inferred.lineage.tolist())
                    if serial in phantoms and phantoms[serial] <= k]
            if gone:
                inferred.drop_people(np.array(gone, np.int64))
                dropped += len(gone)
        self._followed = self._followed[~np.isin(self._followed.lineage, list(phantoms))]
        return dropped

    def _take_over(self, taken_over: dict[int, int], frames: Sequence[FrameInference],
                   later: FrameInference) -> int:
        """Late people take on the lineage of the lost people they are (`taken_over`), on
        `frames`, on `later` and on who is followed from it; where a frame then has two
        rows of one lineage, the weaker goes. Returns the rows dropped."""
        def rename(values: np.ndarray) -> None:
            for mine, lost in taken_over.items():
                values[values == mine] = lost

        rename(later.lineage)
        rename(self._followed.lineage)
        if later.turned is not None:
            rename(later.turned.lineage)
        dropped = 0
        for inferred in frames:
            rename(inferred.lineage)
            if inferred.turned is not None:
                rename(inferred.turned.lineage)
            means = inferred.estimate.scores.mean(axis=1)
            weaker: list[int] = []
            for lost in taken_over.values():
                same = np.flatnonzero(inferred.lineage == lost)
                weaker += np.delete(same, means[same].argmax()).tolist() if len(same) else []
            if weaker:
                inferred.drop_people(np.array(weaker, np.int64))
                dropped += len(weaker)
        return dropped

    # ---- second half: tracking -------------------------------------------------------
    def track(self, inferred: FrameInference,
              timings_ms: dict[str, float] | None = None) -> PoseFrame:
        """IDs and smoothing for an inferred frame -> the immutable PoseFrame."""
        t0 = time.perf_counter()
        frame = inferred.frame
        extra = {}
        est = inferred.estimate
        if getattr(self.tracker, "wants_appearance", False) and len(est.keypoints):
            # what each person's clothes look like, for the tracker's joins after a gap
            extra["appearance"] = describe(frame.image, est.keypoints, est.scores,
                                           self.config.min_keypoint_score)
        if inferred.new_shot and hasattr(self.tracker, "start_shot"):
            self.tracker.start_shot()    # (an optional capability: a caller's may lack it)
        people = tuple(self.tracker.update(est, frame.time_s, lineage=inferred.lineage,
                                           frame_hw=frame.size_hw, **extra))
        people = tuple(self._how_cropped(p, inferred) for p in people)
        track_ms = (time.perf_counter() - t0) * 1e3
        c = self.config
        return PoseFrame(
            index=frame.index, time_s=frame.time_s, size_hw=frame.size_hw, people=people,
            attention=inferred.estimate.attention if c.attention else None,
            image=frame.image if c.keep_images else None,
            timings_ms={"detect": inferred.detect_ms, "pose": inferred.pose_ms,
                        "track": track_ms, **(timings_ms or {})})

    @staticmethod
    def _how_cropped(person: PersonPose, inferred: FrameInference) -> PersonPose:
        """`person` saying how the pose model's crop of them was cut (box, turn, context),
        so that explain() can cut the very same crop again later."""
        row = person.row
        if not 0 <= row < len(inferred.boxes):
            return person
        how: dict[str, Any] = {"crop_box": inferred.boxes[row].copy()}
        if inferred.measured is not None:
            how["measured_box"] = bool(inferred.measured[row])
        t = inferred.turned
        if t is not None and row < len(t) and t.turns[row]:
            how.update(turn=float(t.turns[row]), crop_box=t.boxes[row].copy())
        return dataclasses.replace(person, **how)


class HeldFrames:
    """Inferred frames held back from tracking until the detector's next pass, which may
    find someone who was already there on them (``PoseStep.backfill``). What a batch run
    does between ``infer`` and ``track``; a live view cannot wait."""

    def __init__(self, step: PoseStep) -> None:
        self.step = step
        self.added = 0                   # person-frames backfill added
        self._held: list[Any] = []

    def push(self, item: Any, inferred: FrameInference) -> list[Any]:
        """Hold `item` (inferred as `inferred`); the items that are final now, in order."""
        out = []
        if inferred.detected and self._held:
            self.added += self.step.backfill([i for _, i in self._held], inferred)
            out = self.flush()
        self._held.append((item, inferred))
        return out

    def flush(self) -> list[Any]:
        """Every item held, in order (the end of a run, a seek)."""
        out = [item for item, _ in self._held]
        self._held = []
        return out


def run_batch(step: PoseStep, frames: Iterable[Frame]) -> Iterator[PoseFrame]:
    """The batch pipeline's results without its threads: each frame inferred, held until
    the detector's next pass (HeldFrames), then tracked, in order."""
    held = HeldFrames(step)
    for frame in frames:
        inferred = step.infer([frame])[0]
        for done in held.push(inferred, inferred):
            yield step.track(done)
    for done in held.flush():
        yield step.track(done)


def explain(pose: PoseBackend, frame: PoseFrame) -> PoseFrame:
    """A frame already tracked (its image kept) with its people's attention: the pose
    model once on their boxes, each person's ``row`` pointing at their maps. What a paused
    view needs when attention is switched on, without tracking the frame again."""
    if frame.image is None:
        raise ValueError("explain needs the frame's image (keep_images=True)")
    if not frame.people:
        return frame
    boxes = np.stack([np.asarray(p.box if p.crop_box is None else p.crop_box, np.float32)
                      for p in frame.people])
    turns = np.array([p.turn for p in frame.people], np.float32)
    # each crop cut as the step cut it: the detector's box or the whole crop (_contexts)
    how = contexts_for(pose, [p.measured_box for p in frame.people])
    if turns.any() and getattr(pose, "rotates_crops", False):
        how["rotations"] = turns
    estimate = pose(frame.image, boxes, attention=True, **how)
    if estimate.attention is None:
        return frame
    people = tuple(dataclasses.replace(p, row=i) for i, p in enumerate(frame.people))
    return dataclasses.replace(frame, people=people, attention=estimate.attention)
