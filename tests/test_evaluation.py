"""Ground-truth loaders, evaluation metrics, MoveNet and `main.py eval`.

Fixtures (tests/data/eval, see tests/data/README.md): two coco8-pose images with their
YOLO-pose labels and a COCO keypoint JSON trimmed to two coco-mini-train images. Metric
checks use constructed predictions with expected values computed here independently;
with ../shared, MoveNet on the whole public evaluation set is checked against the shared
README's measured mean OKS (0.589).
"""
from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import main
from core import evaluation as ev
from core.datasets import (KeypointDataset, PersonAnnotation, ImageInfo, YOLO_AREA_FACTOR,
                           load_coco_keypoints, load_keypoint_dataset, load_yolo_pose,
                           merge_datasets, to_coco_gt_dict)
from core.errors import InputError, StudioError
from core.keypoints import COCO_KEYPOINT_NAMES

from conftest import DATA, ROOT, SHARED

EVAL = DATA / "eval"
YOLO_DIR = EVAL / "coco8-pose"
COCO_JSON = EVAL / "coco-mini" / "annotations" / "person_keypoints_train2017.json"
COCO_IMAGES = EVAL / "coco-mini" / "train2017"
K = {name: i for i, name in enumerate(COCO_KEYPOINT_NAMES)}
# COCO's OKS sigmas, written out here so the expected values do not reuse the code's table
SIGMA = {"nose": .026, "left_eye": .025, "right_eye": .025, "left_ear": .035,
         "right_ear": .035, "left_shoulder": .079, "right_shoulder": .079, "left_elbow": .072,
         "right_elbow": .072, "left_wrist": .062, "right_wrist": .062, "left_hip": .107,
         "right_hip": .107, "left_knee": .087, "right_knee": .087, "left_ankle": .089,
         "right_ankle": .089}
MOVENET = SHARED / "models" / "movenet_thunder.onnx"
HAS_ORT = importlib.util.find_spec("onnxruntime") is not None
HAS_MEDIAPIPE = importlib.util.find_spec("mediapipe") is not None and \
    importlib.util.find_spec("ai_edge_litert") is not None


@pytest.fixture(scope="module")
def yolo() -> KeypointDataset:
    return load_yolo_pose(YOLO_DIR)


@pytest.fixture(scope="module")
def coco() -> KeypointDataset:
    return load_coco_keypoints(COCO_JSON, COCO_IMAGES)


# ------------------------------------------------------------------ loaders
def test_yolo_pose_loader_reads_pixels_area_and_image_size(yolo):
    assert sorted(yolo.images) == [49, 136]
    info = yolo.images[49]
    h, w = cv2.imread(str(info.path)).shape[:2]
    assert (info.width, info.height) == (w, h)
    assert len(yolo.people) == 4 and yolo.name == "coco8-pose"
    assert [p.num_keypoints for p in yolo.people] == [13, 11, 4, 6]
    # first person of image 49 against its label line, scaled by hand
    values = [float(v) for v in (YOLO_DIR / "labels/train/000000000049.txt")
              .read_text().splitlines()[0].split()]
    p = yolo.people[0]
    assert p.image_id == 49 and p.image_path == info.path and not p.iscrowd
    cx, cy, bw, bh = values[1:5]
    np.testing.assert_allclose(p.box, [(cx - bw / 2) * w, (cy - bh / 2) * h, bw * w, bh * h])
    assert p.area == pytest.approx(bw * w * bh * h * YOLO_AREA_FACTOR)
    kp = np.array(values[5:]).reshape(17, 3)
    np.testing.assert_allclose(p.keypoints[:, 0], kp[:, 0] * w)
    np.testing.assert_allclose(p.keypoints[:, 1], kp[:, 1] * h)
    np.testing.assert_array_equal(p.keypoints[:, 2], kp[:, 2])
    assert p.keypoints.shape == (17, 3) and p.box.dtype == np.float64


