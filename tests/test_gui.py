"""The desktop GUI (pytest-qt, offscreen): playback, attention, model switch, batch, close.

The TransPose checkpoint here has deterministic *random* weights (tests/conftest.py): its
keypoints are meaningless but its attention maps are real, which is all these tests need.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, Qt  # noqa: E402

from app.main_window import MainWindow  # noqa: E402
from app.overlay import attention_heat, render_frame  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "tests" / "data" / "clip_person.mp4"      # 30 frames, 270x480, 60 fps


def batch_shown_finished(dlg) -> bool:
    """The batch runner is done and the dialog has shown it: the runner's per-row signals
    are queued to the GUI thread ahead of its 'finished' signal, so once the summary line
    says Finished/Cancelled every row's status is on screen too."""
    return (dlg.runner.done and not dlg.running
            and dlg.status_label.text().startswith(("Finished", "Cancelled")))


def pipeline_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("pose-pipeline-")]


def settled(w: MainWindow) -> bool:
    """Nothing in flight and the newest frame drawn."""
    c, r = w.controller, w.last_rendered
    return (c.idle and not c.playing and w.renderer.idle and c.current is not None
            and r is not None and r.frame is c.current)


def wait_frame(qtbot, w: MainWindow, index: int, timeout: int = 30_000) -> None:
    qtbot.waitUntil(lambda: settled(w) and w.controller.current.index == index, timeout=timeout)


def open_clip(qtbot, w: MainWindow) -> None:
    w.open_source(str(CLIP))
    qtbot.waitUntil(lambda: w.controller.source is not None, timeout=15_000)
    wait_frame(qtbot, w, 0)


def test_playback_transport_and_clean_close(qtbot, window):
    w, c = window, window.controller
    open_clip(qtbot, w)
    info = c.source
    assert (info.frame_count, info.size_hw, info.kind) == (30, (480, 270), "video")
    assert w.view.has_image and w.last_rendered.image.width() > 0
    assert c.current.image is not None and len(c.current.people) >= 1   # the person is found
    assert w.transport.slider.maximum() == 29

    # play: frames arrive through the polled live pipeline, paced to the clip's 60 fps
    # (at a quarter speed: at full speed the 30 frames last 0.5 s, and on a loaded machine
    # the clip had ended, its threads gone, before the check below ran)
    c.set_speed(0.25)
    c.play()
    assert c.playing
    seen_threads = []

    def three_frames_in() -> bool:
        seen_threads.append(bool(pipeline_threads()))
        return c.current is not None and c.current.index >= 3
    qtbot.waitUntil(three_frames_in, timeout=20_000)
    assert any(seen_threads), "the live pipeline runs on its own threads"
    c.set_speed(1.0)
    c.pause()
    qtbot.waitUntil(lambda: settled(w), timeout=10_000)
    assert not c.playing and not pipeline_threads()
    assert w.transport.slider.value() == c.current.index

    # frame-accurate seek and single steps while paused
    c.seek(12)
    wait_frame(qtbot, w, 12)
    assert w.transport.slider.value() == 12
    assert "frame 12 / 30" in w.transport.time_label.text()
    c.step(1)
    wait_frame(qtbot, w, 13)
    c.step(-1)
    wait_frame(qtbot, w, 12)

    # keyboard shortcuts: Right, Left, End, Home, Space
    w.activateWindow()
    w.view.setFocus()
    qtbot.keyClick(w.view, Qt.Key.Key_Right)
    wait_frame(qtbot, w, 13)
    qtbot.keyClick(w.view, Qt.Key.Key_End)
    wait_frame(qtbot, w, 29)
    qtbot.keyClick(w.view, Qt.Key.Key_Home)
    wait_frame(qtbot, w, 0)

    # play to the end: the pipeline finishes and playback pauses on the last frame
    c.seek(24)
    wait_frame(qtbot, w, 24)
    qtbot.keyClick(w.view, Qt.Key.Key_Space)
    assert c.playing
    qtbot.waitUntil(lambda: not c.playing and settled(w), timeout=20_000)
    assert c.current.index == 29

    # slider drag while playing seeks the running pipeline
    c.seek(0)
    wait_frame(qtbot, w, 0)
    c.play()
    qtbot.waitUntil(lambda: c.live_pipeline is not None, timeout=10_000)
    w.transport.seek_requested.emit(20)
    qtbot.waitUntil(lambda: c.current.index >= 20, timeout=20_000)

    # close while playing: every worker stops within 2 s
    assert c.playing
    t0 = time.monotonic()
    w.close()
    assert time.monotonic() - t0 < 2.0
    # a forward pass already running finishes on its own thread (seconds on a loaded
    # machine); the window must not wait for it, but the thread must end
    qtbot.waitUntil(lambda: not pipeline_threads(), timeout=15_000)


