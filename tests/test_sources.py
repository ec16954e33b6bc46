"""Frame sources on real data: the in-tree clip (tests/data/clip_person.mp4), clips written here
with PyAV (variable frame rate, display rotation), and the shared videos when ../shared exists."""
from __future__ import annotations

import os
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from core.errors import InputError
from core.video import (CameraConfig, CameraSource, ImageFolderSource, SingleImageSource,
                        VideoFileSource, list_cameras, open_source)
from core.video import file as video_file

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
CLIP = DATA / "clip_person.mp4"
SHARED = Path(os.environ.get("TRANSPOSE_SHARED", ROOT.parent / "shared"))
VIDEOS = SHARED / "datasets" / "videos"
IMAGES = SHARED / "datasets" / "images"


def shared_video(name: str) -> Path:
    path = VIDEOS / name
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared is not mounted here)")
    return path


@pytest.fixture(scope="module")
def clip_frames():
    """Every frame of the test clip, decoded sequentially, with PyAV's own pts."""
    with av.open(str(CLIP)) as c:
        s = c.streams.video[0]
        raw = [(f.pts, f.to_ndarray(format="bgr24")) for f in c.decode(s)]
        tb, start = Fraction(s.time_base), s.start_time or 0
    return [(float((pts - start) * tb), img) for pts, img in raw]


def remux(src: Path, dst: Path, rotation: int | None = None, hflip: bool = False,
          faststart: bool = False) -> Path:
    """Copy the packets of src's video stream into dst (pixels stay bit-identical), optionally
    with a display matrix: PyAV 18 writes it with VideoStream.set_display_rotation."""
    opts = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(src)) as inp, av.open(str(dst), "w", options=opts) as out:
        ins = inp.streams.video[0]
        outs = out.add_stream_from_template(ins)
        if rotation is not None or hflip:
            outs.set_display_rotation(rotation or 0, hflip=hflip)
        for packet in inp.demux(ins):
            if packet.dts is None:              # the flush packet at the end
                continue
            packet.stream = outs
            out.mux(packet)
    return dst


# ---------------------------------------------------------------------------------------------
# Video files


def test_clip_decodes_every_frame_with_exact_times(clip_frames):
    assert CLIP.stat().st_size < 400_000
    with VideoFileSource(CLIP) as src:
        assert src.frame_count == 30 == len(clip_frames)
        assert src.fps == pytest.approx(60.0)
        assert src.size_hw == (480, 270)
        assert src.rotation == 0 and not src.is_live and src.name == "clip_person.mp4"
        frames = list(src)
    assert [f.index for f in frames] == list(range(30))
    times = [f.time_s for f in frames]
    assert times == [t for t, _ in clip_frames]           # exactly (pts - start) * time_base
    assert times[0] == 0.0 and all(b > a for a, b in zip(times, times[1:]))
    assert times[1] == pytest.approx(1 / 60)
    for f, (_, img) in zip(frames, clip_frames):
        assert f.image.dtype == np.uint8 and f.image.shape == (480, 270, 3)
        assert np.array_equal(f.image, img)
    assert src.warnings == [] and src.stopped_reason is None


@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_variable_frame_rate_times_are_the_written_ones(tmp_path, ext):
    written_ms = [200, 233, 250, 320, 330, 400, 480, 481, 600]     # irregular, starts at 0.2 s
    path = tmp_path / f"vfr.{ext}"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for i, ms in enumerate(written_ms):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, np.uint8),
                                               format="bgr24")
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)

    with VideoFileSource(path) as src:
        # mkv has no frame count in its header: it is counted by demuxing
        assert src.frame_count == len(written_ms)
        frames = list(src)
        # times are relative to the stream's start (0.2 s), and exact
        assert [f.time_s for f in frames] == [(ms - 200) / 1000 for ms in written_ms]
        # the pixels are the ones written at those times (grey levels 0, 20, 40, ...)
        assert [round(float(f.image.mean()) / 20) for f in frames] == list(range(len(written_ms)))
        # seeking works in presentation order on VFR too
        assert src.read_at(7).time_s == (481 - 200) / 1000