def test_coco_loader_keeps_every_annotation_and_finds_images(coco):
    assert sorted(coco.images) == [183872, 489520]
    assert coco.images[489520].path == COCO_IMAGES / "000000489520.jpg"
    assert (coco.images[489520].width, coco.images[489520].height) == (500, 375)
    assert len(coco.people) == 10 and coco.name == "coco-mini"
    raw = json.loads(COCO_JSON.read_text())["annotations"]
    by_id = {p.annotation_id: p for p in coco.people}
    for a in raw:
        p = by_id[a["id"]]
        np.testing.assert_allclose(p.box, a["bbox"])
        np.testing.assert_allclose(p.keypoints.reshape(-1), a["keypoints"])
        assert p.area == pytest.approx(a["area"]) and p.num_keypoints == a["num_keypoints"]
    assert sorted(p.num_keypoints for p in coco.evaluable(3)) == [3, 12, 17]
    assert len(coco.evaluable(4)) == 2
    # without --images, the COCO layout (annotations/ beside train2017/) is found
    guessed = load_coco_keypoints(COCO_JSON)
    assert guessed.images[183872].path == coco.images[183872].path


def test_load_keypoint_dataset_chooses_by_file_type_and_layout():
    assert "YOLO-pose" in load_keypoint_dataset(YOLO_DIR).source
    assert "COCO" in load_keypoint_dataset(COCO_JSON, COCO_IMAGES).source
    assert "COCO" in load_keypoint_dataset(EVAL / "coco-mini").source   # annotations/ inside
    split = load_keypoint_dataset(YOLO_DIR / "labels" / "val")          # one split's labels
    assert sorted(split.images) == [136] and len(split.people) == 2


def test_coco_gt_dict_is_pycocotools_ready_for_yolo_pose(yolo):
    from pycocotools.coco import COCO
    gt = to_coco_gt_dict(yolo)
    assert {im["id"] for im in gt["images"]} == {49, 136}
    assert len(gt["annotations"]) == 4 and gt["categories"][0]["name"] == "person"
    a = gt["annotations"][0]
    assert len(a["keypoints"]) == 51 and a["num_keypoints"] == 13 and a["iscrowd"] == 0
    coco = COCO()
    coco.dataset = gt
    coco.createIndex()
    assert len(coco.getAnnIds(imgIds=[49])) == 2


def test_merge_renumbers_clashing_image_ids(yolo):
    merged = merge_datasets([yolo, yolo])
    assert len(merged.images) == 4 and len(merged.people) == 8
    assert merged.parts == ["coco8-pose", "coco8-pose#2"]
    assert len({p.annotation_id for p in merged.people}) == 8
    for p in merged.people:
        assert merged.images[p.image_id].path == p.image_path


@pytest.mark.parametrize("case", ["missing", "malformed", "not_coco", "bad_kp_count",
                                  "no_images", "bad_yolo_line", "empty_folder", "text_file"])
