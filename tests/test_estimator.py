"""The estimator end to end on a real photo, its options, and the attention helpers."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
import torch

from core.errors import InputError
from core.pose.estimator import EstimatorConfig, TransPoseEstimator, batch_bucket
from core.pose.postprocess import decode_heatmaps

from conftest import reference_file, reference_model


@pytest.fixture(scope="module")
def estimator():
    return TransPoseEstimator(reference_model("tp-r-a3"), EstimatorConfig(device="cpu"))


@pytest.fixture(scope="module")
def photo(astronaut_path):
    return cv2.imread(str(astronaut_path))          # BGR, as OpenCV reads it


def _ref(variant="tp-r-a3"):
    with np.load(reference_file(f"{variant}.npz")) as z:
        return {k: z[k] for k in z.files}


def test_image_in_keypoints_out_matches_official_final_predictions(estimator, photo,
                                                                   reference_input):
    est = estimator(photo, [reference_input["box_xywh"]], attention=True)
    ref = _ref()
    stable = ref["stable_keypoints"]
    assert est.keypoints.shape == (1, 17, 2) and est.scores.shape == (1, 17)
    np.testing.assert_allclose(est.keypoints[0][stable], ref["final_preds"][0][stable], atol=0.01)
    np.testing.assert_allclose(est.scores[0], ref["final_maxvals"][0, :, 0], atol=1e-4)
    # the attention rows at each keypoint's token are the official dependency rows
    maps = est.attention
    assert maps.weights.shape == (3, 1, 8, 768, 768)
    np.testing.assert_array_equal(maps.keypoint_tokens[0][stable], ref["attn_token_index"][stable])
    for kp in np.flatnonzero(stable):
        np.testing.assert_allclose(maps.dependency_area(0, kp, layer=-1).ravel(),
                                   ref["attn_rows"][-1, kp], atol=5e-6)


def test_rgb_input_equals_bgr_input(photo, reference_input):
    model = reference_model("tp-r-a3")
    bgr = TransPoseEstimator(model, EstimatorConfig(device="cpu", color="bgr"))
    rgb = TransPoseEstimator(model, EstimatorConfig(device="cpu", color="rgb"))
    box = [reference_input["box_xywh"]]
    a, b = bgr(photo, box), rgb(photo[..., ::-1].copy(), box)
    np.testing.assert_array_equal(a.keypoints, b.keypoints)


def test_batched_people_equal_one_by_one(estimator, photo):
    boxes = [[18, 9.5, 350, 502], [100, 50, 200, 300], [300, 200, 150, 250]]
    together = estimator(photo, boxes)
    for i, box in enumerate(boxes):
        alone = estimator(photo, [box])
        np.testing.assert_allclose(together.keypoints[i], alone.keypoints[0], atol=1e-3)
        np.testing.assert_allclose(together.scores[i], alone.scores[0], atol=1e-5)


def test_whole_image_is_one_box_by_default(estimator, photo):
    est = estimator(photo)
    np.testing.assert_array_equal(est.boxes, [[0, 0, 512, 512]])


def test_no_flip_and_argmax_options(photo, reference_input):
    model = reference_model("tp-r-a3")
    box = [reference_input["box_xywh"]]
    noflip = TransPoseEstimator(model, EstimatorConfig(device="cpu", flip_test=False))(photo, box)
    ref = _ref()
    np.testing.assert_allclose(noflip.scores[0], ref["heatmaps"][0].reshape(17, -1).max(1), atol=1e-4)
    argmax = TransPoseEstimator(model, EstimatorConfig(device="cpu", refine="argmax"))(photo, box)
    # argmax + quarter offset lands within a quarter heatmap pixel of the plain argmax
    step = float(reference_input["scale"][0]) * 200 / 47    # image px per heatmap px (approx)
    stable = ref["stable_keypoints"]
    diff = np.abs(argmax.keypoints[0][stable] - ref["argmax_preds_image"][0][stable])
    assert diff.max() <= 0.25 * step + 1e-3


def test_quarter_offset_moves_towards_higher_neighbour():
    hm = np.zeros((1, 1, 8, 8), np.float32)
    hm[0, 0, 4, 4], hm[0, 0, 4, 5], hm[0, 0, 3, 4] = 1.0, 0.5, 0.2
    _, _, coords = decode_heatmaps(hm, np.array([[3.5, 3.5]], np.float32),
                                   np.array([[0.035, 0.035]], np.float32), "argmax")
    np.testing.assert_allclose(coords[0, 0], [4.25, 3.75])


@pytest.mark.parametrize("box, words", [([600, 600, 10, 10], "outside"),
                                        ([10, 10, 0, 50], "positive"),
                                        ([10, 10, -5, 50], "positive")])
def test_bad_boxes(estimator, photo, box, words):
    with pytest.raises(InputError, match=words):
        estimator(photo, [box])


def test_bad_image_and_device(estimator):
    with pytest.raises(InputError, match="HxWx3"):
        estimator(np.zeros((10, 10), np.uint8))
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA"):
            TransPoseEstimator(reference_model("tp-r-a3"), EstimatorConfig(device="cuda"))
        with pytest.raises(InputError, match="only supported on a CUDA"):
            TransPoseEstimator(reference_model("tp-r-a3"), EstimatorConfig(precision="bf16"))


def test_attention_maps_in_image_coordinates(estimator, photo, reference_input):
    est = estimator(photo, [reference_input["box_xywh"]], attention=True)
    maps = est.attention
    dep = maps.dependency_area(0, 13)
    assert dep.shape == (32, 24)
    np.testing.assert_allclose(dep.sum(), 1.0, atol=1e-4)       # a softmax row
    img = maps.to_image(dep, 0, photo.shape[:2])
    assert img.shape == photo.shape[:2]
    # geometry: a one-hot grid at the token under an image point comes back at that point
    point = (200.0, 250.0)
    token = maps.token_at(0, point)
    one_hot = np.zeros(32 * 24, np.float32)
    one_hot[token] = 1.0
    back = maps.to_image(one_hot.reshape(32, 24), 0, photo.shape[:2])
    ys, xs = np.nonzero(back > 0.5)
    token_px = 8 / 0.4067                 # one token is 8 input px = ~19.7 image px here
    assert abs(xs.mean() - point[0]) < token_px and abs(ys.mean() - point[1]) < token_px
    # affected area: the column at a point's token; head-specific maps exist for each head
    col = maps.affected_area(0, point, layer=0, head=3)
    np.testing.assert_allclose(col.ravel(), maps.weights[0, 0, 3, :, token])
    # threshold delta removes everything below it
    thr = maps.to_image(dep, 0, photo.shape[:2], delta=float(dep.max()) + 1)
    assert thr.max() == 0


def test_attention_off_costs_nothing_and_changes_nothing(estimator, photo, reference_input):
    box = [reference_input["box_xywh"]]
    plain = estimator(photo, box)
    assert plain.attention is None
    with_att = estimator(photo, box, attention=True)
    # random weights have flat peaks where DARK amplifies float noise: compare the scores
    # everywhere, positions on the reference's stable keypoints
    np.testing.assert_allclose(plain.scores, with_att.scores, atol=1e-4)
    stable = _ref()["stable_keypoints"]
    np.testing.assert_allclose(plain.keypoints[0][stable], with_att.keypoints[0][stable], atol=0.01)


def test_no_people_gives_an_empty_estimate(estimator, photo):
    """A frame where the detector found nobody must not break the pose stage."""
    est = estimator(photo, np.zeros((0, 4), np.float32), attention=True)
    assert est.keypoints.shape == (0, 17, 2) and est.scores.shape == (0, 17)
    assert len(est) == 0 and est.attention is None
    many = estimator.predict_many([(photo, np.zeros((0, 4))), (photo, [[18, 9.5, 350, 502]])])
    assert [len(e) for e in many] == [0, 1]


def test_device_normalisation_equals_the_numpy_path():
    """The GPU path normalises uint8 crops in torch; on any device it must give what the
    CPU path's to_input_tensor gives (same arithmetic, float32)."""
    from core.pose.preprocess import normalise_on_device, to_input_tensor
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (3, 256, 192, 3), dtype=np.uint8)
    ref = to_input_tensor(crops)
    got = normalise_on_device(torch.from_numpy(crops))
    assert got.shape == ref.shape == (3, 3, 256, 192)
    torch.testing.assert_close(got, ref, atol=1e-6, rtol=0)


