"""The window as a review tool, driven the way a person drives it (pytest-qt, offscreen):
key presses and mouse clicks on the widgets, not method calls.

Frame stepping adds up quick presses on the frame asked for; a click on the position bar
jumps to the clicked spot; a focused slider keeps the arrow keys; the go-to field takes a
frame or a time; a seek shows the raw frame at once while the pose is still computed; the
window fits a 1280x720 screen whatever the model's description; banners float over the
video and go with their cause; the status bar's processed rate is not 0.0 while frames are
processed.
"""
from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.infos import EngineInfo  # noqa: E402
from core.engine import EngineConfig  # noqa: E402

CLIP = Path(__file__).resolve().parents[1] / "tests" / "data" / "clip_person.mp4"   # 30 frames, 60 fps
WAIT = 30_000                     # generous: a CPU training job may share the machine


def settled(w) -> bool:
    """Nothing in flight and the newest processed frame drawn."""
    c, r = w.controller, w.last_rendered
    return (c.idle and not c.playing and w.renderer.idle and c.current is not None
            and r is not None and r.frame is c.current)


def wait_frame(qtbot, w, index: int) -> None:
    qtbot.waitUntil(lambda: settled(w) and w.controller.current.index == index, timeout=WAIT)


def open_clip(qtbot, w) -> None:
    w.open_source(str(CLIP))
    qtbot.waitUntil(lambda: w.controller.source is not None, timeout=WAIT)
    wait_frame(qtbot, w, 0)


def focus_video(qtbot, w) -> None:
    w.activateWindow()
    qtbot.mouseClick(w.view, Qt.MouseButton.RightButton)     # a click focuses the video
    qtbot.waitUntil(lambda: w.view.hasFocus(), timeout=5_000)


def test_quick_key_presses_add_up_and_land_on_frame_five(qtbot, window):
    w, c = window, window.controller
    open_clip(qtbot, w)
    focus_video(qtbot, w)
    qtbot.keyClick(w.view, Qt.Key.Key_End)
    wait_frame(qtbot, w, 29)
    # Home, then five quick Right presses, none waiting for the picture
    qtbot.keyClick(w.view, Qt.Key.Key_Home)
    for _ in range(5):
        qtbot.keyClick(w.view, Qt.Key.Key_Right)
    # the frame counter shows the request at once, the picture follows
    assert "frame 5 / 30" in w.transport.time_label.text()
    assert c.position == 5
    wait_frame(qtbot, w, 5)
    assert w.transport.slider.value() == 5
    # three quick presses are three frames, back too
    for _ in range(3):
        qtbot.keyClick(w.view, Qt.Key.Key_Right)
    qtbot.keyClick(w.view, Qt.Key.Key_Left)
    wait_frame(qtbot, w, 7)
    # the end of the clip bounds the steps
    qtbot.keyClick(w.view, Qt.Key.Key_End)
    qtbot.keyClick(w.view, Qt.Key.Key_Right)
    wait_frame(qtbot, w, 29)


