"""Pose tracking and keypoint smoothing on synthetic, deterministic data.

Smoothing figures asserted below (30 fps, noise sigma 3 px per axis, scale 1, strength 1):

* sine motion (x amplitude 60 px, y 30 px, 0.5 Hz), 10 s, first second skipped:
  raw: RMS error 4.3 px, RMS frame-to-frame acceleration 10.6 px/frame^2.
  Kalman: jitter (acceleration RMS) reduced >= 2.4x, RMS error <= 0.8x raw,
  cross-correlation lag <= 1 frame.
  One-Euro: jitter reduced >= 1.6x, RMS error <= 1.0x raw, lag <= 2 frames.
* steady ramp at (150, 75) px/s, after 1 s of convergence:
  Kalman: mean error < 3 px, mean bias along the motion < 1 px (no lag: constant velocity
  is its model). One-Euro: mean error < 5 px, bias along the motion < 4.5 px (~0.9 frame).
"""
from __future__ import annotations

import numpy as np
import pytest

from core.keypoints import NUM_KEYPOINTS
from core.tracking import (KalmanKeypointSmoother, OneEuroSmoother, PoseTracker, TrackerConfig,
                           box_iou, make_smoother)

from conftest import DATA

FPS = 30.0

# a standing person, keypoints in box-normalised coordinates (x right, y down), COCO order
_TEMPLATE = np.array([
    [0.50, 0.08], [0.54, 0.06], [0.46, 0.06], [0.58, 0.08], [0.42, 0.08],
    [0.68, 0.22], [0.32, 0.22], [0.76, 0.38], [0.24, 0.38], [0.80, 0.52], [0.20, 0.52],
    [0.62, 0.54], [0.38, 0.54], [0.64, 0.75], [0.36, 0.75], [0.65, 0.95], [0.35, 0.95],
])


def person(cx: float, top: float, height: float, rng: np.random.Generator, noise: float = 1.5):
    """(box (4,), keypoints (17, 2), scores (17,)) of a synthetic person."""
    width = 0.45 * height
    box = np.array([cx - width / 2, top, width, height])
    kps = box[:2] + _TEMPLATE * box[2:] + rng.normal(0, noise, (NUM_KEYPOINTS, 2))
    scores = rng.uniform(0.6, 0.95, NUM_KEYPOINTS)
    return box, kps, scores


def frame_of(people):
    if not people:
        return np.zeros((0, 4)), np.zeros((0, NUM_KEYPOINTS, 2)), np.zeros((0, NUM_KEYPOINTS))
    boxes, kps, scores = zip(*people)
    return np.stack(boxes), np.stack(kps), np.stack(scores)


# -- tracking --------------------------------------------------------------------------------
CROSS_CFG = TrackerConfig(min_hits=3, max_age=4, reid_max_gap=20)


def crossing_scene():
    """Per frame: list of (ground-truth name, detection). A walks right, B walks left in front
    of it (crossing at frame ~37, boxes overlapping), B is occluded for frames 38..44
    (7 frames, longer than max_age so it goes through the lost pool), C enters at frame 50,
    A leaves (is no longer detected) from frame 60 on."""
    rng = np.random.default_rng(7)
    frames = []
    for f in range(90):
        dets = []
        if f < 60:
            dets.append(("A", person(100 + 8 * f, 150, 200, rng)))
        if not 38 <= f <= 44:
            dets.append(("B", person(700 - 8 * f, 165, 215, rng)))
        if f >= 50:
            dets.append(("C", person(900 - 2 * (f - 50), 420, 180, rng)))
        order = rng.permutation(len(dets))                  # detector order is arbitrary
        frames.append([dets[i] for i in order])
    return frames


def match_truth(people, dets):
    """Map each output person to the ground-truth detection with the same box."""
    out = {}
    for p in people:
        for name, (box, _, _) in dets:
            if np.allclose(p.box, box, atol=1e-3):
                out[name] = p.track_id
    return out


