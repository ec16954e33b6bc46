"""Our TransPose reproduces the official implementation's outputs (../shared/reference).

TP-R-A3 and TP-H-S fixtures are in tests/data; the other three variants use ../shared
and skip without it. Tolerances come from the fixtures' own tolerances.json.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core.keypoints import flip_permutation
from core.models import build_model
from core.pose.postprocess import argmax_coords, decode_heatmaps, flip_back
from core.pose.preprocess import affine_matrix, box_to_center_scale, crop_person, to_input_tensor

from conftest import VARIANTS, reference_file, reference_model


@pytest.mark.parametrize("variant", VARIANTS)
def test_state_dict_layout_equals_official(variant):
    ref = json.loads(reference_file(f"{variant}.keys.json").read_text())
    model = build_model(variant)
    ours = [(k, list(t.shape), str(t.dtype).removeprefix("torch."))
            for k, t in model.state_dict().items()]
    theirs = [(e["key"], e["shape"], e["dtype"]) for e in ref["state_dict"]]
    assert ours == theirs       # same keys, same order, shapes and dtypes
    assert sum(p.numel() for p in model.parameters()) == ref["param_count"]
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == \
        ref["trainable_param_count"]


def _outputs(variant):
    with np.load(reference_file(f"{variant}.npz")) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def forward_results(reference_input):
    """Run each available variant once on the saved input (plain, mirrored, attention)."""
    cache = {}

    def get(variant):
        if variant not in cache:
            model = reference_model(variant)
            x = torch.from_numpy(reference_input["input"])
            with torch.inference_mode():
                hm, att = model.forward_with_attention(x)
                hm_plain = model(x)
                hm_flip = model(x.flip(3))
            cache[variant] = dict(hm=hm.numpy(), hm_plain=hm_plain.numpy(),
                                  hm_flip=hm_flip.numpy(), att=[a.numpy() for a in att])
        return cache[variant]
    return get


@pytest.mark.parametrize("variant", VARIANTS)
def test_heatmaps_flip_and_attention_match_official(variant, forward_results, tolerances):
    ref = _outputs(variant)
    tol = tolerances["variants"][variant]["tolerance"]
    out = forward_results(variant)
    np.testing.assert_allclose(out["hm"], ref["heatmaps"], rtol=0, atol=tol["heatmaps_atol"])
    # the fast path (scaled_dot_product_attention, no weights) gives the same heatmaps
    np.testing.assert_allclose(out["hm_plain"], ref["heatmaps"], rtol=0, atol=tol["heatmaps_atol"])
    # The fixture's "raw" flipped heatmaps were mutated by the official flip_back, which
    # swaps channel pairs in place through a view: they hold our raw output, channel-swapped.
    perm = flip_permutation()
    np.testing.assert_allclose(out["hm_flip"][:, perm], ref["heatmaps_flip_input_raw"], rtol=0,
                               atol=tol["heatmaps_flip_input_raw_atol"])
    avg = (out["hm"] + flip_back(out["hm_flip"])) * 0.5
    np.testing.assert_allclose(avg, ref["heatmaps_flip_avg"], rtol=0,
                               atol=tol["heatmaps_flip_avg_atol"])
    # attention: head-averaged rows at the saved query tokens, every layer
    rows = np.stack([a.mean(axis=1)[0][ref["attn_token_index"]] for a in out["att"]])
    assert rows.shape == ref["attn_rows"].shape
    np.testing.assert_allclose(rows, ref["attn_rows"], rtol=0, atol=tol["attn_rows_atol"])


@pytest.mark.parametrize("variant", VARIANTS)
def test_postprocessing_matches_official_on_stable_keypoints(variant, reference_input, tolerances):
    ref = _outputs(variant)
    tol = tolerances["variants"][variant]["tolerance"]
    stable = ref["stable_keypoints"]
    assert stable.any()
    center, scale = reference_input["center"][None], reference_input["scale"][None]
    image_xy, scores, hm_xy = decode_heatmaps(ref["heatmaps_flip_avg"], center, scale, "dark")
    np.testing.assert_allclose(image_xy[0][stable], ref["final_preds"][0][stable], rtol=0,
                               atol=tol["final_preds_image_px_atol_on_stable"])
    np.testing.assert_allclose(hm_xy[0][stable], ref["final_preds_heatmap_coords"][0][stable],
                               rtol=0, atol=tol["final_preds_heatmap_px_atol_on_stable"])
    np.testing.assert_allclose(scores[..., None], ref["final_maxvals"], rtol=0,
                               atol=tol["maxvals_atol"])
    coords, maxvals = argmax_coords(ref["heatmaps_flip_avg"])
    np.testing.assert_array_equal(coords[0][stable], ref["argmax_preds_heatmap_coords"][0][stable])


def test_preprocessing_matches_official(reference_input, astronaut_path, tolerances):
    import cv2
    tol = tolerances["input"]
    center, scale = box_to_center_scale(reference_input["box_xywh"], (192, 256))
    assert center.dtype == np.float32 and scale.dtype == np.float32
    np.testing.assert_allclose(center, reference_input["center"], atol=tol["center_scale_atol"])
    np.testing.assert_allclose(scale, reference_input["scale"], atol=tol["center_scale_atol"])
    np.testing.assert_allclose(affine_matrix(center, scale, (192, 256)),
                               reference_input["trans_input"], atol=tol["trans_atol"])
    np.testing.assert_allclose(affine_matrix(center, scale, (48, 64), inverse=True),
                               reference_input["trans_heatmap_to_image"], atol=tol["trans_atol"])
    rgb = cv2.cvtColor(cv2.imread(str(astronaut_path)), cv2.COLOR_BGR2RGB)
    x = to_input_tensor(crop_person(rgb, center, scale, (192, 256))[None]).numpy()
    diff = np.abs(x - reference_input["input"])
    assert diff.max() <= tol["input_atol_if_other_bilinear"]
    assert (diff > 1e-6).mean() < 0.001      # 1-level rounding differences are rare


def test_attention_tokens_follow_official_demo_rule(reference_input, forward_results):
    from core.pose.attention import tokens_from_heatmap_coords
    ref = _outputs("tp-r-a3")
    stable = ref["stable_keypoints"]
    tokens = tokens_from_heatmap_coords(ref["final_preds_heatmap_coords"], (32, 24), (192, 256))
    np.testing.assert_array_equal(tokens[0][stable], ref["attn_token_index"][stable])
