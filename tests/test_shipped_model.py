"""The shipped default pose model (resources/models/tp-m-s16.pth): it loads safely, `auto`
chooses it, it finds the keypoints of real people, and its attention explains them.

Runs without ../shared: the photos are the in-tree fixtures.
"""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core.pose import backends
from core.pose.estimator import EstimatorConfig, TopDownEstimator, TransPoseEstimator

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "resources" / "models" / "tp-m-s16.pth"
PHOTOS = [ROOT / "tests/data/reference/astronaut.png",
          ROOT / "tests/data/detection/basketball1.png",
          ROOT / "tests/data/detection/coco128_000000000625.jpg",
          ROOT / "tests/data/detection/coco128_000000000536.jpg",
          ROOT / "tests/data/eval/coco-mini/train2017/000000183872.jpg"]

pytestmark = pytest.mark.skipif(not SHIPPED.is_file(), reason=f"{SHIPPED} is not shipped")


@pytest.fixture(scope="module")
def estimator() -> TopDownEstimator:
    return TopDownEstimator.from_weights(SHIPPED, EstimatorConfig(device="cpu"))


def test_shipped_file_is_small_fp16_and_loads_with_weights_only():
    assert SHIPPED.stat().st_size < 20e6
    raw = torch.load(SHIPPED, map_location="cpu", weights_only=True)
    assert raw["format"] == "transpose-studio" and raw["config"]["backbone"] == "movenet"
    assert raw["state_dict"]["stem.conv1.weight"].dtype == torch.float16
    assert all(torch.isfinite(v.float()).all() for v in raw["state_dict"].values())


def test_auto_is_the_shipped_transpose(monkeypatch, tmp_path):
    monkeypatch.setenv("TRANSPOSE_STUDIO_CACHE", str(tmp_path))      # nothing downloaded
    backend, desc = backends.create_pose_backend("auto", device="cpu")
    assert isinstance(backend, TransPoseEstimator)
    assert desc.startswith("TransPose tp-m-s16 (") and "shipped" in desc


def test_astronaut_keypoints_land_where_people_put_them(estimator):
    """Hand-checked spots on scikit-image's astronaut (512x512, box from YOLOX)."""
    img = cv2.imread(str(PHOTOS[0]))
    est = estimator(img, [[11, 20, 357, 487]])
    kp, sc = est.keypoints[0], est.scores[0]
    spots = {0: (224, 122), 1: (243, 108), 2: (207, 107), 5: (322, 262), 6: (98, 255)}
    for k, (x, y) in spots.items():       # nose, eyes, shoulders (the person's left/right)
        assert sc[k] > 0.5
        assert np.hypot(*(kp[k] - (x, y))) < 25, (k, kp[k])
    assert kp[5, 0] > kp[6, 0]             # her left shoulder is on the image's right


def test_scores_are_confidences_between_0_and_1(estimator):
    # the shipped model's heatmaps peak above 1 (a head sharper than its sigma-1 face
    # targets); the keypoint score is that peak, capped at 1
    from core.detection import create_detector
    detector = create_detector("auto")
    peaks, scores = [], []
    for path in PHOTOS:
        img = cv2.imread(str(path))
        boxes = detector(img).boxes
        crops = estimator._prepare(img, boxes).crops
        peaks.append(estimator.heatmaps(crops)[0].flatten(2).amax(-1).numpy().ravel())
        scores.append(estimator(img, boxes).scores.ravel())
    peaks, scores = np.concatenate(peaks), np.concatenate(scores)
    assert (peaks > 1.0).any()                 # so the cap is needed on these photos
    assert scores.min() >= 0.0 and scores.max() <= 1.0
    np.testing.assert_allclose(scores, np.minimum(peaks, 1.0), atol=1e-6)


def test_shipped_model_crops_with_opencv_official_architectures_exactly(estimator):
    from core.models import build_model, get_config
    from core.pose.preprocess import (affine_matrix, black_outside, box_to_center_scale,
                                      crop_person, kept_fractions)
    img = cv2.imread(str(PHOTOS[1]))
    box = [150, 40, 180, 420]
    size = estimator.model_config.input_size
    assert estimator.crop_method == "opencv"
    c, s = box_to_center_scale(box, size)
    by_opencv = cv2.warpAffine(img, affine_matrix(c, s, size), size, flags=cv2.INTER_LINEAR)
    whole = estimator._prepare(img, [box], contexts=["image"]).crops
    np.testing.assert_array_equal(whole[0], by_opencv[..., ::-1])        # BGR in, RGB crop
    # the shipped model sees the person black outside their box x1.25: here the strips the
    # 3:4 aspect added beside this narrow box
    assert estimator.crop_context == "box"
    crops = estimator._prepare(img, [box]).crops
    boxed = black_outside(by_opencv[..., ::-1].copy(), kept_fractions(box[2:], s))
    np.testing.assert_array_equal(crops[0], boxed)
    assert (crops[0][:, :20] == 0).all() and (whole[0][:, :20] > 0).any()
    assert not np.array_equal(crop_person(img, c, s, size, "exact"), by_opencv)
    official = TransPoseEstimator(build_model(get_config("tp-r-a3")), EstimatorConfig(device="cpu"))
    assert official.crop_method == "exact"
    forced = TransPoseEstimator(build_model(get_config("tp-r-a3")),
                                EstimatorConfig(device="cpu", crop="opencv"))
    assert forced.crop_method == "opencv"


