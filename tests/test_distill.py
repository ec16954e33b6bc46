"""TransPose-M distillation: feature cache (checksums, rebuild), training on real samples,
resume, export; the mirrored teacher; the closed-form DARK inverse; live mode without flip.

Runs without ../shared: the stem weights come from the shipped TransPose-M checkpoint
(resources/models), or from ../shared's MoveNet ONNX; the samples are the 4 LSPET crops in
tests/data/train.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import CheckpointError, InputError
from core.keypoints import NUM_KEYPOINTS, flip_permutation
from core.training import labels as L
from core.training import sources
from core.training.distill import (DistillConfig, FeatureCache, distill,
                                   heatmap_ce, load_stem_weights, soft_targets)

ROOT = Path(__file__).resolve().parents[1]
TRAIN_DATA = ROOT / "tests" / "data" / "train"


def _stem_source() -> Path:
    shipped = sorted((ROOT / "resources" / "models").glob("*.pth"))
    if shipped:
        return shipped[0]
    onnx = ROOT.parent / "shared" / "models" / "movenet_thunder.onnx"
    if onnx.is_file():
        return onnx
    pytest.skip("no stem weights: neither a shipped TransPose-M nor ../shared's MoveNet")


@pytest.fixture(scope="module")
def people():
    ppl = sources.lspet_people(TRAIN_DATA)
    kept, _ = L.label_people(ppl, None)
    assert len(kept) == 4
    return kept


def _config(tmp_path: Path, **kw) -> DistillConfig:
    base = dict(out=str(tmp_path / "run"), model="tp-m-micro", stem=str(_stem_source()),
                views=2, epochs=2, batch_size=4, lr=3e-3, threads=1, val_fraction=0.25,
                progress=False)
    base.update(kw)
    return DistillConfig(**base)


def test_soft_targets_and_cross_entropy():
    joints = torch.tensor([[[5.0, 7.0], [100.0, 3.0]]])          # second joint off the map
    weights = torch.ones(1, 2)
    target, w = soft_targets(joints, weights, (16, 12), sigma=2.0)
    assert target.shape == (1, 2, 192) and torch.allclose(target[0, 0].sum(), torch.tensor(1.0))
    assert w.tolist() == [[1.0, 0.0]]
    peak = int(target[0, 0].argmax())
    assert divmod(peak, 12) == (7, 5)                             # row 7, column 5
    # the target's own log is the best logits (CE = its entropy); uniform and a map peaked
    # one cell off are worse
    best = torch.log(target.clamp_min(1e-30)).reshape(1, 2, 16, 12)
    shifted = torch.roll(best, 1, dims=3)
    ce_best = heatmap_ce(best, target, w)
    assert ce_best < heatmap_ce(shifted, target, w) < heatmap_ce(torch.zeros(1, 2, 16, 12), target, w)
    entropy = -(target[0, 0] * torch.log(target[0, 0].clamp_min(1e-30))).sum()
    assert torch.allclose(ce_best, entropy, atol=1e-4)


def test_per_joint_sigma_sharpens_targets_and_keeps_heatmap_peaks_near_one():
    """joint_sigma: a sharper target for some joints (the face), and the softmax head's
    heatmaps scaled per joint so a joint that matches its target still peaks near 1."""
    from core.models import TransPoseConfig
    joints = torch.tensor([[[20.0, 30.0], [20.0, 30.0]]])
    target, _ = soft_targets(joints, torch.ones(1, 2), (64, 48), sigma=[1.0, 2.0])
    sharp, wide = target[0].max(-1).values.tolist()
    assert sharp == pytest.approx(1 / (2 * np.pi * 1.0), rel=0.02)
    assert wide == pytest.approx(1 / (2 * np.pi * 4.0), rel=0.02)
    assert int(target[0, 0].argmax()) == int(target[0, 1].argmax()) == 30 * 48 + 20
    with pytest.raises(ValueError, match="joint_sigma"):
        TransPoseConfig(backbone="movenet", d_model=16, dim_feedforward=32, n_heads=2,
                        n_layers=1, head_channels=(8,), output="softmax", joint_sigma=(1.0,))
    from core.training.distill import DISTILL_CONFIGS
    from core.models import build_model
    cfg = DISTILL_CONFIGS["tp-m-micro"].replace(joint_sigma=(1.0,) * 5 + (2.0,) * 12)
    assert cfg.sigmas()[:5] == (1.0,) * 5 and cfg.sigmas()[5:] == (2.0,) * 12
    assert TransPoseConfig.from_dict(cfg.to_dict()) == cfg        # survives the checkpoint
    model = build_model(cfg)
    logits = torch.log(soft_targets(torch.full((1, 17, 2), 20.0), torch.ones(1, 17), (64, 48),
                                    cfg.sigmas())[0].clamp_min(1e-30)).reshape(1, 17, 64, 48)
    peaks = model.to_heatmaps(logits).flatten(2).max(-1).values[0]
    assert torch.allclose(peaks, torch.ones(17), atol=0.03)


def test_distill_trains_on_real_samples_and_resumes(tmp_path, people):
    logs: list[str] = []
    result = distill(_config(tmp_path), people, log=logs.append)
    hist = result.history
    assert [h.epoch for h in hist] == [1, 2]
    assert hist[1].train_loss < hist[0].train_loss            # it learns
    saved = torch.load(result.model_path, weights_only=True)
    assert saved["config"]["backbone"] == "movenet"
    assert saved["state_dict"]["final_layer.weight"].dtype == torch.float16
    from core.models import load_weights
    assert load_weights(result.model_path).config.name == "tp-m-micro"
    # an interrupted run's last finished epoch can be exported too
    from core.training.distill import export_from_checkpoint
    early = export_from_checkpoint(tmp_path / "run")
    assert early.name == "model-epoch2.pth"
    assert load_weights(early).meta["epochs"] == 2
    # the same --out without resume is refused; with resume and more epochs it continues
    with pytest.raises(InputError, match="already holds a run"):
        distill(_config(tmp_path), people, log=logs.append)
    logs.clear()
    result = distill(_config(tmp_path, epochs=3, resume=True), people, log=logs.append)
    assert any("resumed" in m and "after epoch 2" in m for m in logs)
    assert not any("shards to compute" in m for m in logs)     # the cache was reused
    assert [h.epoch for h in result.history] == [1, 2, 3]


def test_corrupt_cache_shard_is_rebuilt_not_trusted(tmp_path, people):
    logs: list[str] = []
    distill(_config(tmp_path, epochs=1), people, log=logs.append)
    shard = tmp_path / "run" / "features" / "train" / "shard_00000.npz"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF                               # one flipped byte
    shard.write_bytes(bytes(data))
    cache = FeatureCache(shard.parent, json.loads((shard.parent / "index.json").read_text())["key"])
    with pytest.raises(CheckpointError, match="shard_00000.npz: missing or corrupt"):
        cache.load(6)
    logs.clear()
    distill(_config(tmp_path, epochs=2, resume=True), people, log=logs.append)
    assert any("shard_00000.npz is missing or corrupt; rebuilding it" in m for m in logs)


def test_damaged_resume_checkpoint_is_one_clear_error(tmp_path, people):
    distill(_config(tmp_path, epochs=1), people, log=lambda m: None)
    (tmp_path / "run" / "last.ckpt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="last.ckpt: cannot resume"):
        distill(_config(tmp_path, epochs=2, resume=True), people, log=lambda m: None)


def test_bad_stem_file(tmp_path, people):
    bad = tmp_path / "stem.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="stem.pth"):
        load_stem_weights(bad, "fpn16")
    with pytest.raises(InputError, match="no such stem file"):
        load_stem_weights(tmp_path / "missing.onnx", "fpn16")
    with pytest.raises(InputError, match="unknown TransPose-M config"):
        _config(tmp_path, model="tp-m-huge").model_config()


def test_mirrored_teacher_maps_back():
    """A teacher that answers with fixed image positions: its mirrored run must give the
    mirror of those positions with left and right swapped back."""
    w = 100
    pts = np.stack([np.arange(NUM_KEYPOINTS) * 3.0 + 10, np.arange(NUM_KEYPOINTS) + 20.0], 1)

    def backend(image, boxes):
        from core.pose.estimator import PoseEstimate
        # a "person" whose keypoint k sits at pts[k] in whatever image it is given
        return PoseEstimate(boxes=np.asarray(boxes), keypoints=pts[None].astype(np.float32),
                            scores=np.linspace(0.5, 1, NUM_KEYPOINTS)[None].astype(np.float32))

    plain = L.Teacher("fixed", backend)
    mirror = L.MirroredTeacher(plain)
    image = np.zeros((60, w, 3), np.uint8)
    k, s = mirror(image, np.array([[10, 5, 50, 40]]))
    perm = flip_permutation(NUM_KEYPOINTS)
    np.testing.assert_allclose(k[0, :, 0], (w - 1 - pts[:, 0])[perm])
    np.testing.assert_allclose(k[0, :, 1], pts[perm, 1])
    np.testing.assert_allclose(s[0], np.linspace(0.5, 1, NUM_KEYPOINTS)[perm], rtol=1e-6)
    assert mirror.name == "mirror:fixed"
    assert [type(t).__name__ for t in L.create_teachers("movenet-flip:" + str(
        _movenet_or_skip()))] == ["Teacher", "MirroredTeacher"]


def _movenet_or_skip() -> Path:
    p = ROOT.parent / "shared" / "models" / "movenet_thunder.onnx"
    if not p.is_file():
        pytest.skip(f"{p} is absent")
    return p


def test_dark_closed_form_inverse_matches_linalg():
    from core.pose.postprocess import _inv2x2
    rng = np.random.default_rng(0)
    m = rng.normal(size=(3, 17, 2, 2)).astype(np.float32)
    np.testing.assert_allclose(_inv2x2(m), np.linalg.inv(m), rtol=1e-4, atol=1e-5)


def test_live_pipeline_drops_the_flip_test_batch_keeps_it():
    from core.models import TransPoseConfig, build_model
    from core.pipeline import PipelineConfig, PosePipeline
    from core.pose.estimator import EstimatorConfig, TransPoseEstimator
    cfg = TransPoseConfig(name="t", backbone="resnet", resnet_width=8, resnet_blocks=(1, 1),
                          d_model=16, dim_feedforward=32, n_heads=2, n_layers=1,
                          input_size=(64, 96))
    est = TransPoseEstimator(build_model(cfg).eval(), EstimatorConfig(device="cpu"))
    live = PosePipeline([], None, est, None, PipelineConfig(mode="live"))
    batch = PosePipeline([], None, est, None, PipelineConfig(mode="batch"))
    assert live.pose.config.flip_test is False and live.pose.model is est.model
    assert batch.pose is est and est.config.flip_test is True
    keep = PosePipeline([], None, est, None, PipelineConfig(mode="live", live_flip_test=True))
    assert keep.pose is est


def test_skip_head_trains_from_a_warm_start(tmp_path, people):
    """tp-m-micro-skip: the stride-8 level fused into the head; its encoder starts from a
    tp-m-micro run (same d_model), the new fusion layer from scratch."""
    stem = _stem_source()
    from core.models import load_weights
    if stem.suffix == ".pth" and not any(
            k.startswith("stem.lateral.fpn8") for k in load_weights(stem).model.state_dict()):
        onnx = ROOT.parent / "shared" / "models" / "movenet_thunder.onnx"
        if not onnx.is_file():
            pytest.skip("the shipped model's stem stops at stride 16 and ../shared's MoveNet "
                        "is absent")
        stem = onnx
    plain = distill(_config(tmp_path / "a", stem=str(stem), epochs=1), people,
                    log=lambda m: None)
    logs: list[str] = []
    result = distill(_config(tmp_path / "b", stem=str(stem), model="tp-m-micro-skip",
                             init=str(plain.model_path), epochs=2), people, log=logs.append)
    assert any(m.startswith("started from") for m in logs)
    model = load_weights(result.model_path).model
    a = load_weights(plain.model_path).model
    # the encoder came from the plain run (training moved it a little, not from scratch)
    w0 = a.global_encoder.state_dict()
    w1 = model.global_encoder.state_dict()
    first = next(k for k in w0 if k.endswith("weight"))
    assert torch.corrcoef(torch.stack([w0[first].float().flatten(),
                                       w1[first].float().flatten()]))[0, 1] > 0.9
    x = torch.zeros(1, 3, 256, 192)
    with torch.no_grad():
        feats = model.float().features(x)
        assert [f.shape[-2:] for f in feats] == [(16, 12), (32, 24)]
        assert model(x).shape == (1, 17, 64, 48)
    # a warm start from a model whose encoder does not fit is one clear error
    with pytest.raises(CheckpointError, match="encoder does not fit"):
        distill(_config(tmp_path / "c", stem=str(stem), model="tp-m-s16", init=str(plain.model_path),
                        epochs=1, max_steps_per_epoch=1), people, log=lambda m: None)


def test_publish_as_renames_only_a_matching_config(tmp_path, monkeypatch):
    """A run made under an experimental name is published under the registered name when
    only the name differs; weights unchanged, the trained name kept in meta."""
    from core.models import build_model, save_checkpoint
    from core.training.distill import DISTILL_CONFIGS, publish_as
    model = build_model(DISTILL_CONFIGS["tp-m-micro"].replace(name="tp-m-micro-try3"))
    src = save_checkpoint(model, tmp_path / "try.pth", {"epochs": 1})
    out = publish_as(src, "tp-m-micro", tmp_path / "pub.pth")
    raw = torch.load(out, map_location="cpu", weights_only=True)
    assert raw["config"]["name"] == "tp-m-micro" and raw["meta"]["trained_as"] == "tp-m-micro-try3"
    assert raw["meta"]["epochs"] == 1
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in raw["state_dict"].items())
    with pytest.raises(InputError, match="more than the name"):
        publish_as(src, "tp-m-s16", tmp_path / "bad.pth")
    assert not (tmp_path / "bad.pth").exists()
    # the crop context is how inference cuts people out: it may change, and meta says so
    monkeypatch.setitem(DISTILL_CONFIGS, "tp-m-micro-box", DISTILL_CONFIGS["tp-m-micro"].replace(
        name="tp-m-micro-box", crop_context="box"))
    boxed = publish_as(src, "tp-m-micro-box", tmp_path / "boxed.pth")
    raw = torch.load(boxed, map_location="cpu", weights_only=True)
    assert raw["config"]["crop_context"] == "box"
    assert raw["meta"]["trained_crop_context"] == "image"