def test_crossing_occlusion_reid_entry_and_exit_keep_ids():
    tracker = PoseTracker(CROSS_CFG)
    frames = crossing_scene()
    seen: dict[str, set[int]] = {"A": set(), "B": set(), "C": set()}
    first_c_output = None
    crossing_iou = 0.0
    b_lost_during_gap = False
    a_gone = {}
    for f, dets in enumerate(frames):
        boxes, kps, scores = frame_of([d for _, d in dets])
        people = tracker.update((boxes, kps, scores), f / FPS)
        ids = match_truth(people, dets)
        assert len(ids) == len(people)
        for name, tid in ids.items():
            seen[name].add(tid)
        if "C" in ids and first_c_output is None:
            first_c_output = f
        names = [n for n, _ in dets]
        if "A" in names and "B" in names:
            a = dets[names.index("A")][1][0]
            b = dets[names.index("B")][1][0]
            crossing_iou = max(crossing_iou, float(box_iou(a, b)[0, 0]))
        if f == 43:
            b_lost_during_gap = seen["B"] <= set(tracker.ids("lost"))
        a_gone[f] = (seen["A"] & set(tracker.ids("confirmed")), seen["A"] & set(tracker.ids("lost")),
                     seen["A"] & {t.track_id for t in tracker.tracks})
    assert crossing_iou > 0.6                              # the boxes really overlap
    # one id per person, no switch, through the crossing and after B's occlusion
    # (A and B are confirmed on the same frame; which one gets 1 follows detection order)
    assert len(seen["A"]) == 1 and len(seen["B"]) == 1 and seen["A"] | seen["B"] == {1, 2}
    assert b_lost_during_gap                               # B was re-identified from the lost pool
    # C gets a new id, and only on its min_hits-th frame
    assert seen["C"] == {3}
    assert first_c_output == 50 + CROSS_CFG.min_hits - 1
    # A (last seen at frame 59) coasts for max_age updates, then is lost, then forgotten
    last_a = 59
    a_id = seen["A"]
    assert a_gone[last_a + CROSS_CFG.max_age][0] == a_id
    assert a_gone[last_a + CROSS_CFG.max_age + 1][0] == set()
    assert a_gone[last_a + CROSS_CFG.max_age + 1][1] == a_id
    assert a_gone[last_a + CROSS_CFG.reid_max_gap][2] == a_id
    assert a_gone[last_a + CROSS_CFG.reid_max_gap + 1][2] == set()


def test_occlusion_gap_longer_than_reid_window_gets_new_id():
    cfg = TrackerConfig(min_hits=2, max_age=2, reid_max_gap=4)
    rng = np.random.default_rng(1)
    tracker = PoseTracker(cfg)
    ids = []
    for f in range(30):
        if 10 <= f < 16:                       # 6 missing frames > reid_max_gap
            tracker.update(None, f / FPS)
            continue
        people = tracker.update(frame_of([person(300 + 3 * f, 100, 200, rng)]), f / FPS)
        ids.extend(p.track_id for p in people)
    assert set(ids) == {1, 2}                  # new id, never a reused one


def test_far_detection_does_not_steal_id():
    rng = np.random.default_rng(3)
    tracker = PoseTracker(TrackerConfig(min_hits=3, max_age=5, reid_max_gap=20))
    for f in range(10):
        people = tracker.update(frame_of([person(200 + 4 * f, 100, 200, rng)]), f / FPS)
    assert [p.track_id for p in people] == [1]
    # person 1 disappears; a detection far away appears at the same time
    outputs = []
    for f in range(10, 16):
        outputs.append(tracker.update(frame_of([person(1100, 400, 200, rng)]), f / FPS))
    assert all(p.track_id != 1 for ps in outputs for p in ps)
    assert [len(ps) for ps in outputs] == [0, 0, 1, 1, 1, 1]     # confirmed after min_hits
    assert {p.track_id for ps in outputs for p in ps} == {2}
    assert 1 in tracker.ids("confirmed") + tracker.ids("lost")   # 1 still waits for its person


def lying(cx: float, cy: float, length: float, rng: np.random.Generator):
    """(box, keypoints, scores) of the synthetic person lying on their side, head to the
    right, centred on (cx, cy): the standing template turned a quarter."""
    box = np.array([cx - length / 2, cy - 0.225 * length, length, 0.45 * length])
    t = _TEMPLATE[:, ::-1].copy()                 # x along the body, y across it
    t[:, 0] = 1.0 - t[:, 0]
    kps = box[:2] + t * box[2:] + rng.normal(0, 1.5, (NUM_KEYPOINTS, 2))
    return box, kps, rng.uniform(0.6, 0.95, NUM_KEYPOINTS)