@pytest.mark.parametrize("degrees, hflip, expect_rotation, upright", [
    (90, False, 270, lambda img: np.rot90(img, 1)),       # PyAV degrees: counter-clockwise
    (-90, False, 90, lambda img: np.rot90(img, -1)),      # the usual phone "rotate=90" case
    (180, False, 180, lambda img: img[::-1, ::-1]),
    (0, True, 0, lambda img: img[:, ::-1]),               # mirrored (front camera)
])
def test_display_rotation_is_applied_to_the_pixels(tmp_path, clip_frames, degrees, hflip,
                                                   expect_rotation, upright):
    path = remux(CLIP, tmp_path / "rotated.mp4", rotation=degrees, hflip=hflip)
    with av.open(str(path)) as c:        # the fixture really carries a display matrix
        assert video_file._display_matrix(next(c.decode(video=0))) is not None
    with VideoFileSource(path) as src:
        assert src.rotation == expect_rotation
        h, w = 480, 270
        assert src.size_hw == ((w, h) if degrees in (90, -90) else (h, w))
        frames = list(src)
    assert len(frames) == 30
    for f, (_, img) in zip(frames, clip_frames):
        assert f.image.shape[:2] == src.size_hw and f.image.flags["C_CONTIGUOUS"]
        # packets were copied, so the decoded pixels are identical, just turned upright
        assert np.abs(f.image.astype(np.int16) - upright(img)).mean() == 0


def test_rotation_can_be_ignored(tmp_path):
    path = remux(CLIP, tmp_path / "rotated.mp4", rotation=90)
    with VideoFileSource(path, video_file.VideoFileConfig(apply_rotation=False)) as src:
        assert src.rotation == 0 and src.size_hw == (480, 270)


def test_seek_is_frame_exact_and_iteration_continues(clip_frames):
    # keyframes at 0, 12, 24; 13 and 17 are B/P frames behind a keyframe; 29 is the last
    with VideoFileSource(CLIP) as src:
        for k in (17, 0, 29, 13, 12, 5, 24):
            frame = src.read_at(k)
            assert frame.index == k
            assert frame.time_s == clip_frames[k][0]
            assert np.array_equal(frame.image, clip_frames[k][1]), f"frame {k} differs"
            nxt = next(iter(src), None)
            if k == 29:
                assert nxt is None
            else:
                assert nxt.index == k + 1 and np.array_equal(nxt.image, clip_frames[k + 1][1])
        src.seek(26)
        assert [f.index for f in src] == [26, 27, 28, 29]
        with pytest.raises(InputError, match="out of range"):
            src.seek(30)


def test_seek_in_a_file_without_pts_falls_back_to_decoding(tmp_path, clip_frames):
    # a raw H.264 elementary stream has no container timestamps at all
    path = tmp_path / "clip.h264"
    with av.open(str(CLIP)) as inp, av.open(str(path), "w", format="h264") as out:
        ins = inp.streams.video[0]
        outs = out.add_stream_from_template(ins)
        for packet in inp.demux(ins):
            if packet.dts is not None:
                packet.stream = outs
                out.mux(packet)
    with VideoFileSource(path) as src:
        assert src.frame_count == 30
        for k in (20, 3):
            assert np.array_equal(src.read_at(k).image, clip_frames[k][1])
        assert next(iter(src)).index == 4


def test_open_source_dispatches(tmp_path):
    img = tmp_path / "one.png"
    cv2.imwrite(str(img), np.zeros((4, 6, 3), np.uint8))
    assert isinstance(open_source(CLIP), VideoFileSource)
    assert isinstance(open_source(str(CLIP)), VideoFileSource)
    assert isinstance(open_source(img), SingleImageSource)
    assert isinstance(open_source(tmp_path), ImageFolderSource)


# ---------------------------------------------------------------------------------------------
# Bad inputs: always an InputError naming the file, or a clean early end