def test_table_normalisation_is_torchvision_arithmetic_bit_for_bit():
    """to_input_tensor looks each value up in a table; the official pipeline computes
    ToTensor (x / 255) then Normalize ((x - mean) / std) in float32. The numbers must be the
    same to the bit, and the flip test's mirror images exactly the normalised crops
    flipped, as the official flip test makes them."""
    from core.pose.preprocess import IMAGENET_MEAN, IMAGENET_STD, to_input_tensor
    crops = np.random.default_rng(1).integers(0, 256, (3, 256, 192, 3), dtype=np.uint8)
    crops[0, :2].reshape(-1, 3)[:256] = np.arange(256)[:, None]   # every value, each channel
    x = (crops.astype(np.float32) / np.float32(255.0) - IMAGENET_MEAN) / IMAGENET_STD
    ref = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    assert torch.equal(to_input_tensor(crops), ref)
    assert torch.equal(to_input_tensor(crops, mirrored=True), torch.cat([ref, ref.flip(3)]))
    assert to_input_tensor(crops[:0], mirrored=True).shape == (0, 3, 256, 192)
    with pytest.raises(TypeError, match="uint8"):
        to_input_tensor(crops.astype(np.float32))


# ---- the GPU path's batching, checked on the CPU ---------------------------------------
THREE_PEOPLE = [[18, 9.5, 350, 502], [100, 50, 200, 300], [30, 200, 250, 280]]


