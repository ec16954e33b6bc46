"""BlazePoseEstimator (MediaPipe's landmark model on person crops) and create_pose_backend.

Real data: the astronaut photo (tests/data/reference, 512x512, upper body) with keypoints
checked by eye; with ../shared, mean OKS on the public evaluation set.
"""
from __future__ import annotations

import importlib.util
import sys

import cv2
import numpy as np
import pytest

from core.errors import CheckpointError, InputError, StudioError
from core.keypoints import COCO_KEYPOINT_NAMES
from core.pose.estimator import PoseEstimate

from conftest import ROOT, SHARED

pytest.importorskip("ai_edge_litert")
if importlib.util.find_spec("mediapipe") is None:
    pytest.skip("mediapipe (0.10.21, which ships the pose models) is not installed",
                allow_module_level=True)

from core.pose import backends  # noqa: E402
from core.pose.blazepose import (BLAZEPOSE_TO_COCO, BlazePoseConfig,  # noqa: E402
                                 BlazePoseEstimator, refine_from_heatmap)

K = {name: i for i, name in enumerate(COCO_KEYPOINT_NAMES)}
ASTRONAUT_BOX = [18, 9.5, 350, 502]
# Checked by eye on the 512x512 photo (zoomed, with a pixel grid). Left/right are the
# person's: her left eye and shoulder are on the image's right. The shoulders are the
# tops of the spacesuit's shoulders beside the neck ring (MediaPipe's own full pipeline,
# with its detector, puts them at (113, 240) and (306, 257)).
HAND_CHECKED = {
    "nose": ((224, 123), 10),
    "right_eye": ((204, 102), 10),
    "left_eye": ((246, 103), 12),
    "right_shoulder": ((105, 245), 50),
    "left_shoulder": ((310, 262), 50),
}


@pytest.fixture(scope="module")
def estimator():
    return BlazePoseEstimator()


@pytest.fixture(scope="module")
def photo(astronaut_path):
    return cv2.imread(str(astronaut_path))          # BGR


@pytest.fixture(scope="module")
def astronaut(estimator, photo) -> PoseEstimate:
    return estimator(photo, [ASTRONAUT_BOX])


def test_mapping_follows_mediapipe_landmark_list():
    # pose_landmark_by_roi_cpu.pbtxt: 0 nose, 2 left eye, 5 right eye, 7/8 ears,
    # 11-16 shoulders/elbows/wrists, 23-28 hips/knees/ankles (left before right)
    assert BLAZEPOSE_TO_COCO == (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)


@pytest.mark.parametrize("name", list(HAND_CHECKED))
def test_astronaut_keypoints_land_on_the_hand_checked_spots(astronaut, name):
    (x, y), tol = HAND_CHECKED[name]
    px, py = astronaut.keypoints[0, K[name]]
    assert np.hypot(px - x, py - y) <= tol, f"{name} at ({px:.0f}, {py:.0f}), expected ({x}, {y})"


def test_astronaut_left_and_right_are_not_swapped(astronaut):
    kp = astronaut.keypoints[0]
    x = {name: kp[i, 0] for name, i in K.items()}
    # the person's left is the image's right
    for part in ("eye", "ear", "shoulder"):
        assert x[f"left_{part}"] > x["nose"] > x[f"right_{part}"], part
    assert x["left_shoulder"] - x["right_shoulder"] > 120     # shoulders, not neck points
    assert kp[K["left_shoulder"], 1] > kp[K["nose"], 1] + 60  # below the face


def test_astronaut_scores_high_where_visible_low_for_out_of_frame_ankles(astronaut):
    s = astronaut.scores[0]
    assert s.dtype == np.float32 and np.all((s >= 0) & (s <= 1))
    for name in ("nose", "left_eye", "right_eye", "left_shoulder", "right_shoulder"):
        assert s[K[name]] > 0.8, (name, s[K[name]])
    for name in ("left_ankle", "right_ankle"):
        assert s[K[name]] < 0.1, (name, s[K[name]])
    assert s[K["nose"]] > s[K["left_ankle"]] + 0.7


def test_output_shapes_for_0_1_and_3_boxes(estimator, photo):
    boxes3 = [ASTRONAUT_BOX, [100, 50, 200, 300], [300, 200, 150, 250]]
    for boxes, n in (([], 0), (np.zeros((0, 4)), 0), ([ASTRONAUT_BOX], 1), (boxes3, 3), (None, 1)):
        est = estimator(photo, boxes)
        assert isinstance(est, PoseEstimate) and len(est) == n
        assert est.boxes.shape == (n, 4)
        assert est.keypoints.shape == (n, 17, 2) and est.keypoints.dtype == np.float32
        assert est.scores.shape == (n, 17) and est.scores.dtype == np.float32
        assert est.attention is None
        assert np.all(np.isfinite(est.keypoints))