def test_bad_ground_truth_raises_one_clear_input_error(case, tmp_path):
    images = None
    if case == "missing":
        gt = tmp_path / "nope.json"
    elif case == "malformed":
        gt = tmp_path / "gt.json"
        gt.write_text(COCO_JSON.read_text()[:500])
    elif case == "not_coco":
        gt = tmp_path / "gt.json"
        gt.write_text('{"people": []}')
    elif case == "bad_kp_count":
        doc = json.loads(COCO_JSON.read_text())
        doc["annotations"][0]["keypoints"] = doc["annotations"][0]["keypoints"][:-3]
        gt = tmp_path / "gt.json"
        gt.write_text(json.dumps(doc))
        images = COCO_IMAGES
    elif case == "no_images":
        gt = tmp_path / "gt.json"
        gt.write_text(COCO_JSON.read_text())
    elif case == "bad_yolo_line":
        gt = tmp_path / "yolo"
        (gt / "labels").mkdir(parents=True)
        (gt / "images").mkdir()
        cv2.imwrite(str(gt / "images" / "a.jpg"), np.zeros((8, 8, 3), np.uint8))
        (gt / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2 0.1 0.1\n")
    elif case == "empty_folder":
        gt = tmp_path / "empty"
        gt.mkdir()
    else:
        gt = tmp_path / "notes.txt"
        gt.write_text("hello")
    with pytest.raises(InputError) as info:
        load_keypoint_dataset(gt, images)
    message = str(info.value)
    assert "\n" not in message
    assert str(gt) in message or (case == "no_images" and "--images" in message)
    if case == "malformed":
        assert "not valid JSON" in message
    if case == "bad_yolo_line":
        assert "line 1" in message


# ------------------------------------------------------------------ metrics
def _dataset(people: list[PersonAnnotation]) -> KeypointDataset:
    images = {p.image_id: ImageInfo(p.image_id, p.image_path, 1000, 1000) for p in people}
    return KeypointDataset(images=images, people=people, source="constructed", name="made")


def _person(kps: dict[str, tuple[float, float]], area: float, image_id: int = 1,
            ann_id: int = 1, crowd: bool = False) -> PersonAnnotation:
    k = np.zeros((17, 3))
    for name, (x, y) in kps.items():
        k[K[name]] = (x, y, 2)
    lab = k[k[:, 2] > 0]
    x0, y0 = lab[:, :2].min(0) if len(lab) else (0, 0)
    x1, y1 = lab[:, :2].max(0) if len(lab) else (10, 10)
    return PersonAnnotation(Path(f"img{image_id}.jpg"), image_id,
                            np.array([x0, y0, x1 - x0 + 1, y1 - y0 + 1], float), k, area,
                            crowd, int((k[:, 2] > 0).sum()), ann_id, "made")


def _gt_kps(people):
    return np.stack([p.keypoints[:, :2] for p in people])


def test_perfect_predictions_score_one_everywhere(yolo, coco):
    merged = merge_datasets([yolo, coco])
    scored = merged.evaluable(3)
    r = ev.compute_metrics(merged, _gt_kps(scored), np.full((len(scored), 17), 0.9),
                           people=scored)
    assert r.people == 7 and r.images == 4
    assert r.mean_oks == pytest.approx(1.0)
    assert r.ap == pytest.approx(1.0) and r.ap50 == pytest.approx(1.0)
    assert r.ar == pytest.approx(1.0)
    assert r.pck == pytest.approx(1.0)
    assert all(v is None or v == pytest.approx(1.0) for v in r.pck_per_keypoint.values())
    assert [p.dataset for p in r.parts] == ["coco8-pose", "coco-mini"]
    assert [p.people for p in r.parts] == [4, 3]
    assert r.parts[1].ap == pytest.approx(1.0)


def test_shifted_keypoints_lower_oks_by_the_expected_amount():
    # Two labelled keypoints; shift each so that d^2 / (2 area (2 sigma)^2) is 1 and 0.25.
    area = 5000.0
    gt = _person({"left_shoulder": (100, 100), "left_hip": (120, 200)}, area)
    d_sh = math.sqrt(1.0 * 2 * area * (2 * SIGMA["left_shoulder"]) ** 2)
    d_hip = math.sqrt(0.25 * 2 * area * (2 * SIGMA["left_hip"]) ** 2)
    pred = gt.keypoints[:, :2].copy()
    pred[K["left_shoulder"]] += (d_sh, 0)                              # along x
    pred[K["left_hip"]] += (0.6 * d_hip, 0.8 * d_hip)                  # diagonal, same length
    pred[K["nose"]] += (500, 500)                                      # unlabelled: no effect
    expected = (math.exp(-1.0) + math.exp(-0.25)) / 2
    r = ev.compute_metrics(_dataset([gt]), pred[None], np.ones((1, 17)), min_keypoints=2)
    assert r.people == 1
    assert r.mean_oks == pytest.approx(expected, abs=1e-9)
    assert r.oks_per_keypoint["left_shoulder"] == pytest.approx(math.exp(-1.0))
    assert r.oks_per_keypoint["left_hip"] == pytest.approx(math.exp(-0.25))
    assert r.oks_per_keypoint["nose"] is None
    assert ev.oks(pred, gt.keypoints, area) == pytest.approx(expected)


def test_oks_agrees_with_pycocotools_on_real_people(yolo, coco):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    rng = np.random.default_rng(0)
    for ds in (yolo, coco):
        scored = ds.evaluable(3)
        pred = _gt_kps(scored) + rng.normal(0, 6, (len(scored), 17, 2))
        gt = to_coco_gt_dict(ds, scored)
        dets = ev._detections(scored, pred, np.ones((len(scored), 17)))
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        e = COCOeval(coco_gt, coco_gt.loadRes(dets), "keypoints")
        e._prepare()
        for i, p in enumerate(scored):
            ious = e.computeOks(p.image_id, 1)            # dets x gts of that image
            dt_ids = [d["id"] for d in e._dts[p.image_id, 1]]
            gt_ids = [g["id"] for g in e._gts[p.image_id, 1]]
            ours = ev.oks(pred[i], p.keypoints, p.area)
            # the detection made for person i is the i-th detection overall (ids from 1)
            theirs = ious[dt_ids.index(i + 1), gt_ids.index(p.annotation_id)]
            assert ours == pytest.approx(theirs, abs=1e-9)


def test_swapped_left_right_lowers_pck_of_those_keypoints_only():
    # A person with a torso (diagonal: left shoulder - right hip = 100 px), wrists far apart.
    kps = {"left_shoulder": (200, 100), "right_shoulder": (120, 100), "left_hip": (200, 160),
           "right_hip": (120, 160), "left_wrist": (260, 200), "right_wrist": (60, 200),
           "nose": (160, 60)}
    gt = _person(kps, 20000.0)
    assert ev.torso_diameter(gt.keypoints) == pytest.approx(100.0)
    good = gt.keypoints[:, :2].copy()
    swapped = good.copy()
    swapped[[K["left_wrist"], K["right_wrist"]]] = swapped[[K["right_wrist"], K["left_wrist"]]]
    ok = ev.compute_metrics(_dataset([gt]), good[None], np.ones((1, 17)))
    bad = ev.compute_metrics(_dataset([gt]), swapped[None], np.ones((1, 17)))
    assert ok.pck == pytest.approx(1.0)
    assert bad.pck_per_keypoint["left_wrist"] == 0.0
    assert bad.pck_per_keypoint["right_wrist"] == 0.0
    for name in ("left_shoulder", "right_hip", "nose"):
        assert bad.pck_per_keypoint[name] == 1.0
    assert bad.pck == pytest.approx(5 / 7)
    assert bad.mean_oks < ok.mean_oks
    # within 0.2 x torso is a hit, beyond is a miss
    near = good.copy()
    near[K["nose"]] += (19.9, 0)
    far = good.copy()
    far[K["nose"]] += (20.1, 0)
    assert ev.pck_hits(near, gt.keypoints)[K["nose"]]
    assert not ev.pck_hits(far, gt.keypoints)[K["nose"]]


def test_torso_rule_and_people_without_a_torso():
    only_other_diagonal = _person({"right_shoulder": (0, 0), "left_hip": (30, 40),
                                   "nose": (5, -20)}, 1000.0)
    assert ev.torso_diameter(only_other_diagonal.keypoints) == pytest.approx(50.0)
    no_torso = _person({"nose": (10, 10), "left_eye": (12, 8), "right_eye": (8, 8)}, 1000.0,
                       image_id=2, ann_id=2)
    assert ev.torso_diameter(no_torso.keypoints) is None
    people = [only_other_diagonal, no_torso]
    r = ev.compute_metrics(_dataset(people), _gt_kps(people), np.ones((2, 17)))
    assert r.people == 2 and r.pck_people == 1
    assert r.pck_labelled_per_keypoint["nose"] == 1 and r.labelled_per_keypoint["nose"] == 2
    assert r.per_person[1].pck_hits is None


def test_who_is_scored_and_ap_ranks_by_mean_score():
    a = _person({"left_shoulder": (100, 100), "right_hip": (60, 200), "nose": (80, 60)},
                8000.0, image_id=1, ann_id=1)
    b = _person({"left_shoulder": (400, 100), "right_hip": (360, 200), "nose": (380, 60)},
                8000.0, image_id=1, ann_id=2)
    few = _person({"nose": (700, 100), "left_eye": (705, 95)}, 3000.0, image_id=1, ann_id=3)
    crowd = _person({}, 9000.0, image_id=1, ann_id=4, crowd=True)
    ds = _dataset([a, b, few, crowd])
    pred = _gt_kps([a, b])
    r = ev.compute_metrics(ds, pred, np.ones((2, 17)))
    assert (r.people, r.skipped_few_keypoints, r.skipped_crowd) == (2, 1, 1)
    assert r.ap == pytest.approx(1.0)              # the 2-keypoint person is no miss
    # b predicted far off: OKS ~0 for b; a confident b ranks first and costs precision
    wrong = pred.copy()
    wrong[1] += 300
    low_b = ev.compute_metrics(ds, wrong, np.array([[0.9] * 17, [0.1] * 17]))
    high_b = ev.compute_metrics(ds, wrong, np.array([[0.1] * 17, [0.9] * 17]))
    assert low_b.ar == pytest.approx(0.5) and high_b.ar == pytest.approx(0.5)
    assert low_b.ap == pytest.approx(0.5, abs=0.01)
    assert high_b.ap < low_b.ap
    assert low_b.mean_oks == pytest.approx(0.5, abs=1e-6)


class _Oracle:
    """A 'model' returning the ground truth of the boxes it is given (tests the plumbing)."""

    variant = "oracle"

    def __init__(self, dataset, box_enlarge=1.25):
        self.people = {(p.image_path.name, tuple(np.round(ev.enlarge_box(p.box, box_enlarge), 2)))
                       : p for p in dataset.people}
        self.calls = []

    def __call__(self, image, boxes):
        from core.pose.estimator import PoseEstimate
        boxes = np.asarray(boxes, np.float32)
        self.calls.append(len(boxes))
        found = []
        for b in boxes:
            match = [p for (name, key), p in self.people.items()
                     if np.allclose(key, b, atol=0.05)]
            assert len(match) == 1
            found.append(match[0])
        return PoseEstimate(boxes=boxes,
                            keypoints=np.stack([p.keypoints[:, :2] for p in found]),
                            scores=np.full((len(found), 17), 0.5, np.float32))


def test_evaluate_passes_enlarged_boxes_per_image(yolo, coco):
    oracle = _Oracle(merge_datasets([yolo, coco]))
    r = ev.evaluate(oracle, [yolo, coco])
    assert oracle.calls[0] == 1                    # an untimed warm-up call, then
    assert sorted(oracle.calls[1:]) == [1, 2, 2, 2]   # one call per image
    assert r.mean_oks == pytest.approx(1.0) and r.ap == pytest.approx(1.0)
    assert r.ms_per_person is not None and r.ms_per_person >= 0
    assert r.model == "oracle"
    doc = r.to_dict()
    json.dumps(doc, allow_nan=False)
    assert doc["parts"][0]["people"] == 4 and len(doc["per_person"]) == 7
    with pytest.raises(InputError, match="no non-crowd person"):
        ev.evaluate(oracle, [yolo], min_keypoints=18)


# ------------------------------------------------------------------ MoveNet
def test_movenet_without_onnxruntime_names_the_package(monkeypatch, tmp_path):
    from core.pose.movenet import MoveNetEstimator
    model = tmp_path / "m.onnx"
    model.write_bytes(b"not really")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)       # import fails
    with pytest.raises(StudioError, match="onnxruntime"):
        MoveNetEstimator(model)
    with pytest.raises(InputError, match="no such MoveNet"):
        MoveNetEstimator(tmp_path / "missing.onnx")


