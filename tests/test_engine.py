"""The whole engine on real footage: real detector, pose backends, tracker, both modes."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from core.engine import EngineConfig, build_engine
from core.pipeline import PipelineConfig, PipelineFinished, PosePipeline
from core.types import PoseFrame
from core.video import open_source

from conftest import DATA, SHARED, reference_state_dict

CLIP = DATA / "clip_person.mp4"


@pytest.fixture(scope="module")
def mediapipe_engine():
    return build_engine(EngineConfig(model="mediapipe", detector="auto"), progress=False)


def test_batch_run_on_real_clip_tracks_the_person(mediapipe_engine):
    calls: list[int] = []
    detector = mediapipe_engine.detector

    def counting(image):
        calls.append(1)
        return detector(image)
    engine = dataclasses.replace(mediapipe_engine, detector=counting)
    frames: list[PoseFrame] = []
    with open_source(CLIP) as src:
        done = engine.pipeline(src).run(frames.append)
    assert isinstance(done, PipelineFinished) and done.frames == 30 and done.dropped == 0
    assert [f.index for f in frames] == list(range(30))
    with_people = [f for f in frames if f.people]
    assert len(with_people) >= 27
    # the walking person keeps one identity through the clip
    ids = [p.track_id for f in with_people for p in f.people
           if p.box[2] * p.box[3] > 0.1 * 270 * 480]
    assert len(set(ids)) == 1
    person = with_people[-1].people[0]
    ok = np.isfinite(person.keypoints).all(1)
    assert ok.sum() >= 10
    assert (person.keypoints[ok] >= 0).all() and (person.keypoints[ok, 0] <= 270).all()
    # between detections the boxes come from the previous keypoints: with the person
    # followed, the detector runs on at most every 5th frame (detect_every), not on all 30
    assert 1 <= len(calls) <= 30 // mediapipe_engine.config.detect_every + 1


def test_live_mode_on_real_clip(mediapipe_engine):
    frames = []
    with open_source(CLIP) as src:
        p = mediapipe_engine.pipeline(src, mode="live", keep_images=True)
        done = p.run(frames.append)
    assert len(frames) + done.dropped == 30
    assert [f.index for f in frames] == sorted({f.index for f in frames})
    assert all(f.image is not None and f.image.shape == (480, 270, 3) for f in frames)
    assert all(f.timings_ms["latency"] > 0 for f in frames)


def test_transpose_backend_batches_frames_and_people(tmp_path):
    """Several frames' crops in one batch give the same poses as one frame at a time."""
    weights = tmp_path / "tp_r_a3_random.pth"
    torch.save(reference_state_dict("tp-r-a3"), weights)
    engine = build_engine(EngineConfig(model=str(weights), detector="auto", smoothing="none",
                                       detect_every=1, flip_test=False), progress=False)
    assert "TransPose tp-r-a3" in engine.pose_description

    def run(frames_per_batch):
        out = []
        with open_source(CLIP) as src:
            pipe = PosePipeline(src, engine.detector, engine.pose, engine.tracker(),
                                PipelineConfig(detect_every=1, frames_per_batch=frames_per_batch,
                                               pose_nms_oks=1.1))
            pipe.run(out.append)
        return out
    one, four = run(1), run(4)
    assert [f.index for f in four] == list(range(30))
    for a, b in zip(one, four):
        assert len(a.people) == len(b.people)
        for pa, pb in zip(a.people, b.people):
            np.testing.assert_allclose(pa.keypoint_scores, pb.keypoint_scores, atol=1e-4)


def test_attention_travels_with_the_frame(tmp_path):
    weights = tmp_path / "tp_r_a3_random.pth"
    torch.save(reference_state_dict("tp-r-a3"), weights)
    engine = build_engine(EngineConfig(model=str(weights), flip_test=False), progress=False)
    with open_source(CLIP) as src:
        pipe = engine.pipeline(src, attention=True)
        first = next(ev for ev in pipe.start().events(timeout=60) if isinstance(ev, PoseFrame))
        pipe.stop()
    maps = first.attention
    assert maps is not None and maps.weights.shape[:3] == (3, maps.weights.shape[1], 8)
    area = maps.dependency_area(0, 0)
    assert area.shape == (32, 24) and abs(area.sum() - 1) < 1e-3


@pytest.mark.skipif(not (SHARED / "datasets/videos/sports2d_demo.mp4").exists(),
                    reason="../shared/datasets/videos/sports2d_demo.mp4 is absent")
def test_two_people_in_the_sports2d_clip(mediapipe_engine):
    frames = []
    with open_source(SHARED / "datasets/videos/sports2d_demo.mp4") as src:
        src.seek(40)
        pipe = mediapipe_engine.pipeline(src)
        for ev in pipe.start().events(timeout=120):
            if isinstance(ev, PoseFrame):
                frames.append(ev)
                if len(frames) == 40:
                    break
        pipe.stop()
    assert frames[0].index == 40
    assert sum(len(f.people) == 2 for f in frames) >= 30
    ids = {p.track_id for f in frames for p in f.people}
    assert len(ids) == 2


@pytest.mark.parametrize("model, words", [("auto", "need a CUDA device"),
                                          ("mediapipe", "for TransPose models")])
def test_cuda_graphs_are_refused_clearly_where_they_cannot_run(model, words):
    from core.errors import InputError
    with pytest.raises(InputError, match=words):
        build_engine(EngineConfig(model=model, device="cpu", cuda_graphs=True), progress=False)
