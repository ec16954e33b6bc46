"""TFPose: the network's maths, training, checkpoints, the estimator and its explanation.

Runs without ../shared: real samples are the 4 LSPET crops in tests/data/train.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import CheckpointError
from core.models import TFPOSE_CONFIGS, TFPose, build_tfpose, load_weights, save_checkpoint
from core.models.tfpose import deformable_sample, inverse_sigmoid
from core.pose.estimator import EstimatorConfig, TFPoseEstimator, create_estimator

TRAIN_DATA = Path(__file__).resolve().parent / "data" / "train"
MICRO = "tfpose-micro"


def _micro(seed: int = 0) -> TFPose:
    torch.manual_seed(seed)
    return build_tfpose(MICRO).eval()


# ------------------------------------------------------------------------- the network
def test_output_shapes_and_ranges():
    model = _micro()
    cfg = model.config
    x = torch.randn(3, 3, cfg.input_size[1], cfg.input_size[0])
    out = model.run(x, heatmaps=True, explain=True)
    k, d = cfg.num_joints, cfg.dec_layers
    assert out.coords.shape == (d, 3, k, 2)
    assert ((out.coords > 0) & (out.coords < 1)).all()
    assert out.score_logits.shape == (3, k)
    w, h = cfg.heatmap_size
    assert out.heatmaps.shape == (3, k, h, w)
    assert len(out.joint_attention) == d and out.joint_attention[0].shape == (3, cfg.n_heads, k, k)
    torch.testing.assert_close(out.joint_attention[0].sum(-1), torch.ones(3, cfg.n_heads, k))
    s = out.sampling[-1]
    assert s.locations.shape == (3, k, cfg.n_heads, 4, cfg.n_points, 2)
    torch.testing.assert_close(s.weights.sum((-1, -2)), torch.ones(3, k, cfg.n_heads))
    coords, scores = model(x)
    torch.testing.assert_close(coords, out.coords[-1])
    torch.testing.assert_close(scores, out.score_logits.sigmoid())
    with pytest.raises(ValueError, match="does not fit"):
        model.run(torch.randn(1, 3, 96, 64))


def test_iterative_refinement_maths():
    """y_0 = sigmoid(initial), y_d = sigmoid(inverse_sigmoid(y_{d-1}) + dy_d)."""
    model = _micro()
    with torch.no_grad():
        model.initial_coords.copy_(torch.randn_like(model.initial_coords))
    x = torch.randn(2, 3, 64, 64)
    y0 = model.initial_coords.sigmoid()
    out = model.run(x)
    # every refinement head starts at zero: no layer moves the prediction
    for layer in out.coords:
        torch.testing.assert_close(layer, y0.expand_as(layer))
    with torch.no_grad():
        model.refine_heads[0][-1].bias.copy_(torch.tensor([1.0, -2.0]))
        model.refine_heads[1][-1].bias.copy_(torch.tensor([-0.5, 0.25]))
    out = model.run(x)
    y1 = torch.sigmoid(inverse_sigmoid(y0) + torch.tensor([1.0, -2.0]))
    y2 = torch.sigmoid(inverse_sigmoid(y1) + torch.tensor([-0.5, 0.25]))
    torch.testing.assert_close(out.coords[0], y1.expand_as(out.coords[0]))
    torch.testing.assert_close(out.coords[1], y2.expand_as(out.coords[1]))
    v = torch.tensor([0.01, 0.3, 0.5, 0.97])
    torch.testing.assert_close(inverse_sigmoid(v).sigmoid(), v)


def test_deformable_sampling_reads_token_centres_exactly():
    """(u, v) = ((j + 0.5) / w, (i + 0.5) / h) samples token (i, j) of that level exactly;
    halfway between two tokens gives their mean; weights pick levels and points."""
    torch.manual_seed(0)
    shapes = [(4, 6), (2, 3)]
    s = sum(h * w for h, w in shapes)
    value = torch.randn(1, s, 2, 3)                       # N, S, heads, Dh
    loc = torch.zeros(1, 2, 2, 2, 1, 2)                   # N, Q, heads, levels, points, 2
    wts = torch.zeros(1, 2, 2, 2, 1)
    loc[0, 0, :, 0, 0] = torch.tensor([(4 + 0.5) / 6, (1 + 0.5) / 4])   # level 0, token (1, 4)
    wts[0, 0, :, 0, 0] = 1.0
    loc[0, 1, :, 1, 0] = torch.tensor([1.0 / 3, (0 + 0.5) / 2])        # level 1, between (0,0) and (0,1)
    wts[0, 1, :, 1, 0] = 1.0
    out = deformable_sample(value, shapes, loc, wts).view(1, 2, 2, 3)
    torch.testing.assert_close(out[0, 0], value[0, 1 * 6 + 4])
    level1 = value[0, 24:]
    torch.testing.assert_close(out[0, 1], (level1[0] + level1[1]) / 2)


# ------------------------------------------------------------------------- training
def _fixture_people():
    from core.training import labels as L
    from core.training import sources
    people = sources.lspet_people(TRAIN_DATA)
    return L.label_people(people, None)[0]


def test_a_few_steps_lower_the_loss_on_real_samples(one_thread):
    from core.training.data import PoseTrainDataset
    from core.training.objectives import TFPoseObjective
    from core.training.trainer import init_weights
    from core.training.transforms import NO_AUGMENT
    torch.manual_seed(0)
    model = build_tfpose(MICRO)
    init_weights(model)
    model.train()
    ds = PoseTrainDataset(_fixture_people(), model.config.input_size, 1.0, NO_AUGMENT)
    x, y, w, uv = (torch.stack(t) for t in zip(*[ds[i] for i in range(len(ds))]))
    objective = TFPoseObjective(model.config.input_size, model.config.aux_weight)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    first = objective(model, x, y, w, uv)
    assert set(first.parts) == {"reg", "aux", "score"}
    losses, regs = [], []
    for _ in range(40):
        step = objective(model, x, y, w, uv)
        opt.zero_grad()
        step.loss.backward()
        opt.step()
        losses.append(float(step.loss.detach()))
        regs.append(step.parts["reg"])
    assert losses[-1] < 0.6 * losses[0], losses[::8]
    assert regs[-1] < 0.6 * regs[0], regs[::8]


def test_score_target_is_weighted_oks():
    from core.training.objectives import TFPoseObjective
    obj = TFPoseObjective((64, 64))
    uv = torch.full((1, 17, 2), 0.5)
    w = torch.ones(1, 17)
    w[0, 3] = 0.4                       # a teacher label at confidence 0.4
    w[0, 4] = 0.0                       # unlabelled
    t = obj.score_target(uv.clone(), uv, w)
    assert torch.allclose(t[0, :3], torch.ones(3)) and t[0, 3] == pytest.approx(0.4)
    assert t[0, 4] == 0
    far = uv.clone()
    far[..., 0] += 0.25                 # 16 px off in a 64 px crop
    t2 = obj.score_target(far, uv, w)
    assert (t2[0, 5:] < 0.9).all() and (t2[0, 5:] > 0).all()
    assert t2[0, 0] < t2[0, 11]         # a nose is held tighter than a hip (COCO sigmas)


def test_trainer_writes_a_loadable_tfpose(tmp_path, one_thread):
    from core.training.trainer import TrainConfig, train
    cfg = TrainConfig(out=str(tmp_path / "run"), model=MICRO, epochs=1, batch_size=2, lr=2e-3,
                      workers=0, threads=1, val_fraction=0.25, progress=False,
                      warmup_epochs=0.0)
    res = train(cfg, _fixture_people(), log=lambda m: None)
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    assert set(hist[0]["train_parts"]) == {"reg", "aux", "score"}
    assert hist[0]["val_pck05"] is not None
    loaded = load_weights(res.model_path)
    assert isinstance(loaded.model, TFPose) and loaded.config == TFPOSE_CONFIGS[MICRO]


# ------------------------------------------------------------------------- checkpoints
def test_save_load_round_trip(tmp_path):
    model = _micro(1)
    path = save_checkpoint(model, tmp_path / "tf.pth", {"note": "x"})
    raw = torch.load(path, weights_only=True)
    assert raw["arch"] == "tfpose" and raw["config"]["name"] == MICRO
    loaded = load_weights(path)
    assert isinstance(loaded.model, TFPose) and loaded.meta == {"note": "x"}
    x = torch.randn(2, 3, 64, 64)
    for a, b in zip(model(x), loaded.model(x)):
        torch.testing.assert_close(a, b)


def test_bad_tfpose_checkpoints_are_rejected_clearly(tmp_path):
    model = _micro()
    payload = torch.load(save_checkpoint(model, tmp_path / "ok.pth"), weights_only=True)
    bad = dict(payload, state_dict=dict(payload["state_dict"]))
    bad["state_dict"]["initial_coords"] = torch.zeros(5, 2)
    torch.save(bad, tmp_path / "shape.pth")
    with pytest.raises(CheckpointError, match=r"shape.pth: does not fit tfpose-micro.*"
                                              r"initial_coords \(5, 2\)"):
        load_weights(tmp_path / "shape.pth")
    torch.save(payload["state_dict"], tmp_path / "bare.pth")
    with pytest.raises(CheckpointError, match="bare TFPose state_dict"):
        load_weights(tmp_path / "bare.pth")
    torch.save(dict(payload, arch="tfpose-v9"), tmp_path / "arch.pth")
    with pytest.raises(CheckpointError, match="unknown architecture 'tfpose-v9'"):
        load_weights(tmp_path / "arch.pth")
    torch.save(dict(payload, config={**payload["config"], "d_model": 15}), tmp_path / "cfg.pth")
    with pytest.raises(CheckpointError, match="configuration is invalid"):
        load_weights(tmp_path / "cfg.pth")


# ------------------------------------------------------------------------- estimator
def _estimator(tmp_path, **kw) -> TFPoseEstimator:
    path = save_checkpoint(_micro(), tmp_path / "tf.pth")
    est = create_estimator(load_weights(path), EstimatorConfig(device="cpu", **kw))
    assert isinstance(est, TFPoseEstimator) and est.kind == "TFPose"
    return est


def test_crop_coordinates_map_back_to_the_box(tmp_path):
    est = _estimator(tmp_path)
    from core.pose.preprocess import box_to_center_scale
    c, s = box_to_center_scale([40, 30, 64, 64], est.model_config.input_size)
    uv = np.array([[[0.5, 0.5], [0.0, 0.0], [1.0, 1.0]]])
    img = est._to_image(uv, c[None], s[None])[0]
    np.testing.assert_allclose(img[0], c, atol=1e-3)          # the crop centre is the box centre
    # u from 0 to 1 spans the W input pixels (-0.5 .. W - 0.5); the official crop matrix
    # scales input pixels by (side - 1) / (W - 1), side = the crop's side in the image
    w_in = est.model_config.input_size[0]
    side = s[0] * 200
    span = w_in * (side - 1) / (w_in - 1)
    np.testing.assert_allclose(img[2] - img[1], [span, span], rtol=1e-5)
    # a crop turned by 90 degrees (a person lying with the head to the right): same
    # centre, the crop's diagonal turned clockwise on screen
    turned = est._to_image(uv, c[None], s[None], np.array([90.0], np.float32))[0]
    np.testing.assert_allclose(turned[0], c, atol=1e-3)
    np.testing.assert_allclose(turned[2] - turned[1], [-span, span], rtol=1e-4)


def test_estimates_and_explanation_arrays(tmp_path):
    est = _estimator(tmp_path)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (120, 160, 3), np.uint8)
    boxes = [[10, 10, 60, 90], [80, 20, 50, 80]]
    res = est(image, boxes, attention=True)
    cfg = est.model_config
    assert res.keypoints.shape == (2, 17, 2) and res.scores.shape == (2, 17)
    assert ((res.scores > 0) & (res.scores < 1)).all()
    att = res.attention
    assert att.joint_weights.shape == (cfg.dec_layers, 2, cfg.n_heads, 17, 17)
    assert att.sample_points.shape == (cfg.dec_layers, 2, 17, cfg.n_heads, 4, cfg.n_points, 2)
    np.testing.assert_allclose(att.joint_dependencies(1).sum(1), 1, atol=1e-5)
    pts, w = att.sampling(0, 9)
    assert pts.shape == (cfg.n_heads * 4 * cfg.n_points, 2) and w.sum() == pytest.approx(1, 1e-5)
    one = att.select(np.array([1]))
    np.testing.assert_array_equal(one.joint_weights[:, 0], att.joint_weights[:, 1])
    # without attention, and with nobody, the same call works
    plain = est(image, boxes)
    assert plain.attention is None
    np.testing.assert_allclose(plain.keypoints, res.keypoints, atol=1e-4)
    assert len(est(image, np.zeros((0, 4)), attention=True)) == 0


def test_flip_test_is_mirror_symmetric(tmp_path):
    """With flip test, a crop and its mirror give mirrored keypoints (left/right swapped)."""
    est = _estimator(tmp_path, flip_test=True)
    w, h = est.model_config.input_size
    from core.pose.preprocess import to_input_tensor
    rng = np.random.default_rng(1)
    crop = rng.integers(0, 255, (1, h, w, 3), np.uint8)
    a = est._infer(to_input_tensor(crop), False)
    b = est._infer(to_input_tensor(crop[:, :, ::-1].copy()), False)
    from core.keypoints import flip_permutation
    perm = flip_permutation(17)
    mirrored = b["coords"][:, perm].copy()
    mirrored[..., 0] = 1 - mirrored[..., 0]
    np.testing.assert_allclose(a["coords"], mirrored, atol=1e-5)
    np.testing.assert_allclose(a["scores"], b["scores"][:, perm], atol=1e-5)


def test_cli_predict_and_backend_with_a_tfpose_checkpoint(tmp_path, capsys):
    import main
    from core.pose.backends import create_pose_backend
    path = save_checkpoint(_micro(), tmp_path / "tf.pth")
    backend, desc = create_pose_backend(str(path), "cpu")
    assert desc.startswith("TFPose tfpose-micro (") and isinstance(backend, TFPoseEstimator)
    image = sorted((TRAIN_DATA / "images").glob("*.jpg"))[0]
    rc = main.main(["predict", str(image), "--weights", str(path), "--device", "cpu",
                    "--json", str(tmp_path / "p.json"), "--draw", str(tmp_path / "p.png"),
                    "--attention", "left_wrist"])
    assert rc == 0
    assert "left_wrist" in capsys.readouterr().out
    people = json.loads((tmp_path / "p.json").read_text())["people"]
    assert len(people) == 1 and len(people[0]["keypoints"]) == 17
    import cv2
    drawn = cv2.imread(str(tmp_path / "p.png"))
    assert drawn is not None and drawn.shape == cv2.imread(str(image)).shape


def test_annotate_a_video_with_a_tfpose_checkpoint(tmp_path):
    import main
    clip = Path(__file__).resolve().parent / "data" / "clip_person.mp4"
    path = save_checkpoint(_micro(), tmp_path / "tf.pth")
    out = tmp_path / "ann"
    assert main.main(["annotate", str(clip), "--out", str(out), "--model", str(path)]) == 0
    doc = json.loads((out / "clip_person.json").read_text())
    assert doc["model"]["name"] == MICRO and len(doc["frames"]) == 30
    rows = (out / "clip_person.csv").read_text().splitlines()
    assert rows[0].startswith("frame,time_s,track_id,keypoint") and len(rows) > 17



def test_padding_a_batch_to_its_bucket_changes_no_real_crop(tmp_path):
    """The GPU path's padding (see test_estimator) for TFPose's regressed coordinates."""
    plain, padded = _estimator(tmp_path), _estimator(tmp_path)
    padded._pad_to_buckets = True
    rng = np.random.default_rng(2)
    image = rng.integers(0, 255, (120, 160, 3), np.uint8)
    boxes = [[10, 10, 60, 90], [80, 20, 50, 80], [40, 30, 70, 70]]
    a, b = plain(image, boxes, attention=True), padded(image, boxes, attention=True)
    np.testing.assert_allclose(b.keypoints, a.keypoints, atol=1e-3)
    np.testing.assert_allclose(b.scores, a.scores, atol=1e-5)
    np.testing.assert_allclose(b.attention.joint_weights, a.attention.joint_weights, atol=1e-6)