def test_batched_people_equal_one_by_one(estimator, photo):
    boxes = [ASTRONAUT_BOX, [100, 50, 200, 300], [300, 200, 150, 250], [150, 60, 160, 200]]
    together = estimator(photo, boxes)
    for i, box in enumerate(boxes):
        alone = estimator(photo, [box])
        np.testing.assert_allclose(together.keypoints[i], alone.keypoints[0], atol=1e-3)
        np.testing.assert_allclose(together.scores[i], alone.scores[0], atol=1e-5)
    small_batches = BlazePoseEstimator(BlazePoseConfig(batch_size=1))(photo, boxes)
    np.testing.assert_allclose(small_batches.keypoints, together.keypoints, atol=1e-3)


def test_rgb_input_and_attention_flag(photo):
    bgr = BlazePoseEstimator()
    rgb = BlazePoseEstimator(BlazePoseConfig(color="rgb"))
    a = bgr(photo, [ASTRONAUT_BOX], attention=True)
    b = rgb(np.ascontiguousarray(photo[..., ::-1]), [ASTRONAUT_BOX])
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    assert a.attention is None                       # attention maps are TransPose only
    assert bgr.name == bgr.variant == "mediapipe-blazepose-full"


def test_bad_inputs_are_input_errors(estimator, photo):
    with pytest.raises(InputError):
        estimator(photo[..., 0], [ASTRONAUT_BOX])
    with pytest.raises(InputError):
        estimator(photo, [[0, 0, 0, 10]])
    with pytest.raises(InputError):
        estimator(photo, [[600, 600, 10, 10]])
    with pytest.raises(InputError):
        BlazePoseEstimator(BlazePoseConfig(border="mirror"))


def test_heatmap_refinement_moves_points_to_the_peak_like_mediapipe():
    hm = np.full((64, 64, 3), -10.0, np.float32)
    hm[20, 30, 0] = 5.0                       # a confident peak 2 cells from point 0
    hm[41:43, 10, 1] = 0.0                    # weak (sigmoid 0.5 is enough) on two rows
    pts = np.array([[32 * 4 + 1.0, 20 * 4 + 1.0], [10 * 4.0, 42 * 4.0], [300.0, 10.0]])
    out = refine_from_heatmap(pts, hm)
    # MediaPipe maps cell (r, c) back to (c, r) * 256 / 64, the cell's corner
    np.testing.assert_allclose(out[0], [30 * 4, 20 * 4], atol=0.05)
    np.testing.assert_allclose(out[1], [10 * 4, 41.5 * 4], atol=0.05)
    np.testing.assert_array_equal(out[2], pts[2])            # outside the map: untouched
    hm[:, :, 0] = -10.0                                      # nothing confident: untouched
    np.testing.assert_array_equal(refine_from_heatmap(pts, hm)[0], pts[0])


# ------------------------------------------------------------------ create_pose_backend

