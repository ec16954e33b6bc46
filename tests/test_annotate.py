"""`main.py annotate` end to end on a real clip: formats agree, resumability, bad inputs."""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from collections import defaultdict

import pytest

import main
from core.keypoints import COCO_KEYPOINT_NAMES

from conftest import DATA, ROOT

CLIP = DATA / "clip_person.mp4"       # 30 frames, 270x480, a real person walking


@pytest.fixture(scope="module")
def annotated(tmp_path_factory):
    out = tmp_path_factory.mktemp("annotate")
    rc = main.main(["annotate", str(CLIP), "--out", str(out), "--overlay"])
    assert rc == 0
    return out


def test_round_trip_csv_json_overlay_agree(annotated):
    import av
    doc = json.loads((annotated / "clip_person.json").read_text())
    assert doc["schema_version"] == 1
    assert doc["source"]["width"] == 270 and doc["source"]["height"] == 480
    assert doc["source"]["frame_count"] == 30 and doc["source"]["rotation"] == 0
    assert "files" not in doc["source"]                              # (image folders only)
    assert set(doc["model"]) == {"name", "weights", "detector", "smoothing"}
    assert doc["keypoint_names"] == list(COCO_KEYPOINT_NAMES)
    frames = doc["frames"]
    assert [f["frame"] for f in frames] == list(range(30))           # every frame, in order
    times = [f["time_s"] for f in frames]
    assert all(b > a for a, b in zip(times, times[1:]))
    assert sum(len(f["people"]) > 0 for f in frames) >= 27           # the person is found
    # CSV rows equal the JSON keypoints
    rows = list(csv.DictReader((annotated / "clip_person.csv").open()))
    assert list(rows[0]) == ["frame", "time_s", "track_id", "keypoint", "x", "y", "score"]
    from_csv = defaultdict(dict)
    for r in rows:
        from_csv[(int(r["frame"]), int(r["track_id"]))][r["keypoint"]] = r
    n_people = 0
    for f in frames:
        for p in f["people"]:
            n_people += 1
            got = from_csv[(f["frame"], p["track_id"])]
            for name, (x, y, s) in zip(COCO_KEYPOINT_NAMES, p["keypoints"]):
                r = got[name]
                assert float(r["time_s"]) == pytest.approx(f["time_s"], abs=1e-6)
                if x is None:
                    assert r["x"] == "" and r["y"] == ""
                else:
                    assert float(r["x"]) == pytest.approx(x, abs=0.01)
                    assert float(r["y"]) == pytest.approx(y, abs=0.01)
                    # near the frame (a top-down crop may reach past its edge)
                    assert -13.5 <= x <= 283.5 and -24 <= y <= 504
    assert len(rows) == 17 * n_people
    # the overlay has the source's frame count and size
    with av.open(str(annotated / "clip_person.overlay.mp4")) as c:
        s = c.streams.video[0]
        decoded = list(c.decode(s))
    assert len(decoded) == 30 and (decoded[0].width, decoded[0].height) == (270, 480)
    assert not list(annotated.glob("*.part"))


def test_second_run_skips_and_force_redoes(annotated, capsys):
    before = (annotated / "clip_person.json").stat().st_mtime_ns
    assert main.main(["annotate", str(CLIP), "--out", str(annotated), "--overlay"]) == 0
    assert "skipped" in capsys.readouterr().err
    assert (annotated / "clip_person.json").stat().st_mtime_ns == before
    assert main.main(["annotate", str(CLIP), "--out", str(annotated), "--force"]) == 0
    assert (annotated / "clip_person.json").stat().st_mtime_ns != before