def test_lineage_keeps_an_id_through_a_pose_change_similarity_cannot_match():
    """A person standing, then lying at the same place from one update to the next (too
    different for OKS and IoU: a new person by similarity alone). With the caller's lineage
    (the step followed the same person into that detection) the id stays; a lineage whose
    box no longer overlaps the track's, or one that would make a tentative track, does
    not count."""
    rng = np.random.default_rng(21)
    standing = [person(400, 100, 300, rng) for _ in range(3)]
    down = lying(400, 340, 300, rng)

    def ids_after(lineage_down, cfg=TrackerConfig(min_hits=1), frames=standing):
        tracker = PoseTracker(cfg)
        for f, p in enumerate(frames):
            tracker.update(frame_of([p]), f / FPS, lineage=[7])
        return [p.track_id for p in tracker.update(frame_of([down]), len(frames) / FPS,
                                                   lineage=lineage_down)]

    assert ids_after(None) == [2]                         # similarity alone: someone new
    assert ids_after([-1]) == [2] and ids_after([8]) == [2]
    assert ids_after([7]) == [1]                          # followed into it: the same person
    # the same lineage far away (the boxes do not overlap): someone new
    far = lying(1400, 340, 300, rng)
    tracker = PoseTracker(TrackerConfig(min_hits=1))
    for f, p in enumerate(standing):
        tracker.update(frame_of([p]), f / FPS, lineage=[7])
    assert [p.track_id for p in tracker.update(frame_of([far]), 0.1, lineage=[7])] == [2]
    # a weak pose (mean score under lineage_min_mean: a body half hidden behind a post)
    # keeps the id but does not become the track's state (as its last state it spoiled the
    # next frames' matches): they are matched against the last strong pose
    weak_scores = np.full(NUM_KEYPOINTS, 0.1)
    weak_scores[:6] = 0.5                                  # 6 keypoints, mean 0.24
    tracker = PoseTracker(TrackerConfig(min_hits=1))
    for f, p in enumerate(standing):
        tracker.update(frame_of([p]), f / FPS, lineage=[7])
    out = tracker.update(frame_of([(down[0], down[1], weak_scores)]), 0.1, lineage=[7])
    assert [p.track_id for p in out] == [1]
    np.testing.assert_array_equal(tracker.tracks[0].box, standing[-1][0])
    again = person(400, 100, 300, rng)
    assert [p.track_id for p in tracker.update(frame_of([again]), 0.1 + 1 / FPS)] == [1]
    # without the lineage the weak pose is someone new, as before
    tracker = PoseTracker(TrackerConfig(min_hits=1))
    for f, p in enumerate(standing):
        tracker.update(frame_of([p]), f / FPS, lineage=[7])
    out = tracker.update(frame_of([(down[0], down[1], weak_scores)]), 0.1, lineage=[8])
    assert [p.track_id for p in out] == [2]
    # a tentative track is confirmed by similarity only: two updates of min_hits=3, then
    # the change of pose restarts the count (no id after three updates)
    assert ids_after([7], TrackerConfig(min_hits=3), standing[:2]) == []


def test_lineage_finds_a_person_again_within_reach_after_missed_updates():
    """The step lost someone mid-leap, held their box and found them again landing well
    below it (no box overlap left): with their lineage, after updates the track missed,
    the detection continues it if it lies within reach of the last box (growing with the
    updates missed); straight away, or far off, or without the lineage, it is someone
    new. Straight away a nearer jump is within reach: the walker past the lamp post,
    whose last pose was of the post beside him (the step found him again as new and
    gave him back the lineage the follow had lost, ``PoseStep.backfill``)."""
    rng = np.random.default_rng(23)
    standing = [person(400, 100, 300, rng) for _ in range(3)]

    def ids_after(missed: int, landed, lineage=(7,)):
        tracker = PoseTracker(TrackerConfig(min_hits=1))
        for f, p in enumerate(standing):
            tracker.update(frame_of([p]), f / FPS, lineage=[7])
        t = len(standing)
        for t in range(len(standing), len(standing) + missed):
            tracker.update(frame_of([]), t / FPS, lineage=[])
        return [p.track_id for p in tracker.update(frame_of([landed]), (t + 1) / FPS,
                                                   lineage=list(lineage))]

    below = lying(420, 760, 300, rng)               # 460 px below the standing centre
    assert ids_after(4, below) == [1]
    assert ids_after(0, below) == [2]               # no missed update: a smaller reach
    beside = person(550, 100, 300, rng)             # no overlap, 150 px off
    assert ids_after(0, beside) == [1]
    assert ids_after(0, beside, lineage=(8,)) == [2]
    assert ids_after(4, below, lineage=(-1,)) == [2] and ids_after(4, below, (8,)) == [2]
    assert ids_after(4, lying(1700, 760, 300, rng)) == [2]       # out of reach