@pytest.mark.skipif(not HAS_ORT, reason="onnxruntime is not installed")
def test_movenet_rejects_a_file_that_is_not_onnx(tmp_path):
    from core.pose.movenet import MoveNetEstimator
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(StudioError, match="junk.onnx: not a loadable ONNX model"):
        MoveNetEstimator(junk)


def _movenet_or_skip():
    if not HAS_ORT:
        pytest.skip("onnxruntime is not installed")
    if not MOVENET.is_file():
        pytest.skip(f"{MOVENET} is absent (../shared is not there)")


def test_movenet_backend_square_crop_with_context(yolo):
    _movenet_or_skip()
    from core.pose.backends import create_pose_backend
    from core.pose.movenet import MoveNetEstimator
    backend, desc = create_pose_backend("movenet")
    assert isinstance(backend, MoveNetEstimator) and backend.variant == "movenet-thunder"
    assert "MoveNet movenet-thunder" in desc and "onnxruntime" in desc
    same, _ = create_pose_backend(str(MOVENET))
    assert isinstance(same, MoveNetEstimator)
    # the box is squared about its centre; outside the image the square is black
    assert backend.square(np.array([10, 20, 40, 100])) == (-20, 20, 100)
    image = np.full((60, 80, 3), 200, np.uint8)
    crop, (x0, y0, side) = backend.crop(image, np.array([30, 30, 20, 40]))   # x 20..60
    assert (x0, y0, side) == (20, 30, 40) and crop.shape == (256, 256, 3)   # y 30..70
    assert crop[:180].min() == 200          # image rows 30..60, also beside the box
    assert crop[-60:].max() == 0            # rows 60..70 lie below the image: zero padding
    # one real person: keypoints land near the labels
    p = yolo.people[0]
    img = cv2.imread(str(p.image_path))
    est = backend(img, [ev.enlarge_box(p.box, 1.25)])
    assert est.keypoints.shape == (1, 17, 2) and est.scores.shape == (1, 17)
    assert ev.oks(est.keypoints[0], p.keypoints, p.area) > 0.5
    rgb = MoveNetEstimator(MOVENET, color="rgb")(img[..., ::-1].copy(),
                                                 [ev.enlarge_box(p.box, 1.25)])
    np.testing.assert_allclose(rgb.keypoints, est.keypoints, atol=1e-3)