def test_attention_overlay_and_model_switch(qtbot, window, random_tp_r_a3_checkpoint, tmp_path):
    w, c, panel = window, window.controller, window.panel
    open_clip(qtbot, w)
    # MediaPipe has no attention: the controls are disabled and say why
    assert not panel.attention_group.isEnabled()
    assert "no attention" in panel.attention_check.toolTip()

    # a rejected model file: a message in the window, the previous model stays in use
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"this is not a checkpoint")
    panel.set_model(str(bad))
    qtbot.waitUntil(lambda: not c.busy and w.banner.isVisible(), timeout=30_000)
    assert w.banner.level == "error" and "broken.pth" in w.banner.text
    assert c.engine.config.model == "mediapipe"
    assert panel.model_combo.currentData() == "mediapipe"

    # switch to TransPose (.pth) without restarting: the paused frame is recomputed
    panel.set_model(str(random_tp_r_a3_checkpoint))
    qtbot.waitUntil(lambda: c.engine is not None and c.engine.has_attention, timeout=60_000)
    assert panel.attention_group.isEnabled()
    assert panel.layer_combo.count() == 3 and panel.layer_combo.currentData() == 2  # last
    assert "TransPose tp-r-a3" in w.device_label.text()

    # attention on a paused frame: computed once on the worker for the shown frame
    panel.attention_check.setChecked(True)
    qtbot.waitUntil(lambda: settled(w) and c.current.attention is not None, timeout=60_000)
    frame = c.current
    assert frame.index == 0 and frame.attention.num_layers == 3
    s = w.overlay_settings()
    assert s.attention and s.attention_keypoint is None
    (tw, th), _ = w.view.target_size()
    with_att, mapping = render_frame(frame, s, (tw, th))
    import dataclasses
    without, _ = render_frame(frame, dataclasses.replace(s, attention=False), (tw, th))
    assert np.abs(with_att.astype(int) - without.astype(int)).mean() > 1.0

    # one keypoint, the first layer, a threshold
    panel.keypoint_combo.setCurrentIndex(panel.keypoint_combo.findData(9))   # left wrist
    panel.layer_combo.setCurrentIndex(0)
    panel.delta_slider.setValue(10)
    s = w.overlay_settings()
    assert (s.attention_keypoint, s.attention_layer) == (9, 0) and s.attention_delta > 0
    assert attention_heat(frame, s, mapping.scale, mapping.display_hw) is not None

    # click on the person: that point's affected area
    person = frame.people[0]
    bx, by, bw, bh = person.box
    cx, cy = (bx + bw / 2) * mapping.scale, (by + bh / 2) * mapping.scale
    rect_x = (w.view.width() - mapping.display_hw[1]) / 2
    rect_y = (w.view.height() - mapping.display_hw[0]) / 2
    qtbot.mouseClick(w.view, Qt.MouseButton.LeftButton,
                     pos=QPoint(int(rect_x + cx), int(rect_y + cy)))
    s = w.overlay_settings()
    assert s.click_xy is not None
    assert abs(s.click_xy[0] - (bx + bw / 2)) < 3 and abs(s.click_xy[1] - (by + bh / 2)) < 3
    assert panel.clear_point_button.isEnabled()
    assert attention_heat(frame, s, mapping.scale, mapping.display_hw) is not None
    qtbot.waitUntil(lambda: settled(w) and w.last_rendered.serial > 0, timeout=10_000)
    qtbot.mouseClick(w.view, Qt.MouseButton.RightButton)
    assert w.overlay_settings().click_xy is None

    # live during playback: frames come with their attention
    c.play()
    qtbot.waitUntil(lambda: c.current.index > 0 and c.current.attention is not None,
                    timeout=60_000)
    c.pause()
    qtbot.waitUntil(lambda: settled(w), timeout=30_000)

    # back to MediaPipe: attention controls disabled again, the frame recomputed without
    panel.set_model("mediapipe")
    qtbot.waitUntil(lambda: c.engine is not None and not c.engine.has_attention and settled(w)
                    and c.current.attention is None, timeout=60_000)
    assert not panel.attention_group.isEnabled()

    t0 = time.monotonic()
    w.close()
    assert time.monotonic() - t0 < 2.0
    # a forward pass already running finishes on its own thread (seconds on a loaded
    # machine); the window must not wait for it, but the thread must end
    qtbot.waitUntil(lambda: not pipeline_threads(), timeout=15_000)