def test_stem_split_into_parallel_parts_gives_the_same_keypoints():
    """A batch of crops split into parallel single-threaded onnxruntime calls (the
    default with 2+ threads) gives the keypoints of one multi-threaded call."""
    from core.models.mobilenet_fpn import OnnxRuntimeStem, onnxruntime_available
    if not onnxruntime_available():
        pytest.skip("onnx/onnxruntime are not installed")
    img = cv2.imread(str(PHOTOS[0]))
    boxes = [[11, 20, 368, 507], [60, 40, 250, 400], [0, 0, 511, 511]]   # 3 crops + mirrors
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        split = TopDownEstimator.from_weights(SHIPPED, EstimatorConfig(device="cpu"))
        whole = TopDownEstimator.from_weights(SHIPPED, EstimatorConfig(device="cpu",
                                                                       split_batches=False))
    finally:
        torch.set_num_threads(threads)
    assert isinstance(split.model.stem, OnnxRuntimeStem)
    assert split.model.stem.split_plan(6) == [(1, 1)] * 6
    assert whole.model.stem.split_plan(6) == [(6, 2)]
    a, b = split(img, boxes), whole(img, boxes)
    assert split.model.stem._pool is not None          # the split path ran
    np.testing.assert_allclose(a.keypoints, b.keypoints, atol=0.05)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-3)
    single = split(img, boxes[:1])                      # one crop + mirror: two parts
    np.testing.assert_allclose(single.keypoints, a.keypoints[:1], atol=0.05)
    # more threads than crops (a many-core machine): every thread still works, shared out
    # among the parts, and the features are those of the one session
    from core.models import load_weights
    many = OnnxRuntimeStem(load_weights(SHIPPED, progress=False).model.stem, threads=5)
    assert many.split_plan(2) == [(1, 3), (1, 2)] and many.split_plan(1) == [(1, 5)]
    assert many.split_plan(7) == [(1, 1)] * 7 and many.split_plan(3) == [(1, 2), (1, 2), (1, 1)]
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(2, 3, 256, 192))
                         .astype(np.float32))
    np.testing.assert_allclose(many(x).numpy(), whole.model.stem(x).numpy(), atol=1e-4)
    assert sorted(many._sessions) == [2, 3, 5]


def _attention_of_confident_keypoints(estimator):
    from core.detection import create_detector
    detector = create_detector("auto")
    near, control = [], []
    for path in PHOTOS:
        img = cv2.imread(str(path))
        est = estimator(img, detector(img).boxes, attention=True)
        maps = est.attention
        h, w = maps.grid_hw
        for p in range(len(est)):
            for k in range(17):
                if est.scores[p, k] <= 0.5:
                    continue
                near.append(maps.concentration(p, k, radius=2))
                # control: the same map's mass around the point-mirrored token
                r, c = divmod(int(maps.keypoint_tokens[p, k]), w)
                r, c = h - 1 - r, w - 1 - c
                area = maps.dependency_area(p, k)
                win = area[max(0, r - 2):r + 3, max(0, c - 2):c + 3]
                control.append(float(win.sum() / (win.size / area.size)))
    return np.array(near), np.array(control)


def test_dependency_area_is_concentrated_near_the_keypoint(estimator):
    """How it is measured: for every keypoint scoring above 0.5 on five real photos, the
    last encoder layer's attention row at the keypoint's token (its dependency area, heads
    averaged) is summed over the 5x5 tokens around that token (80x80 px of the 256x192
    crop) and divided by the share uniform attention would put there: 1 = no preference,
    7.7 = everything there. Measured on the shipped model: median 2.0 over 134 keypoints
    (1.7-2.4 per photo), above 1 for ~90%. The control, the same map's mass around the
    point-mirrored token of the crop (often still on the body), has median 1.3. So the
    dependency areas favour the keypoint's neighbourhood about 2x, not exclusively: the
    last layer also looks at the rest of the body."""
    near, control = _attention_of_confident_keypoints(estimator)
    assert len(near) >= 60
    assert np.median(near) > 1.5
    assert (near > 1.0).mean() > 0.85
    assert np.median(near) > 1.3 * np.median(control)


def _heatmaps_under_autocast(est: TransPoseEstimator, crops: np.ndarray,
                             dtype: torch.dtype | None) -> np.ndarray:
    """CPU autocast in `dtype` emulates a GPU's reduced precision (same rounding of the
    inputs of each convolution and matmul, fp32 accumulation)."""
    est.amp_dtype = dtype
    try:
        return est.heatmaps(crops)[0].numpy()
    finally:
        est.amp_dtype = None