@pytest.mark.skipif(not (SHARED / "datasets" / "coco-mini-train").is_dir(),
                    reason="../shared (the public evaluation set) is absent")
def test_movenet_on_the_public_set_matches_the_shared_figure():
    _movenet_or_skip()
    from core.pose.movenet import MoveNetEstimator
    sets = [load_keypoint_dataset(SHARED / "datasets" / "coco8-pose"),
            load_keypoint_dataset(SHARED / "datasets" / "coco-mini-train")]
    r = ev.evaluate(MoveNetEstimator(MOVENET), sets)
    assert r.people == 101
    assert abs(r.mean_oks - 0.589) < 0.02, r.mean_oks             # shared README: 0.589
    assert abs(r.parts[0].mean_oks - 0.557) < 0.02                # coco8-pose
    assert abs(r.parts[1].mean_oks - 0.598) < 0.02                # coco-mini-train
    assert 0.3 < r.ap < 0.5 and 0.7 < r.pck < 0.85


# ------------------------------------------------------------------ CLI
@pytest.mark.skipif(not HAS_MEDIAPIPE, reason="mediapipe / ai-edge-litert are not installed")
def test_eval_cli_prints_the_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "eval.json"
    rc = main.main(["eval", "--gt", str(YOLO_DIR), "--gt", str(COCO_JSON), "--images",
                    str(COCO_IMAGES), "--model", "mediapipe", "--json", str(out)])
    assert rc == 0
    captured = capsys.readouterr()
    table = captured.out
    for word in ("AP50", "meanOKS", "PCK", "ms/person", "coco8-pose", "coco-mini", "all",
                 "left_wrist", "right_ankle"):
        assert word in table
    assert "BlazePose" in table
    assert "wrote" in captured.err and "wrote" not in table
    doc = json.loads(out.read_text())
    res = doc["result"]
    assert res["people"] == 7 and [p["people"] for p in res["parts"]] == [4, 3]
    assert 0.0 <= res["mean_oks"] <= 1.0 and 0.0 <= res["ap"] <= 1.0
    assert set(res["pck_per_keypoint"]) == set(COCO_KEYPOINT_NAMES)
    assert doc["ground_truth"][1]["images"] == str(COCO_IMAGES)
    assert not list(tmp_path.glob(".*.part"))


