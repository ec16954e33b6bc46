"""core.analysis and the analysis outputs of `main.py annotate` (issue #16).

Angles are checked on poses built with trigonometry, the filter against scipy, TRC files
with a reader written here, and the wide CSV against the long CSV of the same run."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

import main
from core.analysis import AnalysisConfig, analyse
from core.analysis.angles import ANGLE_NAMES, compute_angles, parse_angle_names
from core.analysis.filtering import (PostProcessConfig, butterworth_lowpass, fill_gaps,
                                     hampel_mask)
from core.analysis.selection import PersonSelection
from core.analysis.tracks import tracks_from_frames
from core.analysis.units import ScaleSpec, resolve_scale
from core.errors import InputError
from core.keypoints import COCO_KEYPOINT_NAMES
from core.types import PersonPose, PoseFrame

from conftest import DATA

CLIP = DATA / "clip_person.mp4"       # 30 frames at 60 fps, 270x480
K = {n: i for i, n in enumerate(COCO_KEYPOINT_NAMES)}


# ---------------------------------------------------------------------------- poses
def _unit(deg: float) -> np.ndarray:
    return np.array([math.cos(math.radians(deg)), math.sin(math.radians(deg))])


def make_pose(facing: int, lean: float, hip: float, knee: float, shoulder: float,
              elbow: float, lengths=(100.0, 45.0, 45.0, 30.0, 28.0)) -> np.ndarray:
    """(17, 2) image keypoints of a side view with the given sagittal angles (degrees).

    Built in a y-up frame for a person facing +x: the trunk leans `lean` forward from the
    vertical; each flexion turns the distal segment towards the front (anticlockwise) from
    the proximal one's straight continuation, except the knee, which folds backwards.
    Facing left mirrors x. Both sides get the same angles."""
    trunk_len, thigh, shank, upper, fore = lengths
    trunk_dir = 90.0 - lean
    down = trunk_dir - 180.0
    hip_p = np.zeros(2)
    sh_p = hip_p + trunk_len * _unit(trunk_dir)
    thigh_dir = down + hip
    knee_p = hip_p + thigh * _unit(thigh_dir)
    ankle_p = knee_p + shank * _unit(thigh_dir - knee)
    arm_dir = down + shoulder
    elbow_p = sh_p + upper * _unit(arm_dir)
    wrist_p = elbow_p + fore * _unit(arm_dir + elbow)
    head = sh_p + 25 * _unit(trunk_dir)
    pts = {"nose": head + [12, 0], "left_ear": head, "right_ear": head + [0, 1],
           "left_eye": head + [8, 3], "right_eye": head + [8, 4]}
    for s in ("left", "right"):
        pts.update({f"{s}_hip": hip_p, f"{s}_knee": knee_p, f"{s}_ankle": ankle_p,
                    f"{s}_shoulder": sh_p, f"{s}_elbow": elbow_p, f"{s}_wrist": wrist_p})
    kp = np.array([pts[n] for n in COCO_KEYPOINT_NAMES], float)
    kp[:, 0] *= facing
    return np.stack([400 + kp[:, 0], 400 - kp[:, 1]], axis=1)    # image pixels, y down


def _wrap(a: float) -> float:
    return (a + 180.0) % 360.0 - 180.0 if (a + 180.0) % 360.0 else 180.0


@pytest.mark.parametrize("facing", [1, -1])
@pytest.mark.parametrize("lean,hip,knee,shoulder,elbow", [
    (0, 0, 0, 0, 0),            # standing upright
    (0, 90, 90, 90, 90),        # sitting, arm forward, elbow bent
    (20, 110, 130, -30, 15),    # deep squat leaning forward, arm behind
    (-10, -20, -5, 170, 5),     # hip extension, slight knee hyperextension, arm overhead
])
def test_joint_and_segment_angles_match_trigonometry(facing, lean, hip, knee, shoulder, elbow):
    kp = make_pose(facing, lean, hip, knee, shoulder, elbow)[None]
    got = {k: float(v[0]) for k, v in compute_angles(kp, ANGLE_NAMES).items()}
    for s in ("left", "right"):
        assert got[f"{s}_hip"] == pytest.approx(hip, abs=1e-6)
        assert got[f"{s}_knee"] == pytest.approx(knee, abs=1e-6)
        assert got[f"{s}_shoulder"] == pytest.approx(shoulder, abs=1e-6)
        assert got[f"{s}_elbow"] == pytest.approx(elbow, abs=1e-6)
    assert got["trunk"] == pytest.approx(lean, abs=1e-6)
    # segments: proximal -> distal, anticlockwise from the horizontal, y up; a person
    # facing left is the mirror image: angle a becomes 180 - a
    trunk_dir = 90.0 - lean
    thigh = trunk_dir - 180 + hip
    expected = {"trunk_segment": trunk_dir, "left_thigh": thigh, "left_shank": thigh - knee,
                "left_upper_arm": trunk_dir - 180 + shoulder,
                "left_forearm": trunk_dir - 180 + shoulder + elbow}
    for name, a in expected.items():
        want = _wrap(a if facing == 1 else 180.0 - a)
        assert math.isclose(_wrap(got[name] - want), 0.0, abs_tol=1e-6), name
        assert -180 < got[name] <= 180


def test_standing_segments_and_missing_points():
    kp = make_pose(1, 0, 0, 0, 0, 0)[None]
    seg = compute_angles(kp, ("left_thigh", "left_shank", "trunk_segment", "left_forearm"))
    assert [round(float(v[0]), 6) for v in seg.values()] == [-90, -90, 90, -90]
    kp[0, K["left_ankle"]] = np.nan
    a = compute_angles(kp, ("left_knee", "right_knee", "left_shank"))
    assert np.isnan(a["left_knee"][0]) and np.isnan(a["left_shank"][0])
    assert a["right_knee"][0] == pytest.approx(0, abs=1e-9)


def test_floor_angle_turns_segments_only():
    kp = make_pose(1, 0, 90, 90, 0, 0)[None]
    tilted = compute_angles(kp, ("left_thigh", "left_knee"), floor_angle_deg=10.0)
    assert tilted["left_thigh"][0] == pytest.approx(-10.0)      # the thigh was level
    assert tilted["left_knee"][0] == pytest.approx(90.0)


def test_unknown_angle_name_is_one_clear_error():
    assert parse_angle_names("joints,left_thigh")[-1] == "left_thigh"
    with pytest.raises(InputError, match="unknown angle 'left_nee'"):
        parse_angle_names("left_knee,left_nee")


# ---------------------------------------------------------------------------- filtering
def test_angle_lists_on_a_crowded_frame_never_cover_each_other():
    """Three walkers close together, drawn in turn: the first gets its list to the right,
    the second (on its left) to its own left, since its right would cover the first's
    list, the third (between them) none, since both sides would; alone, a walker always
    gets one. Whatever is drawn is drawn where nothing else was."""
    from core.visualization import draw_angles
    values = {"left_knee": 12.0, "right_knee": 8.0, "left_hip": float("nan"), "trunk": 3.0}
    image = np.full((576, 768, 3), 200, np.uint8)
    taken: list = []
    boxes = [(300, 150, 30, 80), (250, 150, 30, 80), (290, 150, 30, 80)]
    drawn = [draw_angles(image, np.array(b, float), values, taken=taken) for b in boxes]
    assert drawn == [True, True, False] and len(taken) == 2
    (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = taken
    assert ax1 - ax0 > 50                                # (wide enough for the layout above)
    assert ax0 >= 330 and bx1 <= 250                     # first right of its box, second left
    assert bx1 <= ax0 or ax1 <= bx0 or by1 <= ay0 or ay1 <= by0
    assert (image[ay0:ay1, ax0:ax1] < 200).any() and (image[by0:by1, bx0:bx1] < 200).any()
    alone = np.full((576, 768, 3), 200, np.uint8)
    assert draw_angles(alone, np.array(boxes[2], float), values, taken=[])
    assert draw_angles(alone, np.array(boxes[2], float), values)      # no bookkeeping
    assert not draw_angles(alone, np.array([np.nan] * 4), values)


def test_a_long_angle_list_of_someone_low_in_the_frame_is_moved_up_into_it():
    """Every angle (18 lines) beside a walker whose box reaches the frame's bottom: the list
    ends inside the frame (it was cut there), and starts at the box's top where it fits."""
    from core.analysis.angles import ANGLE_NAMES
    from core.visualization import draw_angles
    values = {name: 10.0 * i for i, name in enumerate(ANGLE_NAMES)}
    assert len(values) == 18
    image = np.zeros((994, 1768, 3), np.uint8)
    taken: list = []
    assert draw_angles(image, np.array([900, 600, 150, 390], float), values, taken=taken)
    x0, y0, x1, y1 = taken[0]
    assert y1 <= 993 and y1 - y0 > 18 * 20             # whole, and all 18 lines tall
    text = (image[:, x0:x1] == 255).all(axis=2)          # the white text
    rows = np.flatnonzero(text.any(axis=1))
    assert y0 <= rows.min() and rows.max() <= y1 <= 993  # glyphs on the backing, in frame
    assert 1 + (np.diff(rows) > 1).sum() == 18           # 18 lines of text, none cut off
    high: list = []                                      # room below: at the box's top
    draw_angles(np.zeros_like(image), np.array([900, 100, 150, 390], float), values, taken=high)
    assert high[0][1] == 100 + 2