def _image_folder(tmp_path: Path, n: int = 3) -> Path:
    import cv2
    from core.video import open_source
    folder = tmp_path / "frames"
    folder.mkdir()
    with open_source(CLIP) as src:
        for i, frame in enumerate(src):
            if i >= n:
                break
            cv2.imwrite(str(folder / f"img{i}.png"), frame.image)
    return folder


def test_batch_queue_two_files_and_a_folder_match_annotate(qtbot, window, tmp_path):
    from core.batch.job import outputs_for
    import main as cli

    folder = _image_folder(tmp_path)
    second = tmp_path / "walk.mp4"                         # a download cut short
    second.write_bytes(CLIP.read_bytes()[: int(CLIP.stat().st_size * 0.5)])
    out = tmp_path / "out"
    dlg = window.show_batch_dialog()
    inputs = [str(CLIP), str(second), str(folder)]
    dlg.set_inputs(inputs)
    dlg.set_output_dir(str(out))
    dlg.start()
    assert dlg.running and dlg.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: batch_shown_finished(dlg), timeout=90_000)
    assert [r.status for r in dlg.runner.results] == ["done"] * 3, dlg.runner.results
    assert "warning: the file ended after" in dlg.status_of(1)      # said in its row
    assert "warning" not in dlg.status_of(0)
    assert dlg.bar(0).value() == dlg.bar(1).value() == dlg.bar(2).value() == 1000
    assert dlg.overall_bar.value() == 1000
    expected = {p for inp in inputs for p in outputs_for(inp, out, False).values()}
    assert {p.name for p in expected} == {"clip_person.csv", "clip_person.json", "walk.csv",
                                          "walk.json", "frames.csv", "frames.json"}
    assert set(out.iterdir()) == expected
    # the very same CSV as `main.py annotate` with the same settings
    ref = tmp_path / "ref"
    assert cli.main(["annotate", str(folder), "--out", str(ref), "--model", "mediapipe"]) == 0
    assert (ref / "frames.csv").read_bytes() == (out / "frames.csv").read_bytes()

    # cancel: the running input stops, its unfinished outputs are removed
    dlg.overlay_check.setChecked(True)
    dlg.force_check.setChecked(True)
    dlg.start()
    qtbot.waitUntil(lambda: dlg.bar(0).value() > 0 or dlg.runner.done, timeout=30_000)
    dlg.cancel()
    qtbot.waitUntil(lambda: batch_shown_finished(dlg), timeout=30_000)
    statuses = [r.status for r in dlg.runner.results]
    assert "cancelled" in statuses and dlg.status_of(2).startswith("cancelled")
    # nothing half-written: an overlay exists only for an input that finished
    assert (out / "clip_person.overlay.mp4").exists() == (statuses[0] == "done")
    assert (out / "walk.overlay.mp4").exists() == (statuses[1] == "done")
    assert not (out / "frames.overlay.mp4").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".") or "tmp" in p.name]
    assert not pipeline_threads()


