"""The CUDA paths against the CPU (skipped without a GPU; benchmarks/gpu_check.py runs the
same checks with timings on a GPU machine)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA GPU on this machine")

ROOT = Path(__file__).resolve().parents[1]


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check",
                                                  ROOT / "benchmarks" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("variant", ["tp-r-a3", "tp-h-a4"])
def test_cuda_heatmaps_equal_cpu_in_every_precision(variant):
    gc = _gpu_check()
    rows = gc.check_correctness(variant, lambda: gc.reference_model(variant), "cuda",
                                gc.read_photo())
    assert [r["precision"] for r in rows] == ["fp32", "bf16 (auto)", "fp16"]
    for r in rows:
        assert r["ok"], r


def test_cuda_graphs_give_the_shipped_models_keypoints():
    gc = _gpu_check()
    from core.catalogue import shipped_weights
    from core.models import load_weights
    shipped = shipped_weights()
    rows = gc.check_correctness(shipped.stem, lambda: load_weights(shipped, progress=False),
                                "cuda", gc.read_photo(), graphs=True)
    assert [r["precision"] for r in rows] == ["fp32", "bf16", "fp16 (auto)",
                                             "fp16 (auto) + CUDA graphs"]
    for r in rows:          # bf16 is reported, and is why auto chooses fp16 for this model
        assert r["confident"] >= 10 and (r["ok"] or not r["used_by_auto"]), r


def test_cuda_pipeline_runs_the_shipped_model_end_to_end():
    gc = _gpu_check()
    e = gc.end_to_end("cuda", gc.CLIP, 30)
    assert e["frames"] == 30 and e["pose_calls"] >= 30 and np.isfinite(e["e2e_fps"])
