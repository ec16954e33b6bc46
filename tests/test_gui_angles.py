"""The angles dock (pytest-qt, offscreen): click a person to select them, the plot follows
their track with the angles core.analysis computes, the overlay lists them beside them."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("pyqtgraph")

from app.overlay import OverlaySettings, render_frame  # noqa: E402
from core.analysis.angles import compute_angles  # noqa: E402
from core.types import PersonPose, PoseFrame  # noqa: E402

CLIP = Path(__file__).resolve().parents[1] / "tests" / "data" / "clip_person.mp4"


def _settled(w) -> bool:
    c, r = w.controller, w.last_rendered
    return (c.idle and not c.playing and w.renderer.idle and c.current is not None
            and r is not None and r.frame is c.current)


def test_click_selects_a_person_and_the_plot_follows_their_angles(qtbot, window):
    w, c = window, window.controller
    panel = w.angles_panel
    assert w.angles_dock.isVisible() and panel.plot is not None
    panel.set_angles(["left_knee", "trunk"])
    assert panel.chosen_angles() == ("left_knee", "trunk")
    w.open_source(str(CLIP))
    qtbot.waitUntil(lambda: _settled(w) and c.current.index == 0, timeout=30_000)
    for i in range(1, 6):                               # step: every frame is processed
        c.step(1)
        qtbot.waitUntil(lambda: _settled(w) and c.current.index == i, timeout=30_000)
    frame = c.current
    person = frame.people[0]
    bx, by, bw, bh = (float(v) for v in person.box)
    # a click on the person (image pixels) selects their track: what VideoView emits
    w.view.clicked.emit(bx + bw / 2, by + bh / 2)
    assert panel.selected_track == person.track_id
    assert w.overlay_settings().angle_track == person.track_id
    assert w.overlay_settings().angles == ("left_knee", "trunk")
    panel.refresh_plot()
    t, v = panel.curve_data("left_knee")
    want = compute_angles(np.asarray(person.keypoints, float)[None], ["left_knee"])["left_knee"][0]
    assert len(t) >= 5 and t[-1] == pytest.approx(frame.time_s)
    assert v[-1] == pytest.approx(want, nan_ok=True)
    assert panel.curve_data("right_knee") is None         # not chosen: not plotted
    panel.set_angles(["right_knee"])
    assert panel.curve_data("trunk") is None and panel.curve_data("right_knee") is not None
    panel.show_check.setChecked(False)
    assert w.overlay_settings().angles == ()
    panel.select_track(None)
    assert w.overlay_settings().angle_track is None


def test_overlay_lists_the_angles_beside_the_selected_person():
    kp = np.array([[100 + 3 * i, 60 + 12 * i] for i in range(17)], np.float32)
    person = PersonPose(1, np.array([90, 50, 60, 220], np.float32), 0.9, kp,
                        np.full(17, 0.9, np.float32))
    other = PersonPose(2, np.array([300, 50, 60, 220], np.float32), 0.9, kp + [210, 0],
                       np.full(17, 0.9, np.float32))
    frame = PoseFrame(0, 0.0, (320, 480), (person, other), image=np.zeros((320, 480, 3), np.uint8))
    plain, _ = render_frame(frame, OverlaySettings(skeleton=False, ids=False), (480, 320))
    drawn, _ = render_frame(frame, OverlaySettings(skeleton=False, ids=False,
                                                   angles=("left_knee", "trunk"), angle_track=1),
                            (480, 320))
    changed = np.abs(drawn.astype(int) - plain.astype(int)).sum(axis=2) > 0
    ys, xs = np.nonzero(changed)
    assert changed.any()
    # the text sits to the right of person 1's box, and person 2 gets nothing
    assert xs.min() >= 86 and changed[:, 156:290].any()     # 86: the highlight box line
    assert not changed[:, 365:].any()


def test_a_still_frame_plots_a_dot_per_angle(qtbot):
    """A line needs two samples: one frame (a video opened paused with --frame, a few
    frames seen by seeking) is drawn as dots, once the plot's timer has run; a long series
    as a line only."""
    from app.angles_panel import AnglesPanel
    panel = AnglesPanel()
    qtbot.addWidget(panel)
    panel.set_angles(["left_knee", "trunk"])
    rng = np.random.default_rng(5)
    kps = rng.uniform(100, 300, (17, 2))

    def frame(i):
        person = PersonPose(1, np.array([100.0, 100, 200, 200]), 0.9, kps, np.full(17, 0.9))
        return PoseFrame(i, i / 30.0, (480, 640), (person,))

    panel.add_frame(frame(60))
    assert panel.refresh_pending
    qtbot.waitUntil(lambda: not panel.refresh_pending, timeout=5_000)
    t, v = panel.curve_data("left_knee")
    assert len(t) == 1 and np.isfinite(v).all()
    assert panel._curves["left_knee"].opts["symbol"] == "o"
    assert "Plotting #1" in panel.track_label.text()
    for i in range(61, 161):
        panel.add_frame(frame(i))
    panel.refresh_plot()
    assert len(panel.curve_data("trunk")[0]) == 101
    assert panel._curves["trunk"].opts["symbol"] is None