def test_missing_file(tmp_path):
    path = tmp_path / "nope.mp4"
    with pytest.raises(InputError, match="nope.mp4: no such file"):
        open_source(path)


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty.mp4: the file is empty"):
        VideoFileSource(path)


@pytest.mark.parametrize("name", ["notes.txt", "notes.mp4", "script.avi"])
def test_text_file_is_not_a_video(tmp_path, name):
    path = tmp_path / name
    # many lines: FFmpeg's "tty" demuxer would take a .txt for ANSI art
    path.write_text("".join(f"line {i}: plain text, not a video\n" for i in range(60)))
    with pytest.raises(InputError, match=name.replace(".", r"\.")) as e:
        VideoFileSource(path)
    assert "video" in str(e.value)


def test_image_given_as_video(tmp_path):
    jpg = tmp_path / "photo.jpg"
    cv2.imwrite(str(jpg), np.full((32, 48, 3), 128, np.uint8))
    disguised = tmp_path / "photo.mp4"
    disguised.write_bytes(jpg.read_bytes())
    for path in (jpg, disguised):
        with pytest.raises(InputError, match=rf"{path.name}: is a still image, not a video"):
            VideoFileSource(path)


def test_truncated_file_ends_early_and_cleanly(tmp_path):
    # the clip has its index (moov) at the front, so a cut copy opens and ends early
    data = CLIP.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: int(len(data) * 0.3)])
    with VideoFileSource(path) as src:
        assert src.frame_count == 30                        # what the header claims
        frames = list(src)                                  # no exception escapes
        assert 0 < len(frames) < 30
        assert [f.index for f in frames] == list(range(len(frames)))
        assert src.stopped_reason and "truncated" in src.stopped_reason
        assert any("cut.mp4" in w for w in src.warnings)
        with pytest.raises(InputError, match="cut.mp4: frame 25 could not be"):
            src.read_at(25)


def test_truncated_file_with_index_at_the_end_fails_at_open(tmp_path):
    full = remux(CLIP, tmp_path / "full.mp4")               # default muxing: moov at the end
    data = full.read_bytes()
    path = tmp_path / "cut_header.mp4"
    path.write_bytes(data[: int(len(data) * 0.3)])
    with pytest.raises(InputError, match="cut_header.mp4: not a video FFmpeg can read"):
        VideoFileSource(path)


def test_folder_given_as_video(tmp_path):
    with pytest.raises(InputError, match="is a folder"):
        VideoFileSource(tmp_path)


def test_close_from_another_thread_stops_iteration():
    src = VideoFileSource(CLIP)
    seen = []

    def consume():
        for f in src:
            seen.append(f.index)
            time.sleep(0.01)

    t = threading.Thread(target=consume)
    t.start()
    time.sleep(0.05)
    src.close()
    t.join(timeout=5)
    assert not t.is_alive() and 0 < len(seen) < 30
    assert list(src) == []                                  # closed: nothing more
    with pytest.raises(RuntimeError, match="closed"):
        src.read_at(0)


# ---------------------------------------------------------------------------------------------
# Images