def test_motion_finds_a_walker_again_after_a_short_gap():
    """Stage 6: someone who missed a few updates (behind a post) and comes back 80 px off
    (no OKS or IoU left) continues their track, in batch mode (min_hits 1) and in live mode
    (min_hits 3: shown at once, where someone new would wait), when they are within reach
    of where their motion puts them and of a similar size; farther off, twice the size,
    beside someone else as near, last seen at the frame's edge or with the stage off, they
    are someone new."""
    rng = np.random.default_rng(31)

    def ids_after(back, cfg=TrackerConfig(min_hits=1), missed=3, x=400, frame_hw=None):
        tracker = PoseTracker(cfg)
        for f in range(4):
            tracker.update(frame_of([person(x, 100, 200, rng)]), f / FPS, frame_hw=frame_hw)
        for f in range(4, 4 + missed):
            tracker.update(frame_of([]), f / FPS, frame_hw=frame_hw)
        back = back if isinstance(back, list) else [back]
        out = tracker.update(frame_of(back), (4 + missed) / FPS, frame_hw=frame_hw)
        return [p.track_id for p in out if p.track_id > 0] or ["tentative"]

    assert ids_after(person(480, 100, 200, rng)) == [1]
    assert ids_after(person(480, 100, 200, rng), missed=0) == [2]   # no update missed
    assert ids_after(person(650, 100, 200, rng)) == [2]             # 1.25 box lengths off
    assert ids_after(person(480, 100, 400, rng)) == [2]             # twice the size
    assert ids_after(person(480, 100, 200, rng), TrackerConfig(min_hits=1, motion_reach=0)) == [2]
    assert ids_after(person(480, 100, 200, rng), TrackerConfig(min_hits=3)) == [1]
    assert ids_after(person(650, 100, 200, rng), TrackerConfig(min_hits=3)) == ["tentative"]
    # two people within reach: who is who is not clear, so both are someone new
    assert ids_after([person(480, 100, 200, rng), person(320, 100, 200, rng)]) == [2, 3]
    # last seen at the frame's edge (walked out): whoever comes in is someone new
    assert ids_after(person(1830, 100, 200, rng), x=1870) == [1]
    assert ids_after(person(1830, 100, 200, rng), x=1870, frame_hw=(1080, 1920)) == [2]