def test_export_tracks_and_errors_in_the_window(qtbot, window, tmp_path):
    w = window
    open_clip(qtbot, w)
    out = tmp_path / "export"
    w.export_tracks(str(out), overlay=True)
    qtbot.waitUntil(lambda: w.export_runner is not None and w.export_runner.done, timeout=90_000)
    assert [r.status for r in w.export_runner.results] == ["done"]
    assert {p.name for p in out.iterdir()} == {"clip_person.csv", "clip_person.json",
                                               "clip_person.overlay.mp4"}
    # a corrupt video: a message in the window, no crash, the window still works
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    w.open_source(str(bad))
    qtbot.waitUntil(lambda: w.banner.isVisible() and w.banner.level == "error", timeout=15_000)
    assert "corrupt.mp4" in w.banner.text
    open_clip(qtbot, w)
    assert not w.banner.isVisible()


class _LosingCamera:
    """A live source that delivers frames until `lost` is set, then stops like an
    unplugged camera (CameraSource's own words)."""

    def __init__(self, frames: list) -> None:
        self.frames = frames
        self.name, self.fps, self.frame_count, self.rotation = "camera:9", 30.0, None, 0
        self.size_hw = frames[0].image.shape[:2]
        self.is_live, self.warnings, self.stopped_reason = True, [], None
        self.closed = False
        self.lost = threading.Event()

    def __iter__(self):
        from core.types import Frame
        i = 0
        while not self.closed and not self.lost.is_set():
            time.sleep(1 / 30)
            yield Frame(i, i / 30, self.frames[i % len(self.frames)].image)
            i += 1
        self.stopped_reason = (f"camera:9 stopped delivering frames after frame {i - 1}; "
                               f"3 reconnection attempts failed")

    def seek(self, index: int) -> None:
        raise AssertionError("a camera is never seeked")

    def close(self) -> None:
        self.closed = True


def test_camera_lost_is_a_message_not_a_crash(qtbot, window, monkeypatch):
    import core.video
    from core.video import open_source
    with open_source(CLIP) as src:
        frames = [f for _, f in zip(range(6), src)]
    real = core.video.open_source
    camera = _LosingCamera(frames)
    monkeypatch.setattr(core.video, "open_source",
                        lambda spec: camera if str(spec) == "camera:9" else real(spec))
    w, c = window, window.controller
    w.open_source("camera:9")
    qtbot.waitUntil(lambda: c.source is not None and c.source.is_live, timeout=15_000)
    assert c.playing and not w.transport.slider.isEnabled()       # live: no seeking
    qtbot.waitUntil(lambda: c.current is not None, timeout=20_000)
    camera.lost.set()                                             # unplugged
    qtbot.waitUntil(lambda: not c.playing and w.banner.isVisible(), timeout=20_000)
    assert w.banner.level == "warning" and "stopped delivering frames" in w.banner.text
    qtbot.waitUntil(lambda: not pipeline_threads(), timeout=5_000)
    w.close()


