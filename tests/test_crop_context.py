"""Crop contexts: a person cut out with the whole image around their box ("image", the
official crop) or black outside the box x1.25 ("box", as the MoveNet teacher saw people
when it labelled them), the same way in training and at inference."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.errors import InputError
from core.pose.estimator import EstimatorConfig, TransPoseEstimator
from core.pose.preprocess import black_outside, box_to_center_scale, kept_fractions
from core.step import PoseStep, StepConfig
from core.training.data import render_sample
from core.training.transforms import NO_AUGMENT, AugmentConfig
from core.types import Frame

from conftest import reference_model
from test_pipeline import FakePose, OneBoxDetector, PassTracker

INPUT = (192, 256)


@pytest.fixture(scope="module")
def photo(astronaut_path):
    return cv2.imread(str(astronaut_path))


def test_a_plain_crop_keeps_exactly_the_box_x125():
    box = np.array([100.0, 50.0, 80.0, 300.0])      # narrow: the aspect adds width
    _, scale = box_to_center_scale(box, INPUT)
    fx, fy = kept_fractions(box[2:], scale)
    # the crop covers 300 * 0.75 = 225 px of width x1.25; the box x1.25 is 80 * 1.25 of it
    assert fx == pytest.approx(80 / 225) and fy == 1.0
    crop = np.full((256, 192, 3), 200, np.uint8)
    black_outside(crop, (fx, fy))
    margin = round(192 * (1 - fx) / 2)
    assert (crop[:, :margin] == 0).all() and (crop[:, 192 - margin:] == 0).all()
    assert (crop[:, margin:192 - margin] == 200).all()
    # a wide box: the strips go above and below
    wide = np.array([0.0, 0.0, 300.0, 60.0])
    _, scale = box_to_center_scale(wide, INPUT)
    assert kept_fractions(wide[2:], scale) == pytest.approx((1.0, 60 / 400))


def test_the_estimator_blacks_out_only_around_the_boxes_it_is_told_to(photo):
    image_ctx = TransPoseEstimator(reference_model("tp-r-a3"),
                                   EstimatorConfig(device="cpu", crop_context="image"))
    box_ctx = TransPoseEstimator(reference_model("tp-r-a3"),
                                 EstimatorConfig(device="cpu", crop_context="box"))
    assert image_ctx.crop_context == "image" and box_ctx.crop_context == "box"
    # "auto": what the model was trained with, "image" for the official weights
    assert TransPoseEstimator(reference_model("tp-r-a3"),
                              EstimatorConfig(device="cpu")).crop_context == "image"
    boxes = np.array([[180, 20, 150, 480], [150, 200, 250, 250]], np.float32)
    whole = image_ctx._prepare(photo, boxes).crops
    cut = box_ctx._prepare(photo, boxes).crops
    for crop, full, box, scale in zip(cut, whole, boxes,
                                      box_ctx._prepare(photo, boxes).scales):
        fx, fy = kept_fractions(box[2:], scale)
        mx, my = round(192 * (1 - fx) / 2), round(256 * (1 - fy) / 2)
        inside = np.zeros((256, 192), bool)
        inside[my:256 - my, mx:192 - mx] = True
        assert 0 < inside.sum() < inside.size
        np.testing.assert_array_equal(crop[inside], full[inside])
        assert (crop[~inside] == 0).all() and (full[~inside] > 0).any()
    # per box: the first one keeps the whole image around it
    mixed = box_ctx._prepare(photo, boxes, None, ["image", "box"]).crops
    np.testing.assert_array_equal(mixed[0], whole[0])
    np.testing.assert_array_equal(mixed[1], cut[1])
    with pytest.raises(InputError, match="contexts"):
        box_ctx(photo, boxes, contexts=["box"])
    with pytest.raises(InputError, match="contexts"):
        box_ctx(photo, boxes, contexts=["box", "blur"])
    with pytest.raises(InputError, match="crop_context"):
        TransPoseEstimator(reference_model("tp-r-a3"),
                           EstimatorConfig(device="cpu", crop_context="none"))


def test_training_crops_are_cut_as_inference_cuts_them(photo):
    box = np.array([180.0, 20.0, 150.0, 480.0])
    joints = np.stack([np.full(17, 255.0), np.linspace(40, 480, 17)], axis=1)
    weights = np.ones(17, np.float32)
    est = TransPoseEstimator(reference_model("tp-r-a3"),
                             EstimatorConfig(device="cpu", crop_context="box", crop="opencv"))
    inference = est._prepare(photo, box[None]).crops[0]
    sample = render_sample(photo, box, joints, weights, INPUT, (48, 64), 2.0, NO_AUGMENT,
                           context="box")
    # the same warp (cv2) and the same black strips
    np.testing.assert_array_equal(sample.crop_rgb, inference)
    plain = render_sample(photo, box, joints, weights, INPUT, (48, 64), 2.0, NO_AUGMENT)
    assert (plain.crop_rgb[:, :10] > 0).any() and (sample.crop_rgb[:, :10] == 0).all()
    # augmented (scaled, turned): the kept part scales with the crop and holds the
    # upright hull of the turned box, so no joint (all inside the box) falls in a strip
    aug = AugmentConfig(half_body_prob=0.0, color_prob=0.0, occlusion_prob=0.0,
                        blur_prob=0.0, grayscale_prob=0.0)
    for seed in range(12):
        s = render_sample(photo, box, joints, weights, INPUT, (48, 64), 2.0, aug,
                          np.random.default_rng(seed), context="box")
        dark = s.crop_rgb.max(axis=2) == 0
        for x, y in s.joints_input:
            if 0 <= x < 192 and 0 <= y < 256:
                assert not dark[:, int(x)].all() and not dark[int(y)].all(), seed
    # half body: the chosen half's joints' box x1.2 is kept (joints in a line, as here,
    # count as wide as a standing person), not a crop gone black
    half = AugmentConfig(half_body_prob=1.0, scale_factor=0.0, rotation_prob=0.0,
                         flip_prob=0.0, color_prob=0.0, occlusion_prob=0.0, blur_prob=0.0,
                         grayscale_prob=0.0)
    s = render_sample(photo, box, joints, weights, INPUT, (48, 64), 2.0, half,
                      np.random.default_rng(0), context="box")
    kept_cols = (~(s.crop_rgb.max(axis=2) == 0).all(axis=0)).sum()
    assert 0.3 * 192 < kept_cols < 192
    with pytest.raises(InputError, match="context"):
        render_sample(photo, box, joints, weights, INPUT, (48, 64), 2.0, context="blur")


class RecordingPose(FakePose):
    """FakePose that says it sees people black outside their box and records the crop
    contexts it is asked for."""

    crop_context = "box"

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[list[str] | None] = []

    def __call__(self, image, boxes=None, *, attention=False, contexts=None):
        self.asked.append(None if contexts is None else list(contexts))
        return super().__call__(image, boxes, attention=attention)


def test_the_step_blacks_out_around_the_detectors_boxes_only():
    pose = RecordingPose()
    step = PoseStep(OneBoxDetector(), pose, PassTracker(),
                    StepConfig(detect_every=3, follow_turns=False))
    for i in range(4):
        step(Frame(i, i / 30.0, np.full((48, 64, 3), i, np.uint8)))
    # frames 0 and 3: the detector's box; 1 and 2: a box from the last keypoints
    assert pose.asked == [["box"], ["image"], ["image"], ["box"]]
    # a backend without crop contexts is not given the argument
    plain = FakePose()
    step = PoseStep(OneBoxDetector(), plain, PassTracker(), StepConfig(detect_every=3))
    assert len(step(Frame(0, 0.0, np.zeros((48, 64, 3), np.uint8))).people) == 1


def test_the_shipped_model_poses_people_beside_others_better_cut_out_of_their_box():
    """The shipped tp-m-s16 on the evaluation fixtures (2 coco8-pose + 2 COCO images, 7
    people, ground-truth boxes): cut black outside the box x1.25 (its crop_context) it
    scores better than on the whole crop where people stand beside others (measured: OKS
    0.72/0.92/0.89/0.68 against 0.65/0.84/0.88/0.65 for the 4 people of the two images
    whose two people are both posed), and the same alone (0.954 against 0.957). On the
    public set: 0.624 against 0.597 (docs/training-log.md, 2026-12-06)."""
    from core.catalogue import shipped_weights
    from core.datasets import load_keypoint_dataset
    from core.evaluation import evaluate
    from conftest import DATA
    if shipped_weights() is None:
        pytest.skip("the shipped TransPose-M file is missing")
    est = TransPoseEstimator.from_weights(shipped_weights(), EstimatorConfig(device="cpu"))
    assert est.crop_context == "box"
    sets = [load_keypoint_dataset(DATA / "eval" / "coco8-pose"),
            load_keypoint_dataset(DATA / "eval" / "coco-mini" / "annotations" /
                                  "person_keypoints_train2017.json",
                                  DATA / "eval" / "coco-mini" / "train2017")]
    oks = {}
    for context in ("box", "image"):
        est.crop_context = context
        oks[context] = {(p.image, p.annotation_id): p.oks
                        for p in evaluate(est, sets).per_person}
    shared = [k for k in oks["box"] if sum(j[0] == k[0] for j in oks["box"]) > 1
              and oks["image"][k] > 0.5]                # beside another, and posed at all
    alone = [k for k in oks["box"] if sum(j[0] == k[0] for j in oks["box"]) == 1]
    assert len(shared) >= 4 and alone
    gain = np.mean([oks["box"][k] - oks["image"][k] for k in shared])
    assert gain > 0.03, (gain, oks)
    assert all(abs(oks["box"][k] - oks["image"][k]) < 0.02 for k in alone), oks


@pytest.mark.parametrize("name, context", [("movenet", "image"), ("movenet-box", "box")])
def test_the_movenet_entries_cut_people_as_their_catalogue_says(name, context):
    """`--model movenet-box` is MoveNet on each box alone (how it labelled the training
    crops), `--model movenet` the same file on the whole square crop."""
    from core.pose.backends import create_pose_backend
    from core.pose.movenet import default_model_path
    if default_model_path() is None:
        pytest.skip("movenet_thunder.onnx is neither in resources/models nor in ../shared/models")
    pose, _ = create_pose_backend(name, "cpu", progress=False)
    assert pose.config.context == context
