"""fuse_for_inference: BatchNorm folded into convolutions, outputs unchanged.

Uses the deterministic reference weights (make_weights.py + keys.json) from
reference_dir(): tests/data/reference, else ../shared/reference, else the test skips.
"""
from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

from core.models import build_model
from core.models.fuse import fold_bn_into_conv, fuse_for_inference

from conftest import reference_dir


def _reference_model(variant: str) -> nn.Module:
    ref = reference_dir()            # skips with the reason when neither location has it
    keys = ref / f"{variant}.keys.json"
    if not keys.exists():
        pytest.skip(f"{keys.name} is not in {ref}")
    spec = importlib.util.spec_from_file_location("make_weights", ref / "make_weights.py")
    make_weights = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_weights)
    model = build_model(variant)
    model.load_state_dict(make_weights.build_state_dict(str(keys)), strict=True)
    return model.eval()


def _count(model: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


@pytest.mark.parametrize("variant, channels_last",
                         [("tp-r-a3", False), ("tp-h-s", False), ("tp-r-a3", True)])
def test_fused_model_matches_unfused(variant, channels_last):
    model = _reference_model(variant)
    keys_before = list(model.state_dict())
    n_bn = _count(model, nn.BatchNorm2d)
    fused = fuse_for_inference(model, channels_last=channels_last)

    assert _count(fused, nn.BatchNorm2d) == 0
    assert not fused.training
    # The input model is untouched (fuse works on a deep copy) ...
    assert _count(model, nn.BatchNorm2d) == n_bn > 0
    assert list(model.state_dict()) == keys_before
    assert all(p.is_contiguous() for p in model.parameters())
    if channels_last:
        assert fused.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    # ... and the fused state_dict is no longer the official layout (documented).
    assert not any(".bn" in k or k.startswith("bn") for k in fused.state_dict())

    x = torch.randn(2, 3, 256, 192, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        hm, att = model.forward_with_attention(x)
        hm_f, att_f = fused.forward_with_attention(x)
        hm_plain_f = fused(x)
    assert hm.shape == hm_f.shape == (2, 17, 64, 48)
    assert (hm_f - hm).abs().max().item() < 1e-4
    assert (hm_plain_f - hm).abs().max().item() < 1e-4
    assert len(att) == len(att_f) == model.config.n_layers
    for a, a_f in zip(att, att_f):
        assert a.shape == a_f.shape
        # Head-averaged attention (what the official model returns and the app shows).
        assert (a_f.mean(1) - a.mean(1)).abs().max().item() < 1e-6
        # Single heads of TP-R (8 heads, peaks up to ~0.3 with these weights) differ by up
        # to ~2.5e-6: float32 rounding of the folded weights, about 1e-5 relative.
        assert (a_f - a).abs().max().item() < 1e-5


@pytest.mark.parametrize("transposed", [False, True])
def test_fold_bn_exact_for_grouped_and_transposed_convs(transposed):
    torch.manual_seed(0)
    if transposed:   # weight layout (in, out/groups, kh, kw)
        conv = nn.ConvTranspose2d(4, 6, 4, 2, 1, groups=2, bias=False)
    else:            # weight layout (out, in/groups, kh, kw), with a bias already
        conv = nn.Conv2d(4, 6, 3, 1, 1, groups=2, bias=True)
    bn = nn.BatchNorm2d(6)
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.normal_()
        bn.bias.normal_()
    seq = nn.Sequential(conv, bn).double().eval()
    x = torch.randn(2, 4, 5, 7, dtype=torch.float64)
    with torch.no_grad():
        expected = seq(x)
        fold_bn_into_conv(conv, bn)
        got = conv(x)
    assert conv.bias is not None
    assert torch.allclose(got, expected, atol=1e-12, rtol=0)


def test_attribute_pairs_and_sequentials_are_found():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(4)
            self.conv2 = nn.Conv2d(4, 4, 1)
            self.bn2 = nn.BatchNorm2d(5)          # not conv2's output: left alone
            self.head = nn.Sequential(nn.Conv2d(4, 5, 1), nn.BatchNorm2d(5), nn.ReLU())

        def forward(self, x):
            return self.head(self.conv2(self.bn1(self.conv1(x))))

    fused = fuse_for_inference(Block())
    assert isinstance(fused.bn1, nn.Identity)
    assert isinstance(fused.bn2, nn.BatchNorm2d)
    assert isinstance(fused.head[1], nn.Identity) and isinstance(fused.head[2], nn.ReLU)
