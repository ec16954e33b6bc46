"""Loading weights: official layouts, common wrappers, our own files, and clear errors."""
from __future__ import annotations

import pytest
import torch

from core.errors import CheckpointError
from core.models import TransPoseConfig, build_model, load_weights, save_checkpoint
from core.models import zoo

from conftest import VARIANTS, reference_state_dict


@pytest.mark.parametrize("variant", VARIANTS)
def test_official_variant_detected_from_keys_and_shapes(variant, tmp_path):
    path = tmp_path / "release.pth"
    torch.save(reference_state_dict(variant), path)
    loaded = load_weights(path)
    assert loaded.variant == variant
    assert not loaded.model.training


@pytest.mark.parametrize("wrap", ["state_dict", "model", "module", "state_dict+module"])
def test_common_wrappers_are_accepted(wrap, tmp_path):
    sd = reference_state_dict("tp-r-a3")
    if "module" in wrap:
        sd = {"module." + k: v for k, v in sd.items()}
    obj = {"state_dict": sd, "epoch": 3} if wrap.startswith("state_dict") else (
        {"model": sd} if wrap == "model" else sd)
    path = tmp_path / "wrapped.pth"
    torch.save(obj, path)
    loaded = load_weights(path)
    assert loaded.variant == "tp-r-a3"
    ref = reference_state_dict("tp-r-a3")
    for k in ("conv1.weight", "final_layer.bias", "global_encoder.layers.2.self_attn.in_proj_weight"):
        assert torch.equal(loaded.model.state_dict()[k], ref[k])


def test_custom_config_round_trip_carries_its_configuration(tmp_path):
    cfg = TransPoseConfig(name="tp-r-small", backbone="resnet", resnet_width=32, d_model=128,
                          dim_feedforward=256, n_heads=4, n_layers=2, input_size=(128, 160))
    model = build_model(cfg).eval()
    path = save_checkpoint(model, tmp_path / "small.pth", meta={"epochs": 1})
    loaded = load_weights(path)            # no flags: the file describes itself
    assert loaded.config == cfg and loaded.meta == {"epochs": 1}
    x = torch.randn(2, 3, 160, 128)
    with torch.inference_mode():
        assert torch.equal(model(x), loaded.model(x))
        assert model(x).shape == (2, 17, 40, 32)
    assert not list(tmp_path.glob("*.tmp"))


def test_custom_hrnet_config_builds_and_runs():
    cfg = TransPoseConfig(name="tp-h-tiny", backbone="hrnet", hrnet_width=16, d_model=32,
                          dim_feedforward=64, n_heads=2, n_layers=1, hrnet_stage3_modules=1,
                          hrnet_blocks=1, input_size=(96, 128), num_joints=17)
    model = build_model(cfg).eval()
    with torch.inference_mode():
        hm, att = model.forward_with_attention(torch.randn(1, 3, 128, 96))
    assert hm.shape == (1, 17, 32, 24)
    assert len(att) == 1 and att[0].shape == (1, 2, 32 * 24, 32 * 24)
    torch.testing.assert_close(att[0].sum(-1), torch.ones(1, 2, 768))


def _error(path) -> str:
    with pytest.raises(CheckpointError) as e:
        load_weights(path)
    msg = str(e.value)
    assert str(path) in msg            # always names the file
    assert "\n" not in msg
    return msg


def test_truncated_checkpoint(tmp_path, random_tp_r_a3_checkpoint):
    data = random_tp_r_a3_checkpoint.read_bytes()
    path = tmp_path / "truncated.pth"
    path.write_bytes(data[: len(data) // 2])
    assert "truncated" in _error(path)


def test_empty_missing_and_folder(tmp_path):
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    assert "empty" in _error(empty)
    assert "no such" in _error(tmp_path / "nope.pth")
    assert "folder" in _error(tmp_path)


def test_checkpoint_of_another_architecture(tmp_path):
    resnet_like = {"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(1000, 2048),
                   "fc.bias": torch.zeros(1000)}
    path = tmp_path / "resnet50.pth"
    torch.save(resnet_like, path)
    msg = _error(path)
    assert "not a TransPose checkpoint" in msg and "fc.weight" in msg


def test_missing_and_misshaped_keys_are_named(tmp_path):
    sd = reference_state_dict("tp-r-a3")
    del sd["reduce.weight"]
    sd["global_encoder.layers.0.norm1.weight"] = torch.ones(128)
    sd["extra.thing"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(sd, path)
    msg = _error(path)
    assert "missing: reduce.weight" in msg
    assert "unexpected: extra.thing" in msg
    assert "global_encoder.layers.0.norm1.weight (128,)" in msg


def test_pickled_objects_are_refused(tmp_path):
    # an instance of an arbitrary class needs full unpickling, which weights_only forbids
    path = tmp_path / "pickled.pth"
    torch.save({"state_dict": reference_state_dict("tp-r-a3"), "model": _Unsafe()}, path)
    assert "refused" in _error(path)


class _Unsafe:
    pass


def test_unknown_custom_state_dict_without_config(tmp_path):
    cfg = TransPoseConfig(name="x", d_model=64, dim_feedforward=128, n_heads=2, n_layers=1)
    path = tmp_path / "bare_custom.pth"
    torch.save(build_model(cfg).state_dict(), path)
    assert "matches no official variant" in _error(path)


def test_zoo_name_loads_from_the_cache_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSPOSE_STUDIO_CACHE", str(tmp_path))
    monkeypatch.setenv("TRANSPOSE_STUDIO_OFFLINE", "1")
    entry = zoo.get_entry("tp-r-a3")
    dest = zoo.models_dir() / entry.filename
    dest.parent.mkdir(parents=True)
    torch.save(reference_state_dict("tp-r-a3"), dest)
    assert load_weights("TP_R_A3").variant == "tp-r-a3"
    dest.unlink()
    with pytest.raises(Exception) as e:
        load_weights("tp-r-a3")
    assert entry.url in str(e.value) and str(dest) in str(e.value)


@pytest.mark.parametrize("seed", range(8))
def test_random_garbage_gives_a_checkpoint_error_never_a_library_exception(seed, tmp_path):
    import random
    rng = random.Random(seed)
    path = tmp_path / "garbage.pth"
    path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(10, 3000))))
    assert "not a readable PyTorch checkpoint" in _error(path)