def test_eval_cli_runs_the_shipped_model_with_and_without_flip_test(tmp_path, capsys):
    """--no-flip scores the model as live mode runs it; the JSON says which."""
    from core.catalogue import shipped_weights
    if shipped_weights() is None:
        pytest.skip("the shipped TransPose-M file is missing")
    results = {}
    for flag in ("--flip", "--no-flip"):
        out = tmp_path / f"{flag}.json"
        assert main.main(["eval", "--gt", str(YOLO_DIR), "--model", "auto", "--device", "cpu",
                          flag, "--json", str(out)]) == 0
        doc = json.loads(out.read_text())
        results[flag] = doc["result"]
        assert doc["protocol"]["flip_test"] is (flag == "--flip")
        assert ("without flip test" in capsys.readouterr().out) is (flag == "--no-flip")
    assert results["--flip"]["people"] == results["--no-flip"]["people"] == 4
    # the mirrored crop changes the heatmaps, so the figures differ
    assert results["--flip"]["mean_oks"] != results["--no-flip"]["mean_oks"]


def _run(*args):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


@pytest.mark.parametrize("case", ["missing", "malformed"])
def test_eval_cli_bad_ground_truth_gives_one_clear_line(case, tmp_path):
    if case == "missing":
        gt = tmp_path / "nowhere"
    else:
        gt = tmp_path / "broken.json"
        gt.write_text('{"images": [], "annotations": [')
    r = _run("eval", "--gt", str(gt), "--model", "mediapipe")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r.stderr
    assert str(gt) in errors[0]
    assert r.stdout == ""


