"""CSV/JSON/overlay sinks: formats, missing values, atomic completion, write failures."""
from __future__ import annotations

import csv
import errno
import json

import numpy as np
import pytest

from core.errors import InputError
from core.export import (ExportMetadata, KeypointCsvWriter, KeypointJsonWriter, ModelInfo,
                         OverlayVideoWriter, SourceInfo)
from core.keypoints import COCO_KEYPOINT_NAMES
from core.types import PersonPose, PoseFrame

META = ExportMetadata(SourceInfo("clip.mp4", 64, 48, 30.0, 3, 0),
                      ModelInfo("tp-r-a3", "w.pth", "blazepose", "kalman"))


def _frames():
    kp = np.tile(np.array([[10.0, 20.0]], np.float32), (17, 1))
    sc = np.full(17, 0.8, np.float32)
    kp2, sc2 = kp.copy(), sc.copy()
    kp2[3] = np.nan
    sc2[3] = np.nan
    return [
        PoseFrame(0, 0.0, (48, 64), (PersonPose(1, np.array([1, 2, 30, 40], np.float32), 0.9, kp, sc),)),
        PoseFrame(1, 1 / 30, (48, 64), ()),                              # nobody in frame 1
        PoseFrame(2, 2 / 30, (48, 64), (PersonPose(1, np.array([1, 2, 30, 40], np.float32), 0.9, kp2, sc2),
                                        PersonPose(4, np.array([5, 5, 9, 9], np.float32), 0.5, kp, sc))),
    ]


def test_csv_long_format_with_empty_missing_values(tmp_path):
    path = tmp_path / "t.csv"
    with KeypointCsvWriter(path) as w:
        for f in _frames():
            w.write(f)
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["frame", "time_s", "track_id", "keypoint", "x", "y", "score"]
    assert len(rows) == 1 + 17 * 3
    assert rows[1][:4] == ["0", "0.000000", "1", "nose"] and rows[1][4:] == ["10.00", "20.00", "0.8000"]
    missing = [r for r in rows[1:] if r[0] == "2" and r[2] == "1" and r[3] == COCO_KEYPOINT_NAMES[3]][0]
    assert missing[4:] == ["", "", ""]
    assert not list(tmp_path.glob("*.part"))


def test_json_schema_every_frame_and_nulls(tmp_path):
    path = tmp_path / "t.json"
    with KeypointJsonWriter(path, META) as w:
        for f in _frames():
            w.write(f)
    doc = json.loads(path.read_text())
    assert doc["schema_version"] == 1
    assert doc["source"] == {"path": "clip.mp4", "width": 64, "height": 48, "fps": 30.0,
                             "frame_count": 3, "rotation": 0}
    assert doc["model"] == {"name": "tp-r-a3", "weights": "w.pth", "detector": "blazepose",
                            "smoothing": "kalman"}
    assert doc["keypoint_names"] == list(COCO_KEYPOINT_NAMES) and len(doc["skeleton"]) == 19
    assert [f["frame"] for f in doc["frames"]] == [0, 1, 2] and doc["frames"][1]["people"] == []
    p = doc["frames"][2]["people"][0]
    assert p["track_id"] == 1 and p["keypoints"][3] == [None, None, None]
    assert p["keypoints"][0] == [10.0, 20.0, 0.8] and p["box"] == [1, 2, 30, 40]


def test_interrupted_write_leaves_no_finished_file(tmp_path):
    path = tmp_path / "t.json"
    with pytest.raises(RuntimeError):
        with KeypointJsonWriter(path, META) as w:
            w.write(_frames()[0])
            raise RuntimeError("user pressed Ctrl-C")
    assert not path.exists() and not list(tmp_path.iterdir())


def test_disk_full_gives_clear_error_and_removes_partial(tmp_path, monkeypatch):
    w = KeypointCsvWriter(tmp_path / "t.csv")

    def full(_text):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(w._out.file, "write", full)
    with pytest.raises(InputError, match="No space left on device"):
        w.write(_frames()[0])
    assert not list(tmp_path.iterdir())


def test_unwritable_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        KeypointCsvWriter(tmp_path / "no" / "t.csv")


def test_overlay_video_keeps_frame_count_size_and_timing(tmp_path):
    import av
    path = tmp_path / "o.mp4"
    times = [0.0, 0.04, 0.1, 0.25]                      # variable frame rate
    with OverlayVideoWriter(path, 25.0, (47, 63)) as w:  # odd size: padded for yuv420p
        for i, t in enumerate(times):
            img = np.full((47, 63, 3), 40 * i, np.uint8)
            w.write(PoseFrame(i, t, (47, 63), _frames()[0].people, image=img))
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        decoded = [(float(f.pts * f.time_base), f.width, f.height) for f in c.decode(s)]
    assert len(decoded) == 4
    assert [round(t, 3) for t, _, _ in decoded] == times
    assert decoded[0][1:] == (64, 48)