def test_appearance_settles_or_refuses_a_join_after_a_gap():
    """Stage 6 with the caller's appearance (clothes): of two people back within reach,
    the one dressed like the lost track continues it; where both are alike, or one's
    clothes are unseen, the ambiguity rule decides, as before (a rival already matched
    by pose to someone else's track is ruled out by unseen clothes). Alone, a walker continues
    the track whatever their clothes (a post in front of a torso changes its colours)."""
    from core.tracking.appearance import BINS
    rng = np.random.default_rng(32)

    def clothes(bin_: int | None) -> np.ndarray:
        d = np.full((2, BINS), np.nan, np.float32)
        if bin_ is not None:
            d[:] = 0.0
            d[:, bin_] = 0.9
            d[:, (bin_ + 1) % BINS] = 0.1
        return d

    def ids_after(back, dressed):
        tracker = PoseTracker(TrackerConfig(min_hits=1))
        assert tracker.wants_appearance
        for f in range(4):
            tracker.update(frame_of([person(400, 100, 200, rng)]), f / FPS,
                           appearance=np.stack([clothes(5)]))
        for f in range(4, 7):
            tracker.update(frame_of([]), f / FPS, appearance=np.zeros((0, 2, BINS)))
        out = tracker.update(frame_of(back), 7 / FPS,
                             appearance=np.stack([clothes(b) for b in dressed]))
        return [p.track_id for p in sorted(out, key=lambda p: -p.box[0])]   # right first

    two = [person(480, 100, 200, rng), person(320, 100, 200, rng)]
    assert ids_after(two, [5, 30]) == [1, 2]         # the like one continues
    assert ids_after(two, [30, 5]) == [2, 1]
    assert ids_after(two, [5, 5]) == [2, 3]          # both alike: unclear
    assert ids_after(two, [5, None]) == [2, 3]       # one unseen: unclear
    assert ids_after([person(480, 100, 200, rng)], [30]) == [1]
    assert ids_after([person(480, 100, 200, rng)], [None]) == [1]

    def with_a_walker_beside(walker_dressed):
        """A walker at x=560 stays matched by pose throughout, within the lost track's
        reach: a rival, unless their clothes are unseen (taken by someone else's track)."""
        tracker = PoseTracker(TrackerConfig(min_hits=1))
        for f in range(7):
            people = [person(560, 100, 200, rng)] + ([person(400, 100, 200, rng)] if f < 4 else [])
            dressed = [walker_dressed] + ([5] if f < 4 else [])
            tracker.update(frame_of(people), f / FPS,
                           appearance=np.stack([clothes(b) for b in dressed]))
        out = tracker.update(frame_of([person(560, 100, 200, rng), person(480, 100, 200, rng)]),
                             7 / FPS, appearance=np.stack([clothes(walker_dressed), clothes(5)]))
        return [p.track_id for p in sorted(out, key=lambda p: -p.box[0])]

    assert with_a_walker_beside(30) == [1, 2]         # clearly unlike: the join is made
    assert with_a_walker_beside(None) == [1, 2]       # unseen, but theirs: made too
    assert with_a_walker_beside(5) == [1, 3]          # alike: unclear, someone new
    assert PoseTracker(TrackerConfig(min_hits=3)).wants_appearance           # live mode too
    assert not PoseTracker(TrackerConfig(min_hits=1, motion_reach=0)).wants_appearance
    assert not PoseTracker(TrackerConfig(min_hits=1, appearance=False)).wants_appearance


def test_lineage_never_overrides_a_similarity_match():
    """Two people walking apart with their lineages swapped on the last update: each keeps
    the id similarity gives them."""
    rng = np.random.default_rng(22)
    tracker = PoseTracker(TrackerConfig(min_hits=1))
    for f in range(4):
        out = tracker.update(frame_of([person(300 - 5 * f, 100, 250, rng),
                                       person(700 + 5 * f, 100, 250, rng)]), f / FPS,
                             lineage=[0, 1])
    assert [p.track_id for p in out] == [1, 2]
    out = tracker.update(frame_of([person(280, 100, 250, rng), person(720, 100, 250, rng)]),
                         4 / FPS, lineage=[1, 0])
    assert {p.track_id: round(float(p.box[0])) < 500 for p in out} == {1: True, 2: False}


def test_low_score_keypoints_are_nan_and_person_fields():
    rng = np.random.default_rng(5)
    tracker = PoseTracker(TrackerConfig(min_hits=1, kp_threshold=0.3))
    box, kps, scores = person(300, 100, 200, rng)
    scores[[3, 9]] = [0.1, 0.29]
    kps[4] = np.nan                                   # NaN coordinates count as missing too
    people = tracker.update(frame_of([(box, kps, scores)]), 0.0)
    assert len(people) == 1
    p = people[0]
    assert p.track_id == 1 and p.keypoints.shape == (17, 2) and p.keypoint_scores.shape == (17,)
    missing = np.isnan(p.keypoints).all(1)
    assert np.flatnonzero(missing).tolist() == [3, 4, 9]
    assert np.isnan(p.keypoint_scores[[3, 4, 9]]).all()
    assert np.isfinite(p.keypoints[~missing]).all()
    np.testing.assert_allclose(p.box, box, atol=1e-4)
    good = np.setdiff1d(np.arange(17), [3, 4, 9])
    assert p.score == pytest.approx(float(np.mean(scores[good])), rel=1e-5)
    # next frame: keypoint 3 is back, 5 drops out; the output follows this frame's scores
    box2, kps2, scores2 = person(303, 100, 200, rng)
    scores2[5] = 0.05
    p2 = tracker.update(frame_of([(box2, kps2, scores2)]), 1 / FPS)[0]
    assert np.flatnonzero(np.isnan(p2.keypoints).all(1)).tolist() == [5]