def test_eval_cli_pairs_images_with_the_gt_before_it():
    parser = main.build_parser()
    args = parser.parse_args(["eval", "--gt", "a.json", "--images", "imgs", "--gt", "yolo"])
    assert args.sets == [["a.json", "imgs"], ["yolo", None]]
    args = parser.parse_args(["eval", "--images", "imgs", "--gt", "a.json"])
    assert args.sets == [["a.json", "imgs"]]
    with pytest.raises(SystemExit):
        parser.parse_args(["eval", "--gt", "a.json", "--images", "x", "--images", "y"])


@pytest.mark.parametrize("padding", [1.0, 1.25])
def test_every_model_sees_the_same_context(yolo, padding):
    """A model that pads boxes itself (TransPose x1.25) is given box_enlarge / padding, so
    its crop holds the same context as a model that does not pad (MoveNet)."""
    seen = []

    class Recorder:
        box_padding = padding

        def __call__(self, image, boxes, attention=False):
            from core.types import PoseEstimate
            b = np.asarray(boxes, np.float32)
            seen.append(b)
            return PoseEstimate(boxes=b, keypoints=np.zeros((len(b), 17, 2), np.float32),
                                scores=np.zeros((len(b), 17), np.float32))

    people = yolo.evaluable(3)
    ev.predict_people(Recorder(), yolo, people, box_enlarge=1.25)
    given = np.concatenate(seen[1:])                      # seen[0] is the warm-up call
    gt = np.array([p.box for p in people], np.float32)
    order = np.argsort(gt[:, 0])
    factor = given[np.argsort(given[:, 0])][:, 2] / gt[order][:, 2]
    np.testing.assert_allclose(factor, 1.25 / padding, rtol=1e-3)
