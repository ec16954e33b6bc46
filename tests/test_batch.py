"""Batch annotation beyond one process (issue #17): worker processes, shards and Ray give
the same bytes as one process; outputs nobody can corrupt (unique temporary names, a lock
per output, same-stem inputs kept apart, SIGTERM cleaned up like Ctrl-C); and the input
defects found on the way (folders of videos, corrupt images, scrambled timestamps, NaN
weights, paths and file modes in outputs)."""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

import main
from core.batch.locks import OutputLock
from core.batch.plan import assign_keys, expand_inputs, parse_shard, shard
from core.errors import CheckpointError, InputError

from conftest import DATA, ROOT

CLIP = DATA / "clip_person.mp4"       # 30 frames, 270x480, a real person walking
COMPARED = ("csv", "json")


def _frame_count(path: Path) -> int:
    import av
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(c.streams.video[0]))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Two copies of the clip with the same stem in two folders, and a third video."""
    root = tmp_path_factory.mktemp("inputs")
    for sub in ("a", "b"):
        (root / sub).mkdir()
        shutil.copy(CLIP, root / sub / "clip.mp4")
    shutil.copy(CLIP, root / "walk.mp4")
    return root


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory) -> Path:
    """The single-process run every other backend must match: the folder argument takes
    its videos, subfolders with --recursive, same stems mirrored under --out."""
    out = tmp_path_factory.mktemp("reference")
    assert main.main(["annotate", str(inputs), "--recursive", "--out", str(out),
                      "--overlay", "--model", "mediapipe"]) == 0
    return out


def _outputs(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())


def _assert_same(out: Path, reference: Path, overlay: bool = True) -> None:
    expected = ["a/clip.csv", "a/clip.json", "b/clip.csv", "b/clip.json", "walk.csv",
                "walk.json"]
    if overlay:
        expected += ["a/clip.overlay.mp4", "b/clip.overlay.mp4", "walk.overlay.mp4"]
    assert _outputs(out) == sorted(expected)            # no .part, no .lock left
    for name in expected:
        if name.endswith(".mp4"):
            assert _frame_count(out / name) == _frame_count(reference / name) == 30
        else:
            assert (out / name).read_bytes() == (reference / name).read_bytes(), name


# ------------------------------------------------------------------------------ planning
def test_same_stem_inputs_get_distinct_outputs(tmp_path):
    keys = [it.key for it in assign_keys([("x/a/clip.mp4", None), ("x/b/clip.mp4", None),
                                          ("walk.mp4", None)])]
    assert keys == ["a/clip", "b/clip", "walk"]
    keys = [it.key for it in assign_keys([("d/clip.mp4", None), ("d/clip.avi", None)])]
    assert len(set(keys)) == 2 and all(k.startswith("clip") for k in keys)


def test_reference_run_mirrors_same_stems_and_both_survive(reference):
    docs = {n: json.loads((reference / n).read_text()) for n in ("a/clip.json", "b/clip.json")}
    assert docs["a/clip.json"]["source"]["path"].endswith(os.path.join("a", "clip.mp4"))
    assert docs["b/clip.json"]["source"]["path"].endswith(os.path.join("b", "clip.mp4"))
    for doc in docs.values():
        assert doc["source"]["frame_count"] == len(doc["frames"]) == 30
        # no absolute path into the virtualenv
        assert "site-packages" not in doc["model"]["weights"]
        assert not os.path.isabs(doc["model"]["weights"])
    assert (reference / "a/clip.csv").read_bytes() == (reference / "b/clip.csv").read_bytes()


def test_folder_argument_takes_its_videos_images_stay_a_sequence(tmp_path):
    videos = tmp_path / "videos"
    (videos / "sub").mkdir(parents=True)
    (videos / "one.mp4").write_bytes(b"x")
    (videos / "sub" / "two.mov").write_bytes(b"x")
    (videos / "notes.txt").write_text("x")
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "f1.png"), np.zeros((8, 8, 3), np.uint8))
    assert [(i.path, i.key) for i in expand_inputs([str(videos)])] == \
        [(str(videos / "one.mp4"), "one")]
    assert [(i.path, i.key) for i in expand_inputs([str(videos)], recursive=True)] == \
        [(str(videos / "one.mp4"), "one"), (str(videos / "sub" / "two.mov"), "sub/two")]
    assert [(i.path, i.key) for i in expand_inputs([str(frames)])] == [(str(frames), "frames")]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert [(i.path, i.key) for i in expand_inputs([str(empty)])] == [(str(empty), "empty")]
    with pytest.raises(InputError, match="contains no videos"):
        from core.video import folder_inputs
        folder_inputs(empty)



def test_images_beside_videos_are_said_not_annotated(tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "clip.mp4").write_bytes(b"x")
    for name in ("a.png", "b.jpg"):
        cv2.imwrite(str(folder / name), np.zeros((8, 8, 3), np.uint8))
    assert [i.path for i in expand_inputs([str(folder)])] == [str(folder / "clip.mp4")]
    err = capsys.readouterr().err
    assert f"{folder}: the 2 image(s) beside its videos are not annotated" in err
    expand_inputs([str(tmp_path / "mixed" / "clip.mp4")])    # a file alone: nothing said
    assert "image(s)" not in capsys.readouterr().err


def test_shards_cover_the_list_exactly_once():
    items = assign_keys([(f"v{i}.mp4", None) for i in range(11)])
    shares = [shard(items, i, 3) for i in range(3)]
    names = [it.path for s in shares for it in s]
    assert sorted(names) == sorted(it.path for it in items) and len(names) == 11
    assert [it.path for it in shard(list(reversed(items)), 1, 3)] == \
        [it.path for it in reversed(shares[1])]                   # order-independent
    assert parse_shard("2/4") == (2, 4)
    for bad in ("4/4", "-1/2", "1", "a/b"):
        with pytest.raises(InputError, match="--shard"):
            parse_shard(bad)


# ------------------------------------------------------------------------------ backends
def test_workers_give_the_same_bytes(inputs, reference, tmp_path):
    out = tmp_path / "workers"
    assert main.main(["annotate", str(inputs), "--recursive", "--out", str(out), "--overlay",
                      "--model", "mediapipe", "--workers", "2"]) == 0
    _assert_same(out, reference)


def test_two_shards_give_the_same_bytes(inputs, reference, tmp_path, capsys):
    out = tmp_path / "shards"
    for i in range(2):
        assert main.main(["annotate", str(inputs), "--recursive", "--out", str(out),
                          "--model", "mediapipe", "--shard", f"{i}/2"]) == 0
    err = capsys.readouterr().err
    assert "shard 0/2: 2 input(s)" in err and "shard 1/2: 1 input(s)" in err
    _assert_same(out, reference, overlay=False)


def test_ray_gives_the_same_bytes(inputs, reference, tmp_path):
    ray = pytest.importorskip("ray", reason="the [distributed] extra (Ray) is not installed")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    try:
        out = tmp_path / "ray"
        assert main.main(["annotate", str(inputs), "--recursive", "--out", str(out),
                          "--overlay", "--model", "mediapipe", "--ray", "--workers", "2"]) == 0
        assert ray.is_initialized()          # a Ray the caller started is left running
    finally:
        ray.shutdown()
    _assert_same(out, reference)


# ------------------------------------------------------------------------------ outputs
def _annotate_cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, str(ROOT / "main.py"), "annotate", str(CLIP), "--out", str(out),
            "--model", "mediapipe", *extra]


def test_two_concurrent_runs_on_one_output_end_valid(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    runs = [subprocess.Popen(_annotate_cmd(out, "--overlay", "--force"), env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    for r in runs:
        _, err = r.communicate(timeout=300)
        assert r.returncode == 0 and "Traceback" not in err, err
    doc = json.loads((out / "clip_person.json").read_text())       # valid, complete
    assert len(doc["frames"]) == doc["source"]["frame_count"] == 30
    assert _frame_count(out / "clip_person.overlay.mp4") == 30
    assert sorted(p.name for p in out.iterdir()) == \
        ["clip_person.csv", "clip_person.json", "clip_person.overlay.mp4"]


def test_busy_outputs_fail_or_skip_clearly(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    lock = OutputLock(out / "clip_person.lock")
    lock.acquire("fail")                       # another run is writing clip_person.*
    try:
        assert main.main(["annotate", str(CLIP), "--out", str(out), "--model", "mediapipe",
                          "--if-locked", "fail"]) == 1
        err = capsys.readouterr().err
        assert "another run (pid" in err and "is writing these outputs" in err
        assert main.main(["annotate", str(CLIP), "--out", str(out), "--model", "mediapipe",
                          "--if-locked", "skip"]) == 0
        assert "skipped" in capsys.readouterr().err
    finally:
        lock.release()
    assert list(out.iterdir()) == []


def test_parts_of_a_killed_run_are_removed_by_the_next(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    stale = [out / "clip_person.csv.99999-deadbeef.part", out / "clip_person.person1.csv.1-ab.part"]
    other = out / "clip_person2.csv.99999-deadbeef.part"          # another input's: kept
    for p in stale + [other]:
        p.write_text("half")
    assert main.main(["annotate", str(CLIP), "--out", str(out), "--model", "mediapipe"]) == 0
    assert sorted(p.name for p in out.iterdir()) == \
        ["clip_person.csv", "clip_person.json", other.name]


def test_worker_terminated_while_reporting_ready_exits_cleanly():
    """The parent may send SIGTERM while a worker is still starting (CI caught a worker
    that got it inside its "ready" report and died with a traceback)."""
    from core.batch import local
    from core.batch.config import AnnotateConfig

    sent = []

    class Events:
        def put(self, event):
            sent.append(event[0])
            if event[0] == "ready":
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(2)                     # the handler raises in here

    class Tasks:
        def get(self):
            raise AssertionError("a terminated worker must not take an input")

    sigint = signal.getsignal(signal.SIGINT)
    try:
        local._worker_main(0, None, AnnotateConfig(model="mediapipe"), "fail",
                           Tasks(), Events())
    except KeyboardInterrupt as e:
        pytest.fail(f"the worker let {e!r} escape")
    finally:
        signal.signal(signal.SIGINT, sigint)
    assert sent == ["ready", "exit"]


@pytest.mark.parametrize("backend", ["one process", "--workers 2", "--ray"])
def test_sigterm_leaves_no_part_files(tmp_path, backend):
    extra = backend.split() if backend.startswith("--") else []
    if backend == "--ray":
        pytest.importorskip("ray", reason="the [distributed] extra (Ray) is not installed")
        extra += ["--workers", "2"]
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(3):
        shutil.copy(CLIP, inputs / f"c{i}.mp4")
    out = tmp_path / "out"
    run = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "annotate", str(inputs),
                            "--out", str(out), "--model", "mediapipe", "--overlay", *extra],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not list(out.glob("*.part")) and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.02)
    assert list(out.glob("*.part")), "the run never started writing"
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert "interrupted (SIGTERM)" in err and "Traceback" not in err
    left = sorted(p.name for p in out.iterdir())
    assert not [n for n in left if n.endswith((".part", ".lock"))], left
    finished = {n.split(".")[0] for n in left}
    for stem in finished:                         # what is there is complete
        assert sorted(n for n in left if n.split(".")[0] == stem) == \
            [f"{stem}.csv", f"{stem}.json", f"{stem}.overlay.mp4"]


# ------------------------------------------------------------------------------ defects
def test_corrupt_image_is_skipped_and_recorded(tmp_path):
    import av
    frames = tmp_path / "frames"
    frames.mkdir()
    with av.open(str(CLIP)) as c:
        for i, f in enumerate(c.decode(c.streams.video[0])):
            if i >= 4:
                break
            cv2.imwrite(str(frames / f"f{i}.png"), f.to_ndarray(format="bgr24"))
    (frames / "f2.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "out"
    assert main.main(["annotate", str(frames), "--out", str(out), "--model", "mediapipe"]) == 0
    doc = json.loads((out / "frames.json").read_text())
    assert [f["frame"] for f in doc["frames"]] == [0, 1, 3]
    assert doc["source"]["frame_count"] == 3
    assert [s["file"] for s in doc["source"]["skipped_frames"]] == ["f2.png"]


def _scrambled_mkv(path: Path, n: int = 24) -> Path:
    """An intra-only MKV whose timestamps go backwards every third frame."""
    import av
    with av.open(str(path), "w", format="matroska") as out:
        s = out.add_stream("mjpeg", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuvj420p"
        s.time_base = Fraction(1, 1000)
        packets = []
        for i in range(n):
            f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 8, np.uint8), format="bgr24")
            f.pts = i
            packets += list(s.encode(f))
        packets += list(s.encode(None))
        for i, p in enumerate(packets):
            p.time_base = Fraction(1, 1000)
            p.dts = i * 40
            p.pts = i * 40 + (200 if i % 3 == 0 else 0)
            out.mux(p)
    return path


def test_scrambled_timestamps_become_monotonic_with_one_warning(tmp_path, capsys):
    video = _scrambled_mkv(tmp_path / "scrambled.mkv")
    out = tmp_path / "out"
    assert main.main(["annotate", str(video), "--out", str(out), "--model", "mediapipe",
                      "--overlay"]) == 0
    err = capsys.readouterr().err
    # the warning, and again in the summary's note (without the path: the row names it)
    assert err.count("timestamps stop increasing") == 2
    assert err.count(str(video)) == 1 + 1                   # the warning and the summary
    doc = json.loads((out / "scrambled.json").read_text())
    times = [f["time_s"] for f in doc["frames"]]
    assert len(times) == 24 and all(b > a for a, b in zip(times, times[1:]))
    steps = np.diff(times)
    assert np.allclose(steps, 0.04, atol=1e-5)              # an even timeline
    ts = doc["source"]["timestamps"]
    assert ts["method"] == "index/fps" and ts["from_frame"] == 1 and ts["non_increasing"] > 1
    assert _frame_count(out / "scrambled.overlay.mp4") == 24


def test_truncated_video_frame_count_and_one_warning(tmp_path, capsys):
    data = CLIP.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.3)])
    out = tmp_path / "out"
    assert main.main(["annotate", str(cut), "--out", str(out), "--model", "mediapipe"]) == 0
    err = capsys.readouterr().err
    assert err.count("truncated?") == 2                     # the warning, the summary's note
    assert f"{cut}: {cut}" not in err                       # the path is not doubled
    row = next(line for line in err.splitlines() if line.startswith(f"{cut}  done"))
    assert "warning: the file ended after" in row           # not lost above a long table
    doc = json.loads((out / "cut.json").read_text())
    assert 0 < doc["source"]["frame_count"] == len(doc["frames"]) < 30
    assert doc["source"]["ended_early"].startswith(
        f"the file ended after {doc['source']['frame_count']} of the 30 frames")


def _tiny_transpose(tmp_path: Path, value: float | None = None) -> Path:
    import torch
    from core.models import build_model, save_checkpoint
    from core.models.config import TransPoseConfig
    model = build_model(TransPoseConfig(name="tiny", d_model=32, dim_feedforward=64,
                                        n_heads=2, n_layers=1))
    if value is not None:
        with torch.no_grad():
            model.global_encoder.layers[0].linear1.weight[0, 0] = value
    return save_checkpoint(model, tmp_path / "tiny.pth")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_at_load(tmp_path, value):
    from core.models.checkpoint import load_weights
    path = _tiny_transpose(tmp_path, value)
    with pytest.raises(CheckpointError) as e:
        load_weights(path)
    msg = str(e.value)
    assert str(path) in msg and "global_encoder.layers.0.linear1.weight" in msg
    assert "non-finite" in msg
    load_weights(_tiny_transpose(tmp_path))                 # finite weights still load


def test_malicious_pickle_is_refused_not_called_corrupt(tmp_path):
    import torch
    from core.models.checkpoint import load_weights

    path = tmp_path / "evil.pth"
    torch.save({"state_dict": _Evil()}, path)
    with pytest.raises(CheckpointError) as e:
        load_weights(path)
    msg = str(e.value)
    assert "refused" in msg and "system" in msg and "not necessarily corrupt" in msg


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def test_shape_error_names_the_damaged_tensor(tmp_path):
    import torch
    from core.models import build_model
    from core.models.checkpoint import load_weights
    sd = build_model("tp-r-a3").state_dict()
    sd["global_encoder.layers.0.linear1.weight"] = torch.zeros(1024, 100)
    path = tmp_path / "damaged.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match=r"global_encoder\.layers\.0\.linear1\.weight "
                                              r"\(1024, 100\) \(expected \(1024, 256\)\)"):
        load_weights(path)


def test_written_files_have_one_mode_and_strict_json(tmp_path):
    from core.io_utils import atomic_write_json, file_mode
    path = atomic_write_json(tmp_path / "p.json", {"score": float("nan"), "xs": [1.0,
                                                                              math.inf]})
    assert json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(c)) == \
        {"score": None, "xs": [1.0, None]}
    assert path.stat().st_mode & 0o777 == file_mode()
    assert file_mode() == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