def test_batch_buckets_are_powers_of_two_up_to_the_batch_size():
    assert [batch_bucket(n, 32) for n in (1, 2, 3, 4, 5, 9, 17, 32)] == \
        [1, 2, 4, 4, 8, 16, 32, 32]
    assert batch_bucket(20, 24) == 24 and batch_bucket(3, 2) == 2


def _first_conv(est) -> torch.nn.Module:
    return next(m for m in est.model.modules() if isinstance(m, torch.nn.Conv2d))


def _forward_batch_sizes(est) -> list[int]:
    """The batch sizes the network's first convolution sees, call after call."""
    sizes: list[int] = []
    _first_conv(est).register_forward_pre_hook(lambda m, args: sizes.append(len(args[0])))
    return sizes


@pytest.mark.parametrize("flip_test", [True, False])
def test_padding_a_batch_to_its_bucket_changes_no_real_crop(photo, flip_test):
    """On a GPU each batch is padded with blank crops to a power-of-two size (few shapes:
    each is planned once); the CPU path does not pad, so switch the padding on here and
    check that the three real people come out as without it."""
    config = EstimatorConfig(device="cpu", flip_test=flip_test)
    plain = TransPoseEstimator(reference_model("tp-r-a3"), config)
    padded = TransPoseEstimator(reference_model("tp-r-a3"), config)
    padded._pad_to_buckets = True
    plain_sizes, padded_sizes = _forward_batch_sizes(plain), _forward_batch_sizes(padded)
    a = plain(photo, THREE_PEOPLE, attention=True)
    b = padded(photo, THREE_PEOPLE, attention=True)
    copies = 2 if flip_test else 1
    assert plain_sizes == [3 * copies] and padded_sizes == [4 * copies]
    np.testing.assert_allclose(b.keypoints, a.keypoints, atol=1e-3)
    np.testing.assert_allclose(b.scores, a.scores, atol=1e-5)
    np.testing.assert_allclose(b.attention.weights, a.attention.weights, atol=1e-6)


def test_network_runs_on_the_estimators_own_thread_shared_with_its_twin(photo):
    """On a GPU the forward runs on one thread per estimator (cuDNN plans and CUDA graphs
    are per thread); its without_flip() twin uses the same thread. Checked on the CPU by
    giving an estimator such a thread."""
    est = TransPoseEstimator(reference_model("tp-r-a3"), EstimatorConfig(device="cpu"))
    expected = est(photo, THREE_PEOPLE[:1])
    est._cuda_thread = ThreadPoolExecutor(1, thread_name_prefix="pose-test")
    names: list[str] = []
    _first_conv(est).register_forward_pre_hook(
        lambda m, args: names.append(threading.current_thread().name))
    got = est(photo, THREE_PEOPLE[:1])
    est.without_flip()(photo, THREE_PEOPLE[:1])
    caller = threading.Thread(target=est, args=(photo, THREE_PEOPLE[:1]))
    caller.start()
    caller.join()
    assert len(names) == 3 and len(set(names)) == 1 and names[0].startswith("pose-test")
    np.testing.assert_array_equal(got.keypoints, expected.keypoints)
    with pytest.raises(InputError, match="HxWx3"):      # errors still reach the caller
        est(photo[..., 0], THREE_PEOPLE[:1])
    est._cuda_thread.shutdown()


def test_cuda_graphs_need_a_cuda_device():
    with pytest.raises(InputError, match="need a CUDA device"):
        TransPoseEstimator(reference_model("tp-r-a3"),
                           EstimatorConfig(device="cpu", cuda_graphs=True))