def test_image_folder_natural_order_and_times(tmp_path):
    for n in (10, 2, 1, 33):
        cv2.imwrite(str(tmp_path / f"img{n}.png"), np.full((8, 12, 3), n, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.png").write_bytes(b"")
    with ImageFolderSource(tmp_path) as src:
        assert [p.name for p in src.files] == ["img1.png", "img2.png", "img10.png", "img33.png"]
        assert src.frame_count == 4 and src.fps is None and src.size_hw == (8, 12)
        frames = list(src)
        assert [int(f.image[0, 0, 0]) for f in frames] == [1, 2, 10, 33]
        assert [f.time_s for f in frames] == [0.0, 1.0, 2.0, 3.0]     # index as seconds
        assert src.read_at(2).image[0, 0, 0] == 10
        assert next(iter(src)).index == 3
    with ImageFolderSource(tmp_path, fps=4) as src:
        assert [f.time_s for f in src] == [0.0, 0.25, 0.5, 0.75]


def test_image_folder_errors(tmp_path):
    with pytest.raises(InputError, match="contains no images"):
        ImageFolderSource(tmp_path)
    cv2.imwrite(str(tmp_path / "a1.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "a2.png").write_bytes(b"\x89PNG broken")
    src = ImageFolderSource(tmp_path)
    it = iter(src)
    assert next(it).index == 0
    # a corrupt image in a sequence is skipped with a warning, the others kept
    assert list(it) == []
    assert [f["file"] for f in src.skipped_frames] == ["a2.png"]
    assert any("a2.png" in w for w in src.warnings)
    (tmp_path / "a1.png").write_bytes(b"")
    with pytest.raises(InputError, match="none of its 2 images"):
        ImageFolderSource(tmp_path)


def test_single_image(tmp_path):
    img = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    path = tmp_path / "still.png"
    cv2.imwrite(str(path), img)
    with open_source(path) as src:
        assert isinstance(src, SingleImageSource)
        frames = list(src)
    assert len(frames) == 1 and frames[0].index == 0 and frames[0].time_s == 0.0
    assert np.array_equal(frames[0].image, img) and src.frame_count == 1
    with pytest.raises(InputError, match="missing.png"):
        SingleImageSource(tmp_path / "missing.png")


# ---------------------------------------------------------------------------------------------
# Cameras, with a fake cv2.VideoCapture (no camera here)


class FakeCapture:
    """Scripted camera: `plan` is shared by every instance opened (reconnects included).
    Each read pops the next entry: an image, or None for a failed read; once empty, reads fail.
    `openable` says, per open, whether the device opens."""

    plan: list = []
    openable: list = []
    opened: list = []
    read_delay_s = 0.0

    def __init__(self, target, api=None):
        self.target, self.api, self.props, self.released = target, api, {}, False
        self._open = FakeCapture.openable.pop(0) if FakeCapture.openable else True
        FakeCapture.opened.append(self)

    def isOpened(self):
        return self._open

    def set(self, prop, value):
        self.props[prop] = value
        return True

    def get(self, prop):
        return 30.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def read(self):
        time.sleep(FakeCapture.read_delay_s)
        item = FakeCapture.plan.pop(0) if FakeCapture.plan else None
        return (item is not None), item

    def release(self):
        self.released = True


@pytest.fixture
def fake_camera(monkeypatch):
    FakeCapture.plan, FakeCapture.openable, FakeCapture.opened = [], [], []
    FakeCapture.read_delay_s = 0.0
    monkeypatch.setattr(cv2, "VideoCapture", FakeCapture)
    return FakeCapture


def _img(v):
    return np.full((6, 8, 3), v, np.uint8)


def test_camera_frames_then_reconnect_then_clean_stop(fake_camera):
    # first read (probe at open), 3 frames, a failure, a reconnect that works with 2 frames,
    # then the device dies: the reopen attempts fail and the iteration stops cleanly
    fake_camera.plan = [_img(0), _img(1), _img(2), _img(3), None, _img(4), _img(5)]
    fake_camera.openable = [True, True, False, False]
    clock = iter(np.arange(100.0, 200.0, 0.5)).__next__
    cfg = CameraConfig(reconnect_attempts=3, reconnect_delay_s=0.001)
    src = CameraSource("camera:0", cfg, clock=clock)
    assert src.is_live and src.frame_count is None and src.fps == 30.0
    assert src.size_hw == (6, 8) and src.name == "camera:0"
    cap = fake_camera.opened[0]
    assert cap.target == 0 and cap.props[cv2.CAP_PROP_BUFFERSIZE] == 1
    frames = list(src)
    assert [int(f.image[0, 0, 0]) for f in frames] == [1, 2, 3, 4, 5]
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert [f.time_s for f in frames] == [0.0, 0.5, 1.0, 1.5, 2.0]   # relative to first frame
    assert src.reconnects == 1
    # 1 open + 1 good reconnect + the 3 failed attempts of the second outage (refused,
    # refused, opens but delivers nothing)
    assert len(fake_camera.opened) == 5
    assert "3 reconnection attempts failed" in src.stopped_reason
    assert sum("reconnecting" in w for w in src.warnings) == 4
    with pytest.raises(InputError, match="cannot seek"):
        src.seek(0)
    src.close()
    assert all(c.released for c in fake_camera.opened)


def test_camera_device_path(fake_camera):
    fake_camera.plan = [_img(0), _img(1)]
    with open_source("/dev/video2") as src:
        assert isinstance(src, CameraSource)
        assert fake_camera.opened[0].target == "/dev/video2"


def test_no_camera(fake_camera):
    fake_camera.openable = [False]
    with pytest.raises(InputError, match=r"no camera at camera:0 \("):
        open_source("camera:0")
    fake_camera.openable = [True]                # opens, but never delivers a frame
    with pytest.raises(InputError, match="camera:3: the camera opened but delivered no frame"):
        CameraSource("camera:3")
    with pytest.raises(InputError, match="not a camera"):
        CameraSource("camera:x")


def test_camera_close_from_another_thread(fake_camera):
    fake_camera.plan = [_img(i % 250) for i in range(10_000)]
    fake_camera.read_delay_s = 0.005             # a blocking read, as a real camera's
    src = CameraSource("camera:1")
    seen = []
    t = threading.Thread(target=lambda: seen.extend(f.index for f in src))
    t.start()
    time.sleep(0.1)
    src.close()
    t.join(timeout=5)
    assert not t.is_alive() and len(seen) > 0 and fake_camera.opened[0].released
    assert src.stopped_reason is None            # stopped on request, not by failure


def test_list_cameras_probes_the_device_nodes_and_keeps_those_that_open(tmp_path,
                                                                         monkeypatch):
    import sys
    import core.video.camera as camera
    for name in ("video0", "video2", "video10", "videoX", "video2.lock"):
        (tmp_path / name).touch()
    probed = []

    class FakeCapture:
        def __init__(self, index, backend):
            probed.append(index)
            self.index = index

        def isOpened(self):
            return self.index == 2          # video0 exists but is not a capture device

        def release(self):
            pass
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(camera.cv2, "VideoCapture", FakeCapture)
    assert list_cameras(devices=tmp_path) == ["camera:2"]
    assert sorted(probed) == [0, 2]         # video10 is past max_index, videoX not a node


# ---------------------------------------------------------------------------------------------
# Shared videos (skip without ../shared)


def test_shared_sports2d_vp9_with_audio():
    with VideoFileSource(shared_video("sports2d_demo.mp4")) as src:
        assert src.codec == "vp9"
        assert src.frame_count == 230 and src.fps == pytest.approx(30.0)
        assert src.size_hw == (994, 1768) and src.rotation == 0
        last = src.read_at(229)
        assert last.index == 229 and last.time_s == pytest.approx(229 / 30)


def test_shared_vtest_avi_counts_795_frames_at_10fps():
    with VideoFileSource(shared_video("opencv_vtest.avi")) as src:
        assert src.frame_count == 795 and src.fps == pytest.approx(10.0)
        assert src.size_hw == (576, 768)
        frames = [f.time_s for f in src]               # decoding agrees with the header
    assert len(frames) == 795 and frames[-1] == pytest.approx(79.4)


def test_shared_portrait_clip_needs_no_rotation():
    with VideoFileSource(shared_video("pose2sim_singleperson_cam01.mp4")) as src:
        assert src.size_hw == (1920, 1080) and src.rotation == 0 and src.frame_count == 100


def test_shared_image_as_single_frame():
    path = IMAGES / "vtest_t30s.jpg"
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared is not mounted here)")
    with open_source(path) as src:
        assert src.size_hw == (576, 768) and len(list(src)) == 1