def test_accepts_pose_estimate_like_objects_and_reset():
    from types import SimpleNamespace
    rng = np.random.default_rng(9)
    tracker = PoseTracker(TrackerConfig(min_hits=1))
    b, k, s = frame_of([person(300, 100, 200, rng)])
    assert [p.track_id for p in tracker.update(SimpleNamespace(boxes=b, keypoints=k, scores=s), 0.0)] == [1]
    assert [p.track_id for p in tracker.update({"boxes": b, "keypoints": k, "scores": s}, 0.04)] == [1]
    assert tracker.update(None, 0.08) == []
    # time going backwards (a seek) starts a new sequence but never reuses an id
    assert [p.track_id for p in tracker.update((b, k, s), 0.0)] == [2]
    # so does a frame of another size (a folder of photos): the same pose is someone new
    assert [p.track_id for p in tracker.update((b, k, s), 0.04, frame_hw=(480, 640))] == [2]
    assert [p.track_id for p in tracker.update((b, k, s), 0.08, frame_hw=(480, 640))] == [2]
    assert [p.track_id for p in tracker.update((b, k, s), 0.12, frame_hw=(640, 480))] == [3]
    assert [p.track_id for p in tracker.update((b, k, s), 0.16)] == [3]   # (no size: same)
    tracker.start_shot()                               # a cut: the same pose, someone new
    assert [p.track_id for p in tracker.update((b, k, s), 0.20)] == [4]
    tracker.reset()                                    # reset(): a new video, ids from 1
    assert tracker.tracks == ()
    assert [p.track_id for p in tracker.update((b, k, s), 0.0)] == [1]
    hash(tracker.config)                               # the frozen config stays hashable


def test_tracker_strength_zero_returns_measurements():
    rng = np.random.default_rng(11)
    for kind in ("kalman", "one-euro", "none"):
        tracker = PoseTracker(TrackerConfig(min_hits=1, smoothing=kind, strength=0.0))
        for f in range(5):
            box, kps, scores = person(300 + 5 * f, 100, 200, rng, noise=3.0)
            p = tracker.update(frame_of([(box, kps, scores)]), f / FPS)[0]
            np.testing.assert_allclose(p.keypoints, kps, atol=1e-3)


# -- smoothing -------------------------------------------------------------------------------
N = 300
T = np.arange(N) / FPS
SIGMA = 3.0


def _run(smoother, data, scores=None):
    return np.array([smoother.update(data[i][None], None if scores is None else scores[i:i + 1],
                                     T[i])[0] for i in range(len(data))])


def _accel_rms(x):
    return float(np.sqrt(np.mean(np.sum(np.diff(x, 2, axis=0) ** 2, axis=1))))


def _rms(x, y):
    return float(np.sqrt(np.mean(np.sum((x - y) ** 2, axis=1))))


def _xcorr_lag(clean, out, max_lag=15):
    """Frames by which out trails clean (argmax of the cross-correlation of the x signal)."""
    a = clean[:, 0] - clean[:, 0].mean()
    b = out[:, 0] - out[:, 0].mean()
    return int(np.argmax([np.dot(a[:len(a) - lag], b[lag:]) for lag in range(max_lag)]))


@pytest.fixture(scope="module")
def sine():
    rng = np.random.default_rng(0)
    clean = np.stack([300 + 60 * np.sin(np.pi * T), 200 + 30 * np.cos(np.pi * T)], 1)
    return clean, clean + rng.normal(0, SIGMA, clean.shape)


@pytest.fixture(scope="module")
def ramp():
    rng = np.random.default_rng(1)
    clean = np.stack([100 + 150 * T, 100 + 75 * T], 1)
    return clean, clean + rng.normal(0, SIGMA, clean.shape)