@pytest.fixture
def empty_models(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setattr(backends.catalogue, "SHIPPED_MODELS", folder)
    return folder


def _tiny_transpose(path):
    from core.models import TransPoseConfig, build_model, save_checkpoint
    cfg = TransPoseConfig(name="tp-r-tiny", backbone="resnet", resnet_width=8,
                          resnet_blocks=(1, 1), d_model=16, dim_feedforward=32, n_heads=2,
                          n_layers=1, input_size=(64, 96))
    return save_checkpoint(build_model(cfg).eval(), path)


def test_auto_falls_back_to_blazepose_without_shipped_weights(empty_models, photo):
    backend, desc = backends.create_pose_backend("auto", device="cpu")
    assert isinstance(backend, BlazePoseEstimator)
    assert "BlazePose" in desc and "no shipped TransPose weights" in desc
    assert str(empty_models) in desc
    assert backend(photo, [ASTRONAUT_BOX]).keypoints.shape == (1, 17, 2)


def test_auto_uses_shipped_transpose_weights(empty_models, photo):
    from core.pose.estimator import TransPoseEstimator
    _tiny_transpose(empty_models / "tiny.pth")
    backend, desc = backends.create_pose_backend("auto", device="cpu")
    assert isinstance(backend, TransPoseEstimator)
    assert desc.startswith("TransPose tp-r-tiny (") and "tiny.pth" in desc and "on cpu" in desc
    est = backend(photo, [ASTRONAUT_BOX, [100, 50, 200, 300]])
    assert est.keypoints.shape == (2, 17, 2) and est.scores.shape == (2, 17)


def test_explicit_specs(tmp_path, empty_models):
    from core.pose.estimator import TransPoseEstimator
    for spec in ("mediapipe", "BlazePose", "mediapipe-blazepose-full"):
        backend, desc = backends.create_pose_backend(spec)
        assert isinstance(backend, BlazePoseEstimator) and desc.startswith("MediaPipe BlazePose")
    path = _tiny_transpose(tmp_path / "elsewhere.pth")
    backend, desc = backends.create_pose_backend(str(path), device="cpu")
    assert isinstance(backend, TransPoseEstimator) and "tp-r-tiny" in desc and str(path) in desc


def test_bad_specs_are_clear_studio_errors(tmp_path, empty_models):
    with pytest.raises(InputError, match="unknown pose model 'resnet50'.*tp-r-a3.*pth"):
        backends.create_pose_backend("resnet50")
    with pytest.raises(CheckpointError, match="no such weights file"):
        backends.create_pose_backend(str(tmp_path / "missing.pth"))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(StudioError, match="junk.pth"):
        backends.create_pose_backend(str(junk))
    with pytest.raises(InputError):
        backends.create_pose_backend("")


# ------------------------------------------------------------------ public evaluation set

def test_mean_oks_on_the_public_evaluation_set(monkeypatch):
    if not (SHARED / "datasets" / "coco-mini-train").is_dir() or \
            not (SHARED / "datasets" / "coco8-pose").is_dir():
        pytest.skip(f"the public evaluation set is not in {SHARED / 'datasets'}")
    spec = importlib.util.spec_from_file_location("blazepose_oks",
                                                  ROOT / "benchmarks" / "blazepose_oks.py")
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "blazepose_oks", bench)    # dataclasses look it up
    spec.loader.exec_module(bench)
    people = bench.load_public_set(SHARED / "datasets")
    assert len(people) == 101                   # 80 coco-mini-train + 21 coco8-pose
    result = bench.evaluate(BlazePoseEstimator(), people, box_scale=1.25, warmup=1)
    # measured 0.366 (0.392 with tight boxes); MoveNet Thunder 0.589, BlazePose through
    # its own detector 0.325 (README)
    assert result["mean_oks"] > 0.33, result


def test_world_landmarks_reach_the_json(tmp_path):
    """BlazePose's 3-D world keypoints (metres, origin between the hips) are exported per
    person in the JSON; the 2-D keypoints are unchanged."""
    import json
    from core.batch.job import annotate_one
    from core.engine import EngineConfig, build_engine
    clip = ROOT / "tests" / "data" / "clip_person.mp4"
    engine = build_engine(EngineConfig(model="mediapipe"), progress=False)
    paths = {"csv": tmp_path / "c.csv", "json": tmp_path / "c.json"}
    annotate_one(engine, str(clip), paths, None)
    doc = json.loads(paths["json"].read_text())
    people = [p for f in doc["frames"] for p in f["people"]]
    assert people and all("world" in p for p in people)
    for p in people:
        world = np.array([[np.nan if v is None else v for v in xyz] for xyz in p["world"]])
        assert world.shape == (17, 3)
        seen = np.array([kp[2] is not None for kp in p["keypoints"]])
        assert np.isnan(world[~seen]).all()              # missing 2-D keypoint: no 3-D one
        hips = world[[11, 12]]
        if np.isfinite(hips).all():                      # hip-centred, metres, y down
            assert np.abs(hips.mean(0)).max() < 0.1
            shoulders = world[[5, 6]]
            if np.isfinite(shoulders).all():
                assert -0.8 < shoulders[:, 1].mean() < -0.3


def test_tracked_people_carry_their_estimate_row():
    from core.tracking import PoseTracker, TrackerConfig
    from core.types import PoseEstimate as PE
    kp = np.stack([np.stack([np.linspace(10, 50, 17), np.linspace(20, 90, 17)], 1),
                   np.stack([np.linspace(200, 240, 17), np.linspace(20, 90, 17)], 1)])
    est = PE(boxes=np.array([[10, 20, 40, 70], [200, 20, 40, 70]], np.float32),
             keypoints=kp.astype(np.float32), scores=np.full((2, 17), 0.9, np.float32),
             world=np.arange(2 * 17 * 3, dtype=np.float32).reshape(2, 17, 3))
    tracker = PoseTracker(TrackerConfig(min_hits=1))
    people = tracker.update(est, 0.0)
    assert sorted(p.row for p in people) == [0, 1]
    for p in people:
        np.testing.assert_array_equal(p.keypoints, est.keypoints[p.row])   # no smoothing yet
        np.testing.assert_array_equal(p.world, est.world[p.row])
