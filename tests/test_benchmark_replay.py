"""The speed benchmarks time "the pose model alone" by replaying the pose calls they recorded
in the pipeline. A replay that drops an argument of those calls times other work than the
pipeline did: when the shipped model began to take crop contexts (its box cut), both
recorders failed outright, unnoticed until the benchmarks were next run. These tests
replay every recorded call of a real run and ask for the very same keypoints."""
from __future__ import annotations

import dataclasses
import importlib.util
import sys

import numpy as np
import pytest

from conftest import DATA, ROOT


def _load(name: str, monkeypatch):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)       # dataclasses look it up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def engine():
    from core.catalogue import shipped_weights
    from core.engine import EngineConfig, build_engine
    if shipped_weights() is None:
        pytest.skip("the shipped TransPose-M file is missing")
    return build_engine(EngineConfig(), progress=False)


@pytest.fixture(scope="module")
def frames():
    from core.video import open_source
    with open_source(DATA / "clip_person.mp4") as src:
        return list(src)


def _run_keeping_outputs(engine, proxy, frames) -> list:
    """The step over `frames` with `proxy` as its pose model; every PoseEstimate the real
    model returned, in order (every call goes through the estimator's predict_many)."""
    outputs: list = []
    real = engine.pose.predict_many

    def keep(requests, **kwargs):
        got = real(requests, **kwargs)
        outputs.extend(got)
        return got
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine.pose, "predict_many", keep)
        step = dataclasses.replace(engine, pose=proxy).step()
        for f in frames:
            step(f)
    return outputs


def _assert_same(replayed, recorded) -> None:
    np.testing.assert_array_equal(replayed.keypoints, recorded.keypoints)
    np.testing.assert_array_equal(replayed.scores, recorded.scores)


def test_pipeline_speed_replays_the_pipelines_pose_calls(engine, frames, monkeypatch):
    bench = _load("pipeline_speed", monkeypatch)
    proxy = bench.RecordingPose(engine.pose)
    outputs = _run_keeping_outputs(engine, proxy, frames)
    requests = [r for call in proxy.calls for r in call]
    assert len(requests) == len(outputs) == len(frames)
    by_print = {bench.fingerprint(f.image): f.image for f in frames}
    # the shipped model is posed at the detector's box (black outside) on the detector's
    # frames and on the whole crop between them: the record must say which
    assert {c for _, _, _, cs, _ in requests for c in cs or ()} == {"box", "image"}
    for (fp, boxes, rotations, contexts, flip), recorded in zip(requests, outputs):
        assert flip
        replayed = engine.pose(by_print[fp], boxes, **bench._crop_options(rotations, contexts))
        _assert_same(replayed, recorded)


def test_gpu_check_replays_the_pipelines_pose_calls(engine, frames, monkeypatch):
    bench = _load("gpu_check", monkeypatch)
    proxy = bench.RecordingPose(engine.pose)
    outputs = _run_keeping_outputs(engine, proxy, frames)
    assert [kind for kind, _ in proxy.calls] == ["one"] * len(frames) == ["one"] * len(outputs)
    for (_, (image, boxes, options)), recorded in zip(proxy.calls, outputs):
        _assert_same(engine.pose(image, boxes, **options), recorded)
    assert proxy.replay() > 0
