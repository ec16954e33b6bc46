"""MoveNet's feature extractor in PyTorch, TransPose-M on it, and the conversion checks."""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core.errors import CheckpointError
from core.models import TransPoseConfig, build_model, load_weights
from core.models.mobilenet_fpn import MoveNetStem, SameConv

ROOT = Path(__file__).resolve().parents[1]
SHARED_ONNX = ROOT.parent / "shared" / "models" / "movenet_thunder.onnx"


def _needs_movenet_onnx():
    if not SHARED_ONNX.is_file():
        pytest.skip(f"{SHARED_ONNX} is absent (../shared not beside the checkout)")
    pytest.importorskip("onnx", reason="the conversion needs the 'onnx' package")
    pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def astronaut_256() -> np.ndarray:
    img = cv2.imread(str(ROOT / "tests" / "data" / "reference" / "astronaut.png"))
    return cv2.resize(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), (256, 256),
                      interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("level", ["fpn16", "fpn4"])
def test_converted_stem_matches_onnxruntime_on_a_real_photo(level, astronaut_256):
    _needs_movenet_onnx()
    from core.models.convert_movenet import convert, onnxruntime_level
    stem = MoveNetStem(level).eval()
    stem.load_state_dict(convert(SHARED_ONNX, level), strict=True)
    from core.pose.preprocess import to_input_tensor
    with torch.no_grad():
        ours = stem(to_input_tensor(astronaut_256[None])).numpy()
    ref = onnxruntime_level(SHARED_ONNX, astronaut_256, level)
    assert ours.shape == ref.shape == (1, stem.out_channels, 256 // stem.stride, 256 // stem.stride)
    # the features are not trivial (a photo of a person lights up many channels)
    assert float(ref.std()) > 0.1 and (ref > 0).mean() > 0.05
    assert float(np.abs(ours - ref).max()) < 1e-3 * max(1.0, float(np.abs(ref).max()))


def test_conversion_refuses_other_files(tmp_path):
    pytest.importorskip("onnx")
    from core.models.convert_movenet import convert
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not a model" * 10)
    with pytest.raises(CheckpointError, match="junk.onnx"):
        convert(junk)
    yolox = ROOT / "resources" / "models" / "yolox_nano_416x416.onnx"
    if yolox.is_file():                      # a real ONNX graph that is not MoveNet
        with pytest.raises(CheckpointError, match="yolox_nano_416x416.onnx.*not MoveNet"):
            convert(yolox)
    with pytest.raises(CheckpointError, match="no such ONNX file"):
        convert(tmp_path / "missing.onnx")


def test_same_padding_is_tensorflows():
    """Stride 2 on an even size pads one pixel at the bottom/right only (TF SAME)."""
    conv = SameConv(1, 1, 2, bias=False)
    torch.nn.init.zeros_(conv.weight)
    with torch.no_grad():
        conv.weight[0, 0, 0, 0] = 1.0            # picks the top-left tap of each window
    x = torch.arange(16.0).view(1, 1, 4, 4)
    y = conv(x)
    # windows start at rows/cols 0 and 2 (no top/left padding): top-left taps 0, 2, 8, 10
    assert y.flatten().tolist() == [0.0, 2.0, 8.0, 10.0]


def _tpm(**kw) -> TransPoseConfig:
    base = dict(name="tp-m-test", backbone="movenet", stem_level="fpn16", input_size=(192, 256),
                d_model=16, dim_feedforward=32, n_heads=2, n_layers=1, head_channels=(8,),
                output="softmax", softmax_sigma=2.0, dropout=0.0)
    base.update(kw)
    return TransPoseConfig(**base)


def test_transpose_m_shapes_attention_and_softmax_heatmaps():
    torch.manual_seed(0)
    model = build_model(_tpm()).eval()
    with torch.no_grad():
        hm, att = model.forward_with_attention(torch.randn(2, 3, 256, 192))
    assert hm.shape == (2, 17, 64, 48)
    assert len(att) == 1 and att[0].shape == (2, 2, 192, 192)      # 16 x 12 tokens
    assert torch.allclose(att[0].sum(-1), torch.ones(2, 2, 192), atol=1e-5)
    # the softmax heatmaps are probabilities x 2*pi*sigma^2
    assert torch.allclose(hm.sum((2, 3)), torch.full((2, 17), 2 * math.pi * 4.0), rtol=1e-4)


@pytest.mark.parametrize("bad", [dict(head_channels=(8, 8, 8)), dict(output="logits"),
                                 dict(stem_level="fpn4"), dict(input_size=(200, 256))])
def test_transpose_m_bad_configs(bad):
    with pytest.raises(ValueError):
        build_model(_tpm(**bad))


def test_fp16_checkpoint_round_trip(tmp_path):
    from core.training.distill import export_fp16
    torch.manual_seed(1)
    model = build_model(_tpm()).eval()
    path = export_fp16(model, tmp_path / "m.pth", {"note": "test"})
    raw = torch.load(path, weights_only=True)
    assert raw["state_dict"]["stem.conv1.weight"].dtype == torch.float16
    assert raw["state_dict"]["pos_embedding"].dtype == torch.float32
    loaded = load_weights(path)
    assert loaded.config == model.config and loaded.meta["note"] == "test"
    x = torch.randn(1, 3, 256, 192)
    with torch.no_grad():
        a, b = model(x), loaded.model(x)
    # float16 weights: the heatmaps agree to a small fraction of their peak
    assert float((a - b).abs().max()) < 0.02 * float(a.max())