def test_an_angle_list_taller_than_a_small_frame_goes_in_columns():
    """All 18 angles on a 270x480 frame (16 px lines: 17 fit): two columns of 9, inside
    the frame, every line drawn (before, the last lines fell off the frame)."""
    from core.analysis.angles import ANGLE_NAMES
    from core.visualization import draw_angles
    values = {name: 10.0 * i for i, name in enumerate(ANGLE_NAMES)}
    image = np.zeros((270, 480, 3), np.uint8)
    taken: list = []
    assert draw_angles(image, np.array([100, 60, 60, 200], float), values, taken=taken)
    x0, y0, x1, y1 = taken[0]
    assert 0 <= y0 and y1 <= 269 and x1 <= 480
    text = (image > 160).all(axis=2)                     # the white text (anti-aliased)
    halves = [text[:, x0:(x0 + x1) // 2], text[:, (x0 + x1) // 2:x1]]
    lines = [1 + (np.diff(np.flatnonzero(h.any(axis=1))) > 1).sum() for h in halves]
    assert lines == [9, 9]


def test_butterworth_equals_scipy_filtfilt_and_keeps_the_slow_signal():
    from scipy.signal import butter, sosfiltfilt
    fs = 100.0
    t = np.arange(400) / fs
    slow = np.sin(2 * np.pi * 1.0 * t)
    x = slow + 0.5 * np.sin(2 * np.pi * 20.0 * t)
    got = butterworth_lowpass(x, t, cutoff_hz=5.0, order=4)
    ref = sosfiltfilt(butter(4, 5.0, fs=fs, output="sos"), x)
    np.testing.assert_allclose(got, ref, atol=1e-12)
    assert np.abs(got - slow)[50:-50].max() < 0.01        # 20 Hz gone, no lag at 1 Hz


def test_butterworth_variable_frame_rate_and_nans():
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.uniform(0.8, 1.2, 300)) / 60.0      # jittered ~60 fps
    slow = np.sin(2 * np.pi * 0.8 * t)
    x = slow + 0.3 * np.sin(2 * np.pi * 12.0 * t)
    x[100:110] = np.nan                                   # two runs, each filtered alone
    got = butterworth_lowpass(x, t, cutoff_hz=4.0)
    assert np.isnan(got[100:110]).all()
    ok = np.isfinite(got)
    inner = ok & (np.arange(300) > 20) & (np.arange(300) < 280)
    inner[90:120] = False
    assert np.abs(got - slow)[inner].max() < 0.05
    with pytest.raises(ValueError, match="Nyquist"):
        butterworth_lowpass(x, t, cutoff_hz=40.0)


def test_fill_gaps_up_to_the_limit_never_beyond_nor_at_the_ends():
    t = np.arange(20) / 10.0
    y = 3.0 * t + 1.0
    y[[0, 1]] = np.nan                 # leading: nothing before it
    y[5:8] = np.nan                    # 3 frames: filled
    y[11:15] = np.nan                  # 4 frames: too long
    y[19] = np.nan                     # trailing
    out = fill_gaps(y, t, max_gap=3)
    np.testing.assert_allclose(out[5:8], 3.0 * t[5:8] + 1.0)
    assert np.isnan(out[11:15]).all() and np.isnan(out[[0, 1, 19]]).all()
    cubic = fill_gaps(np.where(np.isin(np.arange(20), [5, 6]), np.nan, t ** 3), t, 2, "cubic")
    np.testing.assert_allclose(cubic[5:7], t[5:7] ** 3, rtol=1e-6)
    assert np.array_equal(fill_gaps(y, t, 0), y, equal_nan=True)


def test_hampel_rejects_a_spike_only():
    y = 10 * np.sin(np.arange(50) / 5.0) + np.random.default_rng(1).normal(0, 0.3, 50)
    y[20] += 30.0                    # a keypoint jumping to the other leg for a frame
    bad = hampel_mask(y, window=7, sigmas=3.0)
    assert np.flatnonzero(bad).tolist() == [20]


def test_bad_postprocess_options_are_clear_errors():
    with pytest.raises(InputError, match="--cutoff"):
        PostProcessConfig(filter="butterworth", cutoff_hz=0)
    with pytest.raises(InputError, match="Nyquist"):
        PostProcessConfig(filter="butterworth", cutoff_hz=30).check_sampling_rate(60.0, "a.mp4")
    with pytest.raises(InputError, match="--fill-gaps"):
        PostProcessConfig(fill_gaps=-1)


# ---------------------------------------------------------------------------- tracks
def _frames(n=12, gap=(4, 6)):
    """Two people; track 1 vanishes for frames gap[0]..gap[1]-1 (a track break)."""
    frames = []
    for i in range(n):
        people = []
        for tid, dx, size in ((1, 0.0, 100.0), (2, 300.0, 60.0)):
            if tid == 1 and gap[0] <= i < gap[1]:
                continue
            kp = make_pose(1, 0, 10 + i, 20, 0, 0) + [dx + 2.0 * i, 0]
            people.append(PersonPose(tid, np.array([dx, 0, size, 2 * size], np.float32), 0.9,
                                     kp.astype(np.float32), np.full(17, 0.9, np.float32)))
        frames.append(PoseFrame(i, i / 30.0, (800, 800), tuple(people)))
    return frames


def _two_walkers(frames_seen: dict[int, int], scale: dict[int, float], n: int = 20):
    """Track id -> frames it is seen (from the first), and its size (1 = make_pose's)."""
    out = []
    for i in range(n):
        people = []
        for tid, seen in frames_seen.items():
            if i < seen:
                kp = make_pose(1, 0, 10, 20, 0, 0) * scale[tid] + [200.0 * tid, 400.0]
                people.append(PersonPose(tid, np.array([200 * tid, 100, 80, 300], np.float32),
                                         0.9, kp.astype(np.float32),
                                         np.full(17, 0.9, np.float32)))
        out.append(PoseFrame(i, i / 30.0, (800, 1200), tuple(people)))
    return out


def test_person_height_measures_the_subject_not_someone_behind_them():
    """--person-height: between people tracked about as long, the tallest in the image
    sets the scale (the subject in front, not a passer-by behind them all clip long); a
    person tracked clearly longer still wins."""
    spec = ScaleSpec(person_height_m=1.7)
    _, tracks = tracks_from_frames(_two_walkers({1: 20, 2: 20}, {1: 0.4, 2: 1.0}))
    scale = resolve_scale(spec, tracks, "x")
    assert scale.track_id == 2
    _, tracks = tracks_from_frames(_two_walkers({1: 20, 2: 19}, {1: 1.0, 2: 0.4}))
    assert resolve_scale(spec, tracks, "x").track_id == 1
    _, tracks = tracks_from_frames(_two_walkers({1: 20, 2: 19}, {1: 0.4, 2: 1.0}))
    assert resolve_scale(spec, tracks, "x").track_id == 2    # 19 of 20 frames: about as long
    _, tracks = tracks_from_frames(_two_walkers({1: 20, 2: 12}, {1: 0.4, 2: 1.0}))
    assert resolve_scale(spec, tracks, "x").track_id == 1    # 12 of 20: the longest wins
    assert scale.person_height_px == pytest.approx(
        resolve_scale(spec, tracks, "x").person_height_px / 0.4, rel=1e-3)


def test_selection_and_gap_filling_on_tracks():
    frames = _frames()
    _, tracks = tracks_from_frames(frames)
    assert [t.track_id for t in tracks] == [1, 2]
    assert PersonSelection.parse("largest:1").apply(tracks)[0].track_id == 1
    assert PersonSelection.parse("longest").apply(tracks)[0].track_id == 2
    assert [t.track_id for t in PersonSelection.parse("2,7").apply(tracks)] == [2]
    with pytest.raises(InputError, match="--people"):
        PersonSelection.parse("biggest:x")
    short = analyse(frames, AnalysisConfig(postprocess=PostProcessConfig(fill_gaps=1)))
    long = analyse(frames, AnalysisConfig(postprocess=PostProcessConfig(fill_gaps=2)))
    assert sum(1 for f in short.frames() for p in f.people if p.track_id == 1) == 10
    filled = [f for f in long.frames() if any(p.track_id == 1 for p in f.people)]
    assert len(filled) == 12                          # the 2-frame break is bridged
    p = [q for q in filled[4].people if q.track_id == 1][0]
    before, after = frames[3].people[0].keypoints, frames[6].people[0].keypoints
    np.testing.assert_allclose(p.keypoints, before + (after - before) / 3, atol=0.01)
    assert p.box[2] > 0 and np.isfinite(p.score)      # a filled frame's box and score


def test_scale_from_points_and_person_height():
    scale = resolve_scale(ScaleSpec(points_px=(10, 50, 110, 50), distance_m=2.0), [], "x")
    assert scale.metres_per_pixel == pytest.approx(0.02) and scale.source == "points"
    m = scale.to_metres(np.array([[10.0, 100.0]]), image_height=100)
    np.testing.assert_allclose(m, [[0.2, 0.0]])
    tilted = ScaleSpec(points_px=(0, 100, 100, 0), distance_m=1.0, floor_from_points=True)
    assert tilted.floor_angle() == pytest.approx(45.0)
    _, tracks = tracks_from_frames(_frames())
    h = resolve_scale(ScaleSpec(person_height_m=1.8), tracks, "x")
    assert h.source == "person_height" and h.track_id == 2 and h.metres_per_pixel > 0
    with pytest.raises(InputError, match="scale of zero"):
        ScaleSpec(points_px=(5, 5, 5, 5), distance_m=1.0)
    with pytest.raises(InputError, match="scale of zero"):
        ScaleSpec(points_px=(0, 0, 5, 5), distance_m=0.0)
    with pytest.raises(InputError, match="--person-height"):
        ScaleSpec(person_height_m=0.0)


# ---------------------------------------------------------------------------- writers
def _read_trc(path):
    """A TRC reader written from the format's description (not from our writer)."""
    lines = path.read_text().split("\n")
    assert lines[0].split("\t")[0] == "PathFileType"
    keys, values = lines[1].split("\t"), lines[2].split("\t")
    header = dict(zip(keys, values))
    names = [c for c in lines[3].split("\t")[2:] if c]
    coords = lines[4].split("\t")
    rows = [r.split("\t") for r in lines[6:] if r.strip()]
    data = np.array([[float(c) if c else np.nan for c in r[2:]] for r in rows])
    return header, names, coords, [float(r[1]) for r in rows], data


def test_trc_and_openpose_and_wide_csv_from_a_result(tmp_path):
    from core.export.analysis_sinks import (OPENPOSE_LAYOUTS, write_openpose, write_trc,
                                            write_wide_csv)
    frames = _frames()
    cfg = AnalysisConfig(scale=ScaleSpec(points_px=(0, 0, 100, 0), distance_m=1.0))
    result = analyse(frames, cfg)
    path = write_trc(tmp_path / "c.person1.trc", result, 1)
    header, names, coords, times, data = _read_trc(path)
    assert header["Units"] == "m" and int(header["NumMarkers"]) == 17 == len(names)
    assert int(header["NumFrames"]) == 12 == len(times) == len(data)
    assert float(header["DataRate"]) == pytest.approx(30.0)
    assert names == list(COCO_KEYPOINT_NAMES) and coords[2:5] == ["X1", "Y1", "Z1"]
    assert data.shape[1] == 3 * 17 and np.isnan(data[4:6]).all()       # the track break
    nose = frames[0].people[0].keypoints[K["nose"]]
    assert data[0, 0] == pytest.approx(nose[0] * 0.01, abs=1e-4)       # metres, x right
    assert data[0, 1] == pytest.approx((800 - nose[1]) * 0.01, abs=1e-4)   # y up
    assert (data[:, 2::3][np.isfinite(data[:, 2::3])] == 0).all()
    assert times[1] == pytest.approx(1 / 30, abs=1e-6)

    folder = write_openpose(tmp_path / "c.openpose", result, "c", "body25")
    files = sorted(folder.iterdir())
    assert len(files) == 12 and files[3].name == "c_000000000003_keypoints.json"
    doc = json.loads(files[0].read_text())
    people = {p["person_id"][0]: p["pose_keypoints_2d"] for p in doc["people"]}
    assert sorted(people) == [1, 2] and len(people[1]) == 25 * 3
    kp = frames[0].people[0].keypoints
    layout = OPENPOSE_LAYOUTS["body25"]
    assert layout[1] == "neck" and layout[8] == "mid_hip" and layout[2] == "right_shoulder"
    np.testing.assert_allclose(people[1][3:5], (kp[K["left_shoulder"]] + kp[K["right_shoulder"]]) / 2,
                               atol=0.01)
    np.testing.assert_allclose(people[1][2 * 3:2 * 3 + 2], kp[K["right_shoulder"]], atol=0.01)
    assert people[1][19 * 3:] == [0.0] * 18                           # no feet in COCO
    assert not json.loads(files[4].read_text())["people"][0]["person_id"] == [1]

    wide = write_wide_csv(tmp_path / "c.person2.csv", result, 2)
    rows = list(csv.DictReader(wide.open()))
    assert len(rows) == 12 and rows[0]["frame"] == "0"
    assert list(rows[0])[2:5] == ["nose_x", "nose_y", "nose_score"]
    assert list(rows[0])[-len(ANGLE_NAMES):] == [f"angle_{a}" for a in ANGLE_NAMES]
    assert float(rows[0]["angle_left_hip"]) == pytest.approx(10.0, abs=0.01)
    assert float(rows[5]["angle_left_knee"]) == pytest.approx(20.0, abs=0.01)
    assert not list(tmp_path.glob("*.part"))


# ---------------------------------------------------------------------------- annotate
@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    out = tmp_path_factory.mktemp("analysis")
    rc = main.main(["annotate", str(CLIP), "--out", str(out), "--formats",
                    "csv,json,wide-csv,trc,openpose", "--fill-gaps", "3", "--filter",
                    "butterworth", "--cutoff", "8", "--person-height", "1.7"])
    assert rc == 0
    return out


def test_wide_csv_equals_long_csv_of_the_same_run(analysed):
    long_rows = list(csv.DictReader((analysed / "clip_person.csv").open()))
    by_key = {(r["frame"], r["track_id"], r["keypoint"]): r for r in long_rows}
    wides = sorted(analysed.glob("clip_person.person*.csv"))
    assert wides
    n = 0
    for path in wides:
        tid = path.name.split(".person")[1].split(".")[0]
        for w in csv.DictReader(path.open()):
            for name in COCO_KEYPOINT_NAMES:
                r = by_key[(w["frame"], tid, name)]
                assert (w[f"{name}_x"], w[f"{name}_y"], w[f"{name}_score"]) == \
                    (r["x"], r["y"], r["score"])
                assert w["time_s"] == r["time_s"]
                n += 1
    assert n == len(long_rows)                          # the same samples, no more


def test_annotate_json_records_the_analysis_and_trc_is_in_metres(analysed):
    doc = json.loads((analysed / "clip_person.json").read_text())
    a = doc["analysis"]
    assert a["postprocessing"]["filter"] == "butterworth"
    assert a["postprocessing"]["cutoff_hz"] == 8.0 and a["postprocessing"]["fill_gaps"] == 3
    assert a["scale"]["source"] == "person_height" and a["scale"]["person_height_m"] == 1.7
    assert a["config"]["cutoff"] == 8.0
    person = next(p for f in doc["frames"] for p in f["people"])
    assert set(person["angles"]) == set(ANGLE_NAMES) and "raw_keypoints" in person
    header, names, _, times, data = _read_trc(next(analysed.glob("*.person*.trc")))
    assert header["Units"] == "m" and len(names) == 17
    assert np.nanmax(data[:, 1::3]) < 5.0            # a person of 1.7 m in a 480-px frame
    assert len(list((analysed / "clip_person.openpose").iterdir())) == 30
    cfg = (analysed / "clip_person.config.toml").read_text()
    assert "cutoff = 8.0" in cfg and "person-height = 1.7" in cfg


def _no_engine(monkeypatch):
    from core.commands import annotate

    def fail(*a, **k):
        raise AssertionError("work started despite bad options")
    monkeypatch.setattr(annotate, "build_engine", fail)


@pytest.mark.parametrize("args,message", [
    (["--angles", "left_knee,elbow"], "unknown angle 'elbow'"),
    (["--filter", "butterworth", "--cutoff", "30"], "Nyquist"),
    (["--scale-points", "10", "10", "10", "10", "1.0"], "scale of zero"),
    (["--person-height", "0"], "--person-height"),
    (["--formats", "csv,xls"], "--formats"),
])
def test_bad_options_fail_before_any_work(tmp_path, monkeypatch, capsys, args, message):
    _no_engine(monkeypatch)
    rc = main.main(["annotate", str(CLIP), "--out", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("error:") == 1 and message in err
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_config_round_trip_and_cli_override(tmp_path, monkeypatch, capsys):
    from core.batch.config import read_config_file, resolve_config
    first = tmp_path / "first.toml"
    rc = main.main(["annotate", str(CLIP), "--out", str(tmp_path / "o"), "--filter",
                    "butterworth", "--cutoff", "5", "--fill-gaps", "4", "--angles",
                    "left_knee,trunk", "--people", "longest:2", "--scale-points", "1", "2",
                    "3", "4", "0.5", "--floor-angle", "points", "--formats", "csv,trc",
                    "--no-backfill", "--write-config", str(first)])
    assert rc == 0 and not (tmp_path / "o").exists()
    config = resolve_config({}, str(first))
    assert config.cutoff == 5.0 and config.fill_gaps == 4 and config.angles == ("left_knee", "trunk")
    assert config.people == "longest:2" and config.scale_points == (1, 2, 3, 4, 0.5)
    assert config.floor_angle == "points" and config.formats == ("csv", "trc")
    assert config.inputs == (str(CLIP),)
    from core.batch.job import engine_config
    assert config.backfill is False and engine_config(config).backfill is False
    second = tmp_path / "second.toml"
    assert main.main(["annotate", "--config", str(first), "--cutoff", "7",
                      "--write-config", str(second)]) == 0
    again = resolve_config({}, str(second))
    assert again.cutoff == 7.0                          # the command line wins
    import dataclasses
    assert dataclasses.replace(again, cutoff=5.0) == config
    assert read_config_file(second)["inputs"] == (str(CLIP),)


def test_config_errors_name_the_file_and_key(tmp_path, monkeypatch, capsys):
    _no_engine(monkeypatch)
    bad = tmp_path / "bad.toml"
    bad.write_text('inputs = ["x.mp4"]\nout = "o"\ncutof = 5\n')
    assert main.main(["annotate", "--config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "bad.toml" in err and "unknown key 'cutof'" in err
    bad.write_text('fill-gaps = "three"\n')
    assert main.main(["annotate", "--config", str(bad)]) == 1
    assert "fill-gaps must be a whole number" in capsys.readouterr().err
    bad.write_text('angles = ["left_knee", "nose"]\n')
    assert main.main(["annotate", "--config", str(bad)]) == 1
    assert "unknown angle 'nose'" in capsys.readouterr().err


@pytest.mark.parametrize("option, value, said", [
    ("--detect-every", "0", "--detect-every: expected 1 or more frames, not 0"),
    ("--strength", "-1", "--strength: expected 0 (off) or more, not -1.0"),
    ("--strength", "nan", "--strength: expected 0 (off) or more, not nan")])
def test_engine_options_out_of_range_are_one_error_line(option, value, said, tmp_path,
                                                        monkeypatch, capsys):
    """They were tracebacks from inside the step's and the tracker's configs."""
    _no_engine(monkeypatch)
    assert main.main(["annotate", "x.mp4", "--out", str(tmp_path), option, value]) == 1
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err
    bad = tmp_path / "bad.toml"                        # the same from a configuration file
    bad.write_text(f'inputs = ["x.mp4"]\nout = "o"\n{option[2:]} = {value}\n')
    assert main.main(["annotate", "--config", str(bad)]) == 1
    assert said in capsys.readouterr().err