def test_bad_inputs_are_reported_and_skipped_others_still_run(tmp_path, capsys):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x13" * 5000)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    out = tmp_path / "out"
    rc = main.main(["annotate", str(tmp_path / "missing.mp4"), str(corrupt), str(empty),
                    str(CLIP), "--out", str(out)])
    assert rc == 1                                   # not every input succeeded
    err = capsys.readouterr().err
    assert err.count("error:") == 3
    for name in ("missing.mp4", "corrupt.mp4", "empty.mp4"):
        assert name in err
    assert (out / "clip_person.csv").exists() and (out / "clip_person.json").exists()
    assert sorted(p.name for p in out.iterdir()) == ["clip_person.csv", "clip_person.json"]


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    r = subprocess.run([sys.executable, str(ROOT / "main.py"), "annotate", str(CLIP), "--out",
                        str(blocker / "sub")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "cannot create the output folder" in r.stderr


def test_disk_full_mid_run_keeps_finished_outputs(tmp_path, monkeypatch, capsys):
    """The second input hits a full disk: its partial files vanish, the first's stay."""
    import errno
    from core.export import sinks
    clip2 = tmp_path / "second.mp4"
    shutil.copy(CLIP, clip2)
    out = tmp_path / "out"

    class FullDisk:
        """A file that accepts 2 kB, then fails like a full disk."""

        def __init__(self, f):
            self.f, self.n = f, 0

        def write(self, text):
            self.n += len(text)
            if self.n > 2000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(text)

        def __getattr__(self, name):
            return getattr(self.f, name)

    real_init = sinks._AtomicTextFile.__init__

    def init(self, path, newline=None):
        real_init(self, path, newline)
        if self.path.name.startswith("second"):
            self.file = FullDisk(self.file)
    monkeypatch.setattr(sinks._AtomicTextFile, "__init__", init)
    rc = main.main(["annotate", str(CLIP), str(clip2), "--out", str(out)])
    assert rc == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "second" in err
    assert sorted(p.name for p in out.iterdir()) == ["clip_person.csv", "clip_person.json"]


def test_a_missing_input_fails_before_the_models_load(tmp_path, monkeypatch, capsys):
    """Every input a typo: the run says so at once instead of loading the models first;
    with a real input beside it, that one is still annotated."""
    import core.commands.annotate as annotate_command
    import main as cli

    def no_models(*args, **kwargs):
        raise AssertionError("the models were loaded for inputs that do not exist")
    monkeypatch.setattr(annotate_command, "build_engine", no_models)
    missing = tmp_path / "clip_persn.mp4"
    assert cli.main(["annotate", str(missing), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.count(f"{missing}: no such file") == 2          # the error, the summary
    assert not list((tmp_path / "out").iterdir())


def test_an_image_folder_of_different_sizes(tmp_path):
    """Photos of different sizes in one folder: each change of size starts afresh (before,
    the person followed from a 270x480 frame gave a box outside the next, 8x8, image and the
    whole folder failed); the JSON gives such a frame's size, and the overlay fits it into
    the video's size, aspect kept."""
    import av
    import cv2
    import numpy as np
    folder = tmp_path / "photos"
    folder.mkdir()
    cap = cv2.VideoCapture(str(CLIP))
    frames = [cap.read()[1] for _ in range(3)]
    cap.release()
    cv2.imwrite(str(folder / "p1.png"), frames[0])
    cv2.imwrite(str(folder / "p2.png"), frames[1])
    cv2.imwrite(str(folder / "p3.png"), frames[2][:8, :8])              # a thumbnail
    # the person again, in a wide photo: the frame, half size, on the left of a grey canvas
    wide = np.full((300, 500, 3), 128, np.uint8)
    wide[30:270, 10:145] = cv2.resize(frames[2], (135, 240), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(folder / "p4.png"), wide)
    out = tmp_path / "out"
    assert main.main(["annotate", str(folder), "--out", str(out), "--overlay"]) == 0
    doc = json.loads((out / "photos.json").read_text())
    assert doc["source"]["files"] == ["p1.png", "p2.png", "p3.png", "p4.png"]   # frame i
    sizes = [(f.get("width"), f.get("height")) for f in doc["frames"]]
    assert sizes == [(None, None), (None, None), (8, 8), (500, 300)]
    ids = [[p["track_id"] for p in f["people"]] for f in doc["frames"]]
    # (the clip has a second person, at its left edge)
    assert ids[0] == ids[1] == [1, 2] and ids[2] == []
    assert len(ids[3]) == 2 and not set(ids[3]) & {1, 2}    # found again, as new people
    for person in doc["frames"][3]["people"]:                # in the wide photo's pixels
        xy = np.array([k[:2] for k in person["keypoints"] if k[0] is not None])
        assert xy[:, 0].max() < 150 and xy[:, 1].min() > 25
    with av.open(str(out / "photos.overlay.mp4")) as c:
        video = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    assert [v.shape[:2] for v in video] == [(480, 270)] * 4
    last = video[3].astype(int)
    # 500x300 fitted into 270x480: 270x162, centred, black above and below
    assert last[:150].max() < 30 and last[-150:].max() < 30
    assert abs(last[170:300, 100:260].mean() - 128) < 12