SKIP = slice(30, None)          # the first second: convergence


@pytest.mark.parametrize("kind,jitter_factor,rms_factor,max_lag", [
    ("kalman", 2.4, 0.8, 1),
    ("one-euro", 1.6, 1.0, 2),
])
def test_sine_jitter_reduced_by_factor_with_bounded_lag(sine, kind, jitter_factor, rms_factor,
                                                        max_lag):
    """Kalman: jitter /2.4, RMS error <= 0.8x raw, lag <= 1 frame.
    One-Euro: jitter /1.6, RMS error <= raw, lag <= 2 frames."""
    clean, noisy = sine
    out = _run(make_smoother(kind, 1, 1.0), noisy)
    raw_jitter, jitter = _accel_rms(noisy[SKIP]), _accel_rms(out[SKIP])
    assert jitter * jitter_factor <= raw_jitter, (jitter, raw_jitter)
    assert _rms(out[SKIP], clean[SKIP]) <= rms_factor * _rms(noisy[SKIP], clean[SKIP])
    assert _xcorr_lag(clean[SKIP], out[SKIP]) <= max_lag


@pytest.mark.parametrize("kind,max_err,max_bias", [("kalman", 3.0, 1.0), ("one-euro", 5.0, 4.5)])
def test_ramp_error_and_lag_after_convergence(ramp, kind, max_err, max_bias):
    """Steady ramp at (150, 75) px/s: Kalman mean error < 3 px and bias along the motion
    < 1 px; One-Euro mean error < 5 px and bias < 4.5 px (under one frame of motion)."""
    clean, noisy = ramp
    out = _run(make_smoother(kind, 1, 1.0), noisy)
    err = out[SKIP] - clean[SKIP]
    direction = np.array([150.0, 75.0]) / np.hypot(150, 75)
    assert np.linalg.norm(err, axis=1).mean() < max_err
    assert -(err @ direction).mean() < max_bias        # positive = trailing behind


@pytest.mark.parametrize("kind", ["kalman", "one-euro", "none"])
def test_strength_zero_is_identity(sine, kind):
    _, noisy = sine
    data = noisy.copy()
    data[[10, 11, 50]] = np.nan
    out = _run(make_smoother(kind, 1, 0.0), data)
    np.testing.assert_array_equal(out, data)


def test_larger_strength_is_smoother(sine):
    _, noisy = sine
    for kind in ("kalman", "one-euro"):
        j = [_accel_rms(_run(make_smoother(kind, 1, s), noisy)[SKIP]) for s in (0.5, 1.0, 2.0)]
        assert j[0] > j[1] > j[2], (kind, j)


@pytest.mark.parametrize("kind", ["kalman", "one-euro"])
def test_missing_keypoint_is_nan_and_long_gap_restarts(kind):
    s = make_smoother(kind, 1, 1.0, min_score=0.3, reset_after_s=0.5)
    pts = lambda x: np.array([[x, 50.0]])
    for i in range(20):
        s.update(pts(100 + 5 * i), np.array([0.9]), i / FPS)
    # low score and NaN: no update, NaN out
    assert np.isnan(s.update(pts(500), np.array([0.1]), 20 / FPS)).all()
    assert np.isnan(s.update(np.full((1, 2), np.nan), np.array([0.9]), 21 / FPS)).all()
    # short gap: the filter continues (it is not snapped to the new measurement)
    short = s.update(pts(100 + 5 * 22 + 20), np.array([0.9]), 22 / FPS)
    assert abs(short[0, 0] - (100 + 5 * 22 + 20)) > 1.0
    # gap longer than reset_after_s: restart at the measurement, no drag from stale state
    back = s.update(pts(600), np.array([0.9]), 22 / FPS + 0.6)
    np.testing.assert_allclose(back, pts(600))


