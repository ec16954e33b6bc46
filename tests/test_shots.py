"""New shots (core.shots): a cut in an edited video, the next photo of a folder of photos.
Nobody is followed or tracked across one; on a video without cuts nothing changes."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.shots import ShotChange, ShotConfig, content_value
from core.types import Frame

from conftest import DATA

CLIP = DATA / "clip_person.mp4"                 # 30 frames, 270x480, a person walking
PHOTOS = [DATA / "reference" / "astronaut.png",
          DATA / "eval" / "coco-mini" / "train2017" / "000000489520.jpg",
          DATA / "eval" / "coco8-pose" / "images" / "train" / "000000000049.jpg",
          DATA / "detection" / "coco128_000000000625.jpg",
          DATA / "detection" / "basketball1.png"]


def _clip_frames(n: int = 30) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(CLIP))
    frames = [cap.read()[1] for _ in range(n)]
    cap.release()
    return frames


def _photos(size_wh: tuple[int, int]) -> list[np.ndarray]:
    return [cv2.resize(cv2.imread(str(p)), size_wh, interpolation=cv2.INTER_AREA)
            for p in PHOTOS]


def test_a_cut_and_nothing_else_starts_a_shot():
    shots = ShotChange()
    clip = _clip_frames()
    edited = clip[:12] + _photos((270, 480))[:1] * 3 + clip[12:]
    starts = [i for i, image in enumerate(edited) if shots(image)]
    assert starts == [12, 15]                            # into the photo and back out
    # the walk itself changes little (the largest step of the clip, measured: 5.4)
    shots.forget()
    values = [(shots(image), shots.last_value)[1] for image in clip]
    assert max(values) < 10 and max(values) > 0
    # another size is a new shot whatever the threshold; after forget() nothing is
    shots = ShotChange(ShotConfig(threshold=None))
    assert not shots(clip[0]) and not shots(clip[20])    # content alone: never
    assert shots(clip[0][:200])
    shots.forget()
    assert not shots(clip[0])


def test_hue_is_taken_round_its_circle():
    a = np.zeros((4, 4, 3), np.float32)
    b = a.copy()
    a[..., 0], b[..., 0] = 1.0, 179.0                   # two reds, 2 apart on the circle
    assert content_value(a, b) == pytest.approx(2.0 / 3)


@pytest.fixture(scope="module")
def engine():
    from core.engine import EngineConfig, build_engine
    return build_engine(EngineConfig(), progress=False)


def _people(frame) -> list[np.ndarray]:
    return sorted((p.keypoints for p in frame.people), key=lambda k: float(np.nanmean(k[:, 0])))


def test_each_photo_of_a_folder_gets_what_it_gets_alone(engine):
    """Five photos of one size as an image sequence: before, people were followed from one
    photo into the next and the detector ran on every 5th only, so most photos lost some
    of their people; now each gets exactly the people (and keypoints) it gets on its own,
    with ids of its own."""
    from core.step import run_batch
    photos = [Frame(i, float(i), image) for i, image in enumerate(_photos((640, 480)))]
    folder = list(run_batch(engine.step(mode="batch"), photos))
    ids: set[int] = set()
    for photo, got in zip(photos, folder):
        alone = list(run_batch(engine.step(mode="batch"), [photo]))[0]
        want, have = _people(alone), _people(got)
        assert len(have) == len(want), photo.index
        for a, b in zip(want, have):
            np.testing.assert_allclose(a, b, atol=1e-3)
        now = {p.track_id for p in got.people}
        assert not now & ids                              # nobody carried over
        ids |= now
    assert sum(len(f.people) for f in folder) >= 8


@pytest.mark.parametrize("mode", ["batch", "live"])
def test_a_cut_in_a_video_starts_afresh(engine, mode):
    """The walker, then a cut to a photo of an astronaut for 4 frames: the step looks for
    people on the cut's frame (not in the walker's last box), backfill does not follow the
    astronaut back into the walker's shot, and the astronaut is someone new (shown at once
    in batch mode; live mode shows a new track from its third frame, min_hits)."""
    from core.step import run_batch
    clip = _clip_frames(12)
    astronaut = _photos((270, 480))[0]
    frames = [Frame(i, i / 30, image) for i, image in
              enumerate(clip + [astronaut] * 4)]
    step = engine.step(mode=mode)
    done = list(run_batch(step, frames)) if mode == "batch" else [step(f) for f in frames]
    before = {p.track_id for f in done[:12] for p in f.people}
    shown_from = 0 if mode == "batch" else 2
    after = [{p.track_id for p in f.people} for f in done[12 + shown_from:]]
    assert before and all(after) and not (set().union(*after) & before)
    assert not any(f.people for f in done[12:12 + shown_from])
    if mode == "batch":                 # the cut's frame posed as if it came alone
        alone = list(run_batch(engine.step(mode=mode), [frames[12]]))[0]
        assert len(_people(done[12])) == len(_people(alone)) == 1
        np.testing.assert_allclose(_people(done[12])[0], _people(alone)[0], atol=1e-3)