def test_a_click_on_the_position_bar_jumps_to_the_spot(qtbot, window):
    w, c = window, window.controller
    open_clip(qtbot, w)
    slider = w.transport.slider
    assert slider.pageStep() > 15          # one page from frame 0 would be past the middle
    mid = QPoint(slider.width() // 2, slider.height() // 2)
    QTest.mouseClick(slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, mid)
    qtbot.waitUntil(lambda: settled(w) and c.current.index in (14, 15), timeout=WAIT)
    assert slider.value() == c.current.index
    # a click near the right end: near the last frame
    QTest.mouseClick(slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     QPoint(slider.width() - 3, slider.height() // 2))
    qtbot.waitUntil(lambda: settled(w) and c.current.index >= 27, timeout=WAIT)


def test_a_focused_slider_keeps_the_keys_and_esc_gives_them_back(qtbot, window):
    w, c = window, window.controller
    open_clip(qtbot, w)
    w.activateWindow()
    panel = w.panel
    slider = panel.threshold_slider
    QTest.mouseClick(slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     QPoint(slider.width() // 2, slider.height() // 2))
    qtbot.waitUntil(lambda: slider.hasFocus(), timeout=5_000)
    before = slider.value()
    qtbot.keyClick(slider, Qt.Key.Key_Right)
    qtbot.keyClick(slider, Qt.Key.Key_Right)
    qtbot.keyClick(slider, Qt.Key.Key_Left)
    assert slider.value() == before + 1
    assert w.overlay_settings().threshold == pytest.approx(slider.value() / 100)
    qtbot.keyClick(slider, Qt.Key.Key_Home)
    assert slider.value() == slider.minimum()
    qtbot.keyClick(slider, Qt.Key.Key_End)
    assert slider.value() == slider.maximum()
    # ... and the video did not move
    assert c.position == 0 and not c.playing
    qtbot.waitUntil(lambda: settled(w), timeout=WAIT)
    assert c.current.index == 0
    # the attention sliders take the focus the same way (enabled with a TransPose model)
    for s in (panel.delta_slider, panel.opacity_slider):
        assert s.focusPolicy() == Qt.FocusPolicy.StrongFocus
    # a click on a check box leaves the focus where it was: Space still plays
    assert panel.skeleton_check.focusPolicy() == Qt.FocusPolicy.TabFocus
    # Esc: the keys drive the video again
    qtbot.keyClick(slider, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: w.view.hasFocus(), timeout=5_000)
    value = slider.value()
    qtbot.keyClick(w.view, Qt.Key.Key_Right)
    wait_frame(qtbot, w, 1)
    assert slider.value() == value


def test_go_to_a_typed_frame_or_time(qtbot, window):
    w, c = window, window.controller
    open_clip(qtbot, w)
    edit = w.transport.goto_edit
    w.activateWindow()
    qtbot.keyClick(w.view, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)   # Ctrl+G
    qtbot.waitUntil(lambda: edit.hasFocus(), timeout=5_000)
    qtbot.keyClicks(edit, "20")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    wait_frame(qtbot, w, 20)
    assert w.view.hasFocus()                # back to the video: the arrows step again
    qtbot.keyClick(w.view, Qt.Key.Key_Right)
    wait_frame(qtbot, w, 21)
    # a time: 0.25 s at 60 fps is frame 15 (typing Home/Left in the field edits the text)
    QTest.mouseClick(edit, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: edit.hasFocus(), timeout=5_000)
    qtbot.keyClicks(edit, "0:00.2")
    qtbot.keyClick(edit, Qt.Key.Key_Home)
    qtbot.keyClick(edit, Qt.Key.Key_End)
    qtbot.keyClicks(edit, "5")
    assert c.position == 21
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    wait_frame(qtbot, w, 15)
    # nonsense stays in the field and goes nowhere
    QTest.mouseClick(edit, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(edit, "soon")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert edit.text() == "soon" and c.position == 15


def test_parse_position():
    from app.timecode import parse_position
    assert parse_position("120", 30.0, 1000) == 120
    assert parse_position("#7", 30.0, 1000) == 7
    assert parse_position("4.5", 30.0, 1000) == 135
    assert parse_position("4.5s", 30.0, 1000) == 135
    assert parse_position("1:02.5", 30.0, 10_000) == 1875
    assert parse_position("0:01:02", 30.0, 10_000) == 1860
    assert parse_position("99999", 30.0, 1000) == 999          # clamped to the video
    assert parse_position("later", 30.0, 1000) is None
    assert parse_position("2.0", None, 1000) is None           # a time needs a frame rate


def test_a_seek_shows_the_raw_frame_at_once_then_the_processed_one(qtbot, window):
    w, c = window, window.controller
    open_clip(qtbot, w)
    # the pose worker is busy (a slow model): the picture must not wait for it
    release = threading.Event()
    c.worker.submit(lambda: release.wait(60))
    try:
        slider = w.transport.slider
        QTest.mouseClick(slider, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                         QPoint(slider.width() * 2 // 3, slider.height() // 2))
        qtbot.waitUntil(lambda: w.last_rendered is not None
                        and w.last_rendered.frame.index >= 18
                        and w.last_rendered.frame.image is not None, timeout=WAIT)
        raw = w.last_rendered.frame
        assert raw.people == () and raw is not c.current        # image only, not processed
        assert c.current.index == 0 and w.view.has_image
    finally:
        release.set()
    qtbot.waitUntil(lambda: settled(w) and c.current.index == raw.index, timeout=WAIT)
    assert c.current.people                          # the processed frame replaced it


LONG = ("TransPose-H-A6 (hrnet_w48 backbone, 6 encoder layers, 256x192 input, trained on COCO "
        "train2017, converted from /home/someone/a/very/long/path/to/the/checkpoints/folder/"
        "tp_h_a6_256x192_enc6_mh8_official_weights_v2.pth) with flip test and detector "
        "YOLOX-Nano (onnxruntime, CPUExecutionProvider)")


def test_the_window_fits_1280x720_and_banners_do_not_move_the_video(qtbot, window):
    w, c = window, window.controller
    open_clip(qtbot, w)
    info = EngineInfo(EngineConfig(model="mediapipe"), LONG, "cuda:0", False, 0)
    c.engine_ready.emit(info)                   # a model with a very long description
    w.status_message("a temporary message that goes on and on " * 8)
    w.stats_label.setText("input 29.9 fps · processed 29.9 fps · latency 123 ms · dropped 9")
    QApplication.processEvents()
    hint = w.minimumSizeHint()
    assert hint.width() <= 1280 and hint.height() <= 720, hint
    assert w.minimumWidth() <= 1280
    w.resize(1280, 720)
    qtbot.waitUntil(lambda: (w.width(), w.height()) == (1280, 720), timeout=5_000)
    assert w.device_label.text().endswith(LONG)             # whole in text() and tooltip
    assert w.device_label.width() < 1280 and LONG in w.device_label.toolTip()
    # the status bar's fields never overlap
    sb = [w.message_label, w.stats_label, w.device_label]
    for a, b in zip(sb, sb[1:]):
        assert a.geometry().right() < b.geometry().left()
    # "Recent" is not cut
    rb = w.source_bar.recent_button
    assert rb.width() >= rb.sizeHint().width()

    # a banner floats over the video: nothing moves
    before = w.view.geometry()
    w.show_message("error", "something went wrong", "playback")
    QApplication.processEvents()
    assert w.banner.isVisible() and w.view.geometry() == before
    assert w.banner.geometry().top() == before.top()
    assert w.banner.geometry().width() == before.width()
    # ... and goes with its cause: another video opened
    w.banner.show_message("info", "Exported clip_person.csv", "export")
    open_clip(qtbot, w)
    assert not w.banner.isVisible()


def test_processed_rate_of_a_slow_model_is_not_zero(qtbot, window, monkeypatch):
    """A model finishing a frame every 1.2 s: the rate counted over the last seconds, not
    per half-second tick (which read 0.0 fps most of the time)."""
    import app.controller as controller_module
    from core.pipeline import PipelineStats

    c = window.controller
    c._stats_timer.stop()                       # ticks driven here, on a fake clock

    class Slow:
        stats = PipelineStats()

    now = [1000.0]
    monkeypatch.setattr(controller_module.time, "monotonic", lambda: now[0])
    got = []
    c.stats_changed.connect(got.append)
    c._live = Slow()
    for tick in range(1, 17):                   # 8 s of 0.5 s ticks
        now[0] += 0.5
        Slow.stats.frames_in = tick * 15        # a 30 fps source
        Slow.stats.frames_out = int(tick * 0.5 / 1.2)
        c._update_stats()
    c._live = None
    rates = [s.processed_fps for s in got[4:]]  # after the first 2.5 s
    assert rates and min(rates) > 0.5 and max(rates) < 1.2, rates
    text = f"processed {got[-1].processed_fps:.1f} fps"
    assert re.search(r"processed 0\.[6-9] fps", text), text


def test_attention_layer_and_folders_are_remembered(qtbot, settings, tmp_path):
    from app.main_window import MainWindow
    from app.panels import start_dir
    w = MainWindow(settings, engine_overrides={"model": "mediapipe"}, probe_cameras=False)
    qtbot.addWidget(w)
    # a 3-layer TransPose model's controls; layer 2 chosen in the list
    w.panel.set_engine_info(EngineInfo(EngineConfig(), "TransPose", "cpu", True, 3, "encoder"))
    w.panel.layer_combo.setCurrentIndex(1)
    w.open_source(str(CLIP))
    qtbot.waitUntil(lambda: w.controller.source is not None, timeout=WAIT)
    w.close()
    assert int(settings.value("attention/layer")) == 1
    assert Path(settings.value("dialogs/dir")) == CLIP.parent
    w2 = MainWindow(settings, probe_cameras=False)
    qtbot.addWidget(w2)
    w2.panel.set_engine_info(EngineInfo(EngineConfig(), "TransPose", "cpu", True, 3, "encoder"))
    assert w2.panel.layer_combo.currentData() == 1
    assert w2.source_bar.dialog_dir == str(CLIP.parent)
    w2.close()
    # dialogs open in the last folder, else home: never the working directory
    assert start_dir(str(CLIP.parent)) == str(CLIP.parent)
    assert start_dir("") == str(Path.home())
    assert start_dir(str(tmp_path / "not" / "made" / "yet")) == str(tmp_path)
    # export: a read-only video folder is not offered
    ro = tmp_path / "card"
    ro.mkdir()
    (ro / "v.mp4").write_bytes(b"")
    ro.chmod(0o555)
    try:
        from app.infos import SourceInfo
        info = SourceInfo(str(ro / "v.mp4"), "v.mp4", 1, 30.0, 1 / 30, (2, 2), False, "video")
        w3 = MainWindow(settings, probe_cameras=False)
        qtbot.addWidget(w3)
        settings.setValue("export/out", "")
        if os.access(ro, os.W_OK):              # root ignores the mode bits
            assert w3.export_folder(info) == str(ro)
        else:
            assert w3.export_folder(info) == str(Path.home())
        settings.setValue("export/out", str(tmp_path / "exports"))
        assert w3.export_folder(info) == str(tmp_path / "exports")
        w3.close()
    finally:
        ro.chmod(0o755)


def test_close_while_playing_takes_under_two_seconds(qtbot, window):
    import time
    w, c = window, window.controller
    open_clip(qtbot, w)
    w.transport.set_speed(0.25)                 # 2 s of clip: still playing when closed
    focus_video(qtbot, w)
    qtbot.keyClick(w.view, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: c.playing and c.live_pipeline is not None, timeout=WAIT)
    t0 = time.monotonic()
    w.close()
    assert time.monotonic() - t0 < 2.0
    qtbot.waitUntil(lambda: not [t for t in threading.enumerate()
                                 if t.name.startswith(("pose-pipeline-", "gui-reader"))],
                    timeout=15_000)


def test_qt_calls_never_free_none(window):
    """PySide6 6.12 on CPython < 3.12 loses a reference to None on every Qt method without a
    result (about a minute of playback freed None: "Fatal Python error: none_dealloc"). The
    window guards against it (app.pyside_compat); without the guard this test aborts."""
    import sys

    from PySide6.QtCore import QPointF
    p = QPointF()
    for _ in range(200_000):                    # more than None's whole reference count
        p.setX(1.0)
    assert sys.getrefcount(None) > 0


def test_an_image_folder_of_photos_steps_with_one_timeline(qtbot, window, tmp_path):
    """A folder of photos of different sizes: every step is drawn (a size change once failed
    the whole run), and the position's time uses the duration's timebase (an image folder
    plays at DEFAULT_FOLDER_FPS; its position read 00:04.000 / 00:00.500 at image 5 of 5)."""
    import cv2
    from app.pacing import DEFAULT_FOLDER_FPS
    from app.timecode import format_time
    cap = cv2.VideoCapture(str(CLIP))
    images = [cap.read()[1] for _ in range(4)]
    cap.release()
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, image in enumerate(images[:3]):
        cv2.imwrite(str(folder / f"p{i}.png"), image)
    cv2.imwrite(str(folder / "p3.png"), images[3][:40, :60])           # another size
    cv2.imwrite(str(folder / "p4.png"), cv2.resize(images[3], (400, 300)))
    w, c = window, window.controller
    w.open_source(str(folder))
    qtbot.waitUntil(lambda: c.source is not None, timeout=WAIT)
    wait_frame(qtbot, w, 0)
    focus_video(qtbot, w)
    for index in range(1, 5):
        qtbot.keyClick(w.view, Qt.Key.Key_Right)
        wait_frame(qtbot, w, index)
        assert w.last_rendered.frame.size_hw == cv2.imread(str(folder / f"p{index}.png")).shape[:2]
    assert w.transport.time_label.text().startswith(
        f"{format_time(4 / DEFAULT_FOLDER_FPS)} / {format_time(5 / DEFAULT_FOLDER_FPS)}")