def test_settings_persist(qtbot, settings):
    w = MainWindow(settings, engine_overrides={"model": "mediapipe"}, probe_cameras=False)
    qtbot.addWidget(w)
    w.panel.threshold_slider.setValue(55)
    w.panel.boxes_check.setChecked(True)
    w.panel.opacity_slider.setValue(35)
    w.transport.set_speed(2.0)
    w.open_source(str(CLIP))
    qtbot.waitUntil(lambda: w.controller.source is not None, timeout=15_000)
    w.close()
    assert settings.value("sources/recent") and str(CLIP) in settings.value("sources/recent")
    w2 = MainWindow(settings, probe_cameras=False)
    qtbot.addWidget(w2)
    assert w2.panel.threshold_slider.value() == 55
    assert w2.panel.boxes_check.isChecked()
    assert w2.panel.opacity_slider.value() == 35
    assert w2.transport.speed == 2.0
    assert w2.panel.engine_config().model == "mediapipe"
    assert str(CLIP) in w2.recent_sources()
    w2.close()


@pytest.mark.skipif(shutil.which("Xvfb") is None,
                    reason="Xvfb is not installed (apt-get install xvfb): the real-X11 "
                           "screenshot check needs it")
def test_screenshot_command_under_xvfb(tmp_path):
    import cv2
    r, wfd = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(wfd), "-screen", "0", "1600x1000x24",
                             "-nolisten", "tcp"], pass_fds=(wfd,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(wfd)
    try:
        with os.fdopen(r) as f:
            display = f.readline().strip()
        assert display, "Xvfb did not report its display"
        env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
        env.update(DISPLAY=f":{display}", QT_QPA_PLATFORM="xcb")
        png = tmp_path / "gui.png"
        proc = subprocess.run(
            [sys.executable, str(ROOT / "main.py"), "gui", "--source", str(CLIP),
             "--screenshot", str(png), "--exit-after", "3", "--model", "mediapipe"],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        image = cv2.imread(str(png))
        assert image is not None and image.shape[0] >= 600 and image.shape[1] >= 1000
        assert image.std() > 20                          # not a blank grab
        assert len(np.unique(image.reshape(-1, 3), axis=0)) > 1000   # a video frame in it
    finally:
        xvfb.terminate()
        xvfb.wait(10)


def test_the_gui_lists_read_the_catalogue(qtbot):
    """The model and detector lists are core.catalogue's runnable entries (MoveNet too)."""
    from app.panels import BROWSE, SettingsPanel
    from core import catalogue
    panel = SettingsPanel()
    qtbot.addWidget(panel)
    models = [panel.model_combo.itemData(i) for i in range(panel.model_combo.count())]
    assert [m for m in models if m != BROWSE] == \
        [e.name for e in catalogue.pose_models() if e.label]
    assert "movenet" in models and "mediapipe" in models
    detectors = [panel.detector_combo.itemData(i) for i in range(panel.detector_combo.count())]
    assert [d for d in detectors if d != BROWSE] == \
        [e.name for e in catalogue.detectors() if e.label]


def test_a_video_cut_short_ends_on_its_last_real_frame(qtbot, window, tmp_path):
    """A download cut short announces more frames than it holds. Playback used to end by
    asking for the announced last frame, which failed with an error; it now ends on the
    last frame there is, with a warning, and the end button and seeks stay within it."""
    w, c = window, window.controller
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(CLIP.read_bytes()[: int(CLIP.stat().st_size * 0.5)])
    w.open_source(str(cut))
    qtbot.waitUntil(lambda: c.source is not None, timeout=15_000)
    wait_frame(qtbot, w, 0)
    assert c.source.frame_count == 30                      # what the header says
    c.play()
    qtbot.waitUntil(lambda: not c.playing and w.banner.isVisible(), timeout=30_000)
    assert w.banner.level == "warning" and "truncated?" in w.banner.text
    qtbot.waitUntil(lambda: settled(w), timeout=30_000)
    last = c.current.index
    assert 0 < last < 29 and w.banner.level == "warning"   # no error after the warning
    c.seek(28)
    qtbot.waitUntil(lambda: settled(w), timeout=30_000)
    assert c.current.index == last and w.banner.level == "warning"
    c.seek(0)
    wait_frame(qtbot, w, 0)
    c.seek_end()
    wait_frame(qtbot, w, last)