def test_weak_keypoint_moves_less_than_strong_under_same_jump():
    """Score-dependent R = r0 / score^2. Same history (score 1), then the same 20 px jump
    measured with score 1 vs 0.4: the weak one moves less than half as far (measured
    10.8 vs 3.2 px). Kept weak all along (score 0.4 throughout), it still moves less
    (measured 7.8 vs 10.8 px)."""
    jump = np.array([[120.0, 100.0], [120.0, 100.0]])
    still = np.array([[100.0, 100.0], [100.0, 100.0]])
    for history in ([1.0, 1.0], [1.0, 0.4]):
        s = KalmanKeypointSmoother(2, strength=1.0, min_score=0.3)
        for i in range(30):
            s.update(still, np.array(history), i / FPS)
        out = s.update(jump, np.array([1.0, 0.4]), 30 / FPS)
        strong, weak = out[0, 0] - 100, out[1, 0] - 100
        bound = 0.5 if history[1] == 1.0 else 0.85
        assert 0 < weak < bound * strong, (history, weak, strong)
        assert out[0, 1] == pytest.approx(100.0) and out[1, 1] == pytest.approx(100.0)


def test_numpy_kalman_equals_filterpy_reference():
    rng = np.random.default_rng(4)
    k = NUM_KEYPOINTS
    a = KalmanKeypointSmoother(k, 1.3, min_score=0.3, backend="numpy")
    b = KalmanKeypointSmoother(k, 1.3, min_score=0.3, backend="filterpy")
    t = 0.0
    for i in range(60):
        t += rng.uniform(0.02, 0.05)                      # irregular timestamps
        pts = 200 + rng.normal(0, 20, (k, 2)) + 3 * i
        sc = rng.uniform(0.0, 1.0, k)                     # about 30 % missing
        scale = rng.uniform(0.5, 2.0)
        np.testing.assert_allclose(a.update(pts, sc, t, scale), b.update(pts, sc, t, scale),
                                   rtol=1e-9, atol=1e-7)


def test_one_euro_follows_casiez_reference_step():
    """One hand-computed step of the 1-Euro filter (per Casiez et al.)."""
    f = OneEuroSmoother(1, strength=1.0, min_cutoff=1.0, beta=0.1, d_cutoff=1.0)
    f.update(np.array([[0.0, 0.0]]), None, 0.0)
    dt = 0.1
    out = f.update(np.array([[10.0, 0.0]]), None, dt)
    alpha = lambda fc: 1.0 / (1.0 + 1.0 / (2 * np.pi * fc * dt))
    dx_hat = alpha(1.0) * 100.0
    expected = alpha(1.0 + 0.1 * dx_hat) * 10.0
    np.testing.assert_allclose(out[0], [expected, 0.0], rtol=1e-12)


def test_appearance_describes_clothes_on_a_real_photo():
    """core.tracking.appearance on two riders in the same uniform (a COCO photo with its
    human keypoints): alike each other, and each like themselves in the mirrored photo;
    the same photo with one rider's shirt recoloured (hue turned by 90 degrees, the
    texture kept) makes that rider unlike who they were."""
    import cv2
    from core.tracking.appearance import describe, similarity
    folder = DATA / "eval" / "coco8-pose"
    image = cv2.imread(str(folder / "images" / "train" / "000000000049.jpg"))
    h, w = image.shape[:2]
    rows = np.loadtxt(folder / "labels" / "train" / "000000000049.txt", ndmin=2)
    labels = rows[:, 5:].reshape(-1, 17, 3)
    kps, seen = labels[..., :2] * [w, h], (labels[..., 2] > 0).astype(float)
    riders = describe(image, kps, seen)
    assert np.isfinite(riders[:, 1]).all()                     # both riders' thighs seen
    assert similarity(riders[:1], riders[1:])[0, 0] > 0.9        # the same uniform
    mirrored = kps.copy()
    mirrored[..., 0] = w - 1 - mirrored[..., 0]
    swap = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
    flipped = describe(image[:, ::-1], mirrored[:, swap], seen[:, swap])
    assert np.diag(similarity(riders, flipped)).min() > 0.97
    rider = int(np.flatnonzero(np.isfinite(riders[:, 0]).all(axis=1))[0])   # torso seen
    body = kps[rider, [5, 6, 12, 11]].astype(np.int32)
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [body], 255)
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    hsv[..., 0] = np.where(mask > 0, (hsv[..., 0].astype(int) + 45) % 180, hsv[..., 0])
    recoloured = describe(cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR), kps, seen)
    torso = similarity(riders[rider:rider + 1, :1], recoloured[rider:rider + 1, :1])[0, 0]
    assert torso < 0.5, torso