def test_the_gpu_auto_precision_keeps_the_shipped_models_heatmaps():
    """On a GPU "auto" runs TransPose-M in fp16, not bf16: in bf16 its MoveNet stem drifts
    (on an H200 its heatmaps moved by 9% of their peak, a confident keypoint by 11 px).
    Emulated here with CPU autocast on the real photos."""
    from core.pose.estimator import auto_precision
    est = TransPoseEstimator.from_weights(SHIPPED, EstimatorConfig(device="cpu",
                                                                   stem_runtime="torch"))
    assert auto_precision(torch.device("cuda"), est.model_config) == "fp16"
    for photo in PHOTOS[:2]:
        img = cv2.imread(str(photo))
        crops = est._prepare(img, [[0, 0, img.shape[1], img.shape[0]]]).crops
        ref = _heatmaps_under_autocast(est, crops, None)
        peak = np.abs(ref).max()
        fp16 = np.abs(_heatmaps_under_autocast(est, crops, torch.float16) - ref).max() / peak
        bf16 = np.abs(_heatmaps_under_autocast(est, crops, torch.bfloat16) - ref).max() / peak
        assert fp16 < 0.01 and bf16 > 3 * fp16, (photo.name, fp16, bf16)


@pytest.mark.parametrize("refine", ["dark", "argmax"])
def test_heatmap_peaks_found_in_torch_agree_with_the_numpy_decoding(estimator, refine):
    """What a GPU decodes on the device (heatmap_peaks_torch, run here on the CPU) against
    the official numpy arithmetic the CPU keeps: the shipped model's heatmaps of five real
    photos, 17 joints each, plus their mirrored and all-zero maps (no peak)."""
    from core.pose.postprocess import heatmap_peaks, heatmap_peaks_torch
    maps = []
    for photo in PHOTOS:
        img = cv2.imread(str(photo))
        crops = estimator._prepare(img, [[0, 0, img.shape[1], img.shape[0]]]).crops
        maps.append(estimator.heatmaps(crops)[0].numpy())
    hm = np.concatenate(maps + [maps[0][..., ::-1], np.zeros_like(maps[0])])
    want_xy, want_max = heatmap_peaks(hm, refine)
    got_xy, got_max = (t.numpy() for t in heatmap_peaks_torch(torch.from_numpy(
        np.ascontiguousarray(hm)), refine))
    np.testing.assert_array_equal(got_max, want_max)
    np.testing.assert_allclose(got_xy, want_xy, rtol=0, atol=1e-3)
    assert (np.abs(want_xy - np.round(want_xy)) > 0.01).mean() > 0.5     # refined, not ints
    assert not got_xy[-1].any()                                           # no peak: (0, 0)


def test_a_failing_stem_part_raises_once_and_leaves_no_part_running():
    """One part of a split batch failing inside onnxruntime (out of memory, say) makes the
    call raise that error, and no helper is left working on the batch afterwards."""
    from core.models import load_weights
    from core.models.mobilenet_fpn import OnnxRuntimeStem, onnxruntime_available
    if not onnxruntime_available():
        pytest.skip("onnx/onnxruntime are not installed")
    stem = OnnxRuntimeStem(load_weights(SHIPPED, progress=False).model.stem, threads=2)
    calls = []
    real = stem._session(1)

    class Failing:
        def run(self, outputs, feeds):
            calls.append(len(feeds["x"]))
            if len(calls) == 2:
                raise RuntimeError("onnxruntime: out of memory")
            return real.run(outputs, feeds)

    stem._sessions[1] = Failing()
    x = torch.zeros(6, 3, 256, 192)
    with pytest.raises(RuntimeError, match="out of memory"):
        stem(x)
    after = len(calls)
    assert after < 6                                   # the others took no new part
    time.sleep(0.2)
    assert len(calls) == after                         # and nothing ran on afterwards
    stem._sessions[1] = real
    assert stem(x[:2]).shape[0] == 2                   # the stem still works


def test_a_damaged_cached_stem_export_is_made_again(tmp_path):
    """The float32 stem runs from an ONNX export cached by the weights' digest. A cached
    file that does not load (damaged on disk) broke every command with the default model
    until the user found and deleted it; it is now exported again."""
    pytest.importorskip("onnxruntime")
    from core.models import load_weights
    from core.models.mobilenet_fpn import OnnxRuntimeStem
    stem = load_weights(SHIPPED, progress=False).model.stem
    first = OnnxRuntimeStem(stem, threads=1, cache_dir=str(tmp_path))
    size = first.path.stat().st_size
    first.path.write_bytes(first.path.read_bytes()[:5000])
    again = OnnxRuntimeStem(stem, threads=1, cache_dir=str(tmp_path))
    assert again.path == first.path and again.path.stat().st_size == size
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(1, 3, 256, 192))
                         .astype(np.float32))
    with torch.no_grad():
        np.testing.assert_allclose(again(x).numpy(), stem(x).numpy(), atol=1e-3)
