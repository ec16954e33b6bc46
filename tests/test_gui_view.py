"""The video view as a reviewer uses it (pytest-qt, offscreen): wheel zoom about the cursor,
drag to pan, double-click / 0 to reset; a click on a person selects and keeps them; the
measuring tool; readable track-ID labels; the attention legend and its messages.

Everything is driven with mouse, wheel and key events on the widget. The window tests use
MediaPipe on tests/data/clip_person.mp4 (30 frames, 270x480); the attention tests use
synthetic maps (exact values) and the random-weights TransPose checkpoint.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QImage, QWheelEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.measure import Measurement, angle_at  # noqa: E402
from app.overlay import (SELECTED_COLOR, AttentionLegend, OverlaySettings, ViewMapping,  # noqa: E402
                         Viewport, attention_heat, render_frame)
from app.video_view import VideoView  # noqa: E402
from core.keypoints import COCO_KEYPOINT_NAMES  # noqa: E402
from core.pose.attention import AttentionMaps  # noqa: E402
from core.types import PersonPose, PoseFrame  # noqa: E402
from core.visualization import draw_pose_frame, draw_skeleton  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "tests" / "data" / "clip_person.mp4"


# ---- helpers --------------------------------------------------------------------------------
def settled(w) -> bool:
    c, r = w.controller, w.last_rendered
    return (c.idle and not c.playing and w.renderer.idle and c.current is not None
            and r is not None and r.frame is c.current)


def open_clip(qtbot, w, index: int = 0) -> None:
    w.open_source(str(CLIP))
    qtbot.waitUntil(lambda: w.controller.source is not None, timeout=20_000)
    qtbot.waitUntil(lambda: settled(w) and w.controller.current.index == index, timeout=40_000)


def wheel(widget, pos: QPointF, notches: float) -> None:
    """One wheel turn at `pos` (120 units a notch, up = zoom in), as the mouse sends it."""
    ev = QWheelEvent(QPointF(pos), widget.mapToGlobal(QPointF(pos)), QPoint(0, 0),
                     QPoint(0, int(round(120 * notches))), Qt.MouseButton.NoButton,
                     Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, ev)


def ipos(p: QPointF) -> QPoint:
    return QPoint(int(round(p.x())), int(round(p.y())))


def person_at(kps: np.ndarray, track_id: int = 7, box=None) -> PersonPose:
    kps = np.asarray(kps, np.float32)
    if box is None:
        lo, hi = kps.min(axis=0), kps.max(axis=0)
        box = np.array([lo[0] - 20, lo[1] - 30, hi[0] - lo[0] + 40, hi[1] - lo[1] + 50],
                       np.float32)
    return PersonPose(track_id, np.asarray(box, np.float32), 0.9, kps,
                      np.full(len(kps), 0.9, np.float32), row=0)


def standing_person(cx: float = 320.0, top: float = 140.0, height: float = 260.0) -> np.ndarray:
    """17 COCO keypoints of an upright figure (image px)."""
    u = height / 8
    pts = [(0, 0), (-0.3, -0.2), (0.3, -0.2), (-0.6, 0), (0.6, 0),          # head
           (-1.2, 1.2), (1.2, 1.2), (-1.6, 2.6), (1.6, 2.6), (-1.8, 3.8), (1.8, 3.8),
           (-0.8, 4.0), (0.8, 4.0), (-0.9, 5.9), (0.9, 5.9), (-1.0, 7.8), (1.0, 7.8)]
    return np.array([(cx + x * u, top + y * u) for x, y in pts], np.float32)


def synthetic_attention(peak: float = 0.05, layers: int = 2) -> AttentionMaps:
    """One person's maps with known values: every row puts `peak` on its own token and
    spreads the rest evenly, so the strongest value anywhere is `peak`."""
    gh, gw = 16, 12
    t = gh * gw
    rest = (1.0 - peak) / (t - 1)
    w = np.full((layers, 1, 2, t, t), rest, np.float32)
    idx = np.arange(t)
    w[:, :, :, idx, idx] = peak
    tokens = np.array([[(3 + k // 3) * gw + 3 + k % 6 for k in range(17)]], np.int64)
    return AttentionMaps(weights=w, grid_hw=(gh, gw), input_size=(192, 256),
                         centers=np.array([[320.0, 270.0]]), scales=np.array([[1.3, 1.733]]),
                         keypoint_tokens=tokens)


def attention_frame(attention=None, people=True, image=None) -> PoseFrame:
    img = np.full((480, 640, 3), 90, np.uint8) if image is None else image
    ppl = (person_at(standing_person()),) if people else ()
    return PoseFrame(3, 0.1, img.shape[:2], ppl, attention=attention, image=img)


@pytest.fixture
def view(qtbot):
    v = VideoView()
    qtbot.addWidget(v)
    v.resize(800, 600)
    v.show()
    qtbot.waitExposed(v)
    return v


def show_rendered(view: VideoView, frame: PoseFrame, settings: OverlaySettings,
                  viewport: Viewport | None = None) -> ViewMapping:
    """Render as the renderer thread does and hand the result to the view."""
    (tw, th), dpr = view.target_size()
    bgr, mapping = render_frame(frame, settings, (tw, th), None, viewport)
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    image = QImage(rgb.data, rgb.shape[1], rgb.shape[0], rgb.strides[0],
                   QImage.Format.Format_RGB888).copy()
    image.setDevicePixelRatio(dpr)
    view.set_image(image, mapping)
    return mapping


# ---- zoom and pan -----------------------------------------------------------------------------
def test_wheel_zooms_about_the_cursor_drag_pans_and_double_click_resets(qtbot, window):
    w, v = window, window.view          # the window wires the view's zoom to its renderer
    open_clip(qtbot, w)
    s0 = v.view_scale
    assert v.zoom == 1.0 and s0 is not None
    m = w.last_rendered.mapping
    # a point on the frame, away from the middle: the frame point under it must stay put
    cursor = v.image_to_widget(m.image_hw[1] * 0.3, m.image_hw[0] * 0.35)
    under = v.widget_to_image(cursor)
    wheel(v, cursor, 1)
    assert v.zoom == pytest.approx(1.25) and v.view_scale == pytest.approx(s0 * 1.25)
    assert np.allclose(v.widget_to_image(cursor), under, atol=1e-6)
    wheel(v, cursor, 3)
    assert v.zoom == pytest.approx(1.25 ** 4)
    assert np.allclose(v.widget_to_image(cursor), under, atol=1e-6)
    wheel(v, cursor, 100)                                    # capped
    assert v.zoom == VideoView.MAX_ZOOM
    wheel(v, cursor, -10.5)                                  # zoom out about the cursor
    assert v.zoom == pytest.approx(VideoView.MAX_ZOOM / 1.25 ** 10.5)
    zoomed = v.view_scale

    # the renderer catches up: the part shown, at the zoomed scale, no bigger than the view
    (tw, th), dpr = v.target_size()
    qtbot.waitUntil(lambda: settled(w) and abs(w.last_rendered.mapping.scale - zoomed * dpr)
                    < 1e-6, timeout=20_000)
    rm = w.last_rendered.mapping
    assert rm.origin != (0.0, 0.0)
    assert rm.display_hw[1] <= tw + 2 * rm.scale + 2 and rm.display_hw[0] <= th + 2 * rm.scale + 2

    # drag pans (and is no click: nobody gets selected)
    centre = v.viewport.center
    start = QPoint(v.width() // 2, v.height() // 2)
    qtbot.mousePress(v, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(v, start + QPoint(20, 10))
    qtbot.mouseMove(v, start + QPoint(40, 30))
    qtbot.mouseRelease(v, Qt.MouseButton.LeftButton, pos=start + QPoint(40, 30))
    moved = v.viewport.center
    assert moved[0] == pytest.approx(centre[0] - 40 / zoomed, abs=1e-6)
    assert moved[1] == pytest.approx(centre[1] - 30 / zoomed, abs=1e-6)
    assert w.angles_panel.selected_track is None

    # double-click: the whole frame again
    qtbot.mouseDClick(v, Qt.MouseButton.LeftButton, pos=start)
    assert v.zoom == 1.0 and v.view_scale == pytest.approx(s0)
    assert v.viewport == Viewport()
    qtbot.waitUntil(lambda: settled(w) and w.last_rendered.mapping.origin == (0.0, 0.0)
                    and abs(w.last_rendered.mapping.scale - s0 * dpr) < 1e-6, timeout=20_000)

    # the keys: + zooms about the middle, 0 resets
    v.setFocus()
    qtbot.keyClick(v, Qt.Key.Key_Plus)
    assert v.zoom == pytest.approx(1.25)
    qtbot.keyClick(v, Qt.Key.Key_0)
    assert v.zoom == 1.0 and v.view_scale == pytest.approx(s0)


def test_zoomed_render_draws_the_same_frame_points_in_the_same_places():
    """The renderer's crop: a marked source pixel and a person's joint land where the
    mapping says, and the attention map is the full map's crop (colours do not change)."""
    image = np.full((480, 640, 3), 255, np.uint8)
    image[300:304, 400:404] = (0, 0, 255)                 # a red mark at (401.5, 301.5)
    kps = standing_person()
    frame = PoseFrame(0, 0.0, (480, 640), (person_at(kps),), attention=synthetic_attention(),
                      image=image)
    s = OverlaySettings(skeleton=False, ids=False, attention=False)
    full, fm = render_frame(frame, s, (640, 480))
    vp = Viewport(4.0, (400.0, 300.0))
    zoomed, zm = render_frame(frame, s, (640, 480), viewport=vp)
    assert zm.scale == pytest.approx(4 * fm.scale)
    assert zoomed.shape[0] <= 480 + 8 and zoomed.shape[1] <= 640 + 8   # the view's size
    x, y = (int(v) for v in zm.to_display(np.array([401.5, 301.5])))
    assert tuple(zoomed[y, x]) == (0, 0, 255)
    assert zm.to_image(*zm.to_display(np.array([123.0, 45.0]))) == pytest.approx((123.0, 45.0))
    # a joint of the skeleton
    drawn, dm = render_frame(frame, dataclasses.replace(s, skeleton=True),
                             (640, 480), viewport=Viewport(3.0, tuple(kps[9])))
    jx, jy = (int(round(v)) for v in dm.to_display(kps[9]))
    assert tuple(drawn[jy, jx]) != (255, 255, 255)
    # attention: the zoomed map is the crop of the whole map at the same scale
    on = dataclasses.replace(s, attention=True)
    big = (int(round(480 * zm.scale)), int(round(640 * zm.scale)))
    whole = attention_heat(frame, on, zm.scale, big)
    part = attention_heat(frame, on, zm.scale, zm.display_hw, zm.origin)
    ox, oy = (int(round(v * zm.scale)) for v in zm.origin)
    crop = whole[oy:oy + part.shape[0], ox:ox + part.shape[1]]
    assert np.abs(crop - part).max() < 0.02


# ---- select and follow ------------------------------------------------------------------------
def test_click_on_a_person_selects_their_track_and_it_stays_on_the_next_frame(qtbot, window):
    w, v, c = window, window.view, window.controller
    open_clip(qtbot, w)
    person = c.current.people[0]
    bx, by, bw, bh = (float(t) for t in person.box)
    qtbot.mouseClick(v, Qt.MouseButton.LeftButton,
                     pos=ipos(v.image_to_widget(bx + bw / 2, by + bh * 0.4)))
    assert w.angles_panel.selected_track == person.track_id
    assert w.overlay_settings().angle_track == person.track_id
    qtbot.waitUntil(lambda: settled(w) and w.last_rendered.mapping.followed_box is not None,
                    timeout=20_000)
    # the next frame: the same track is still selected and highlighted where they are now
    v.setFocus()
    qtbot.keyClick(v, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: settled(w) and c.current.index == 1
                    and w.last_rendered.mapping.followed_box is not None, timeout=40_000)
    assert w.angles_panel.selected_track == person.track_id
    now = next(p for p in c.current.people if p.track_id == person.track_id)
    assert w.last_rendered.mapping.followed_box == pytest.approx(tuple(float(t) for t in now.box))
    # the highlight box is drawn in the selection colour along the person's box
    frame_img, m = render_frame(c.current, w.overlay_settings(), v.target_size()[0])
    x0, y0 = (int(round(t)) for t in m.to_display(np.asarray(now.box[:2], float)))
    edge = frame_img[max(0, y0 - 2):y0 + 3, x0 + 5:x0 + 40].reshape(-1, 3).astype(int)
    assert (np.abs(edge - np.array(SELECTED_COLOR)).sum(axis=1) < 60).any()
    # Esc stops following
    with qtbot.waitSignal(v.deselect_requested, timeout=2_000):
        qtbot.keyClick(v, Qt.Key.Key_Escape)
    assert w.angles_panel.selected_track is None
    # Shift+click selects/follows whatever the attention mode
    with qtbot.waitSignal(v.person_clicked, timeout=2_000) as sig:
        qtbot.mouseClick(v, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier,
                         pos=ipos(v.image_to_widget(now.box[0] + now.box[2] / 2,
                                                    now.box[1] + now.box[3] / 2)))
    assert sig.args[0] == pytest.approx(float(now.box[0] + now.box[2] / 2), abs=2)
    assert w.angles_panel.selected_track == person.track_id


def test_a_followed_person_is_kept_in_a_zoomed_view(qtbot, view):
    frame = attention_frame()
    s = OverlaySettings(angle_track=7)
    show_rendered(view, frame, s)
    wheel(view, QPointF(view.width() / 2, view.height() / 2), 6)     # ~3.8x, about the middle
    assert view.zoom > 3
    # the person walks to the right edge of the frame: the view follows them
    kps = standing_person(cx=560.0)
    moved = dataclasses.replace(frame, index=4, people=(person_at(kps),))
    show_rendered(view, moved, s, view.viewport)
    cx = view.viewport.center[0]
    box = moved.people[0].box
    half = view.width() / (2 * view.view_scale)
    assert abs(box[0] + box[2] / 2 - cx) <= VideoView.FOLLOW_ZONE * half + 1e-6


# ---- measuring --------------------------------------------------------------------------------
def test_three_clicks_in_measure_mode_read_the_angle_and_two_a_distance(qtbot, view):
    show_rendered(view, attention_frame(people=False), OverlaySettings())
    plain = []
    view.clicked.connect(lambda x, y: plain.append((x, y)))
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_M)
    assert view.measuring
    s = view.view_scale
    a, b, c = QPoint(300, 200), QPoint(300, 350), QPoint(420, 350)     # a right angle at b
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=b)
    assert view.measurement.distance == pytest.approx(150 / s, rel=1e-9)
    assert f"{150 / s:.1f} px" in view.measurement.text
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=c)
    m = view.measurement
    assert m.angle == pytest.approx(90.0, abs=1e-9) and m.angle_text == "90.0°"
    assert m.arms == pytest.approx((150 / s, 120 / s))
    assert "angle 90.0°" in m.text
    assert plain == []                                    # measuring clicks select nothing
    view.repaint()                                        # the drawing path runs
    # a fourth click starts a new measurement; zoomed, angles are still angles
    wheel(view, QPointF(350, 300), 3)
    s2 = view.view_scale
    for p in (QPoint(200, 300), QPoint(300, 300), QPoint(300 + 100, 300 - 173)):
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=p)
    assert len(view.measurement.points) == 3
    assert view.measurement.angle == pytest.approx(120.0, abs=0.1)
    assert view.measurement.arms[0] == pytest.approx(100 / s2)
    qtbot.mouseClick(view, Qt.MouseButton.RightButton, pos=QPoint(50, 50))   # clears
    assert view.measurement.points == ()
    qtbot.keyClick(view, Qt.Key.Key_Escape)
    assert not view.measuring
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(400, 300))
    assert len(plain) == 1                                # a plain click again


def test_the_view_menu_measures_and_the_status_bar_reads_it(qtbot, window):
    w, v = window, window.view
    open_clip(qtbot, w)
    w.measure_action.trigger()                            # View > Measure
    assert v.measuring and w.measure_action.isChecked()
    assert "click two points" in w.message_label.text()
    s = v.view_scale
    a = ipos(v.image_to_widget(*(t / 2 for t in w.last_rendered.mapping.image_hw[::-1])))
    qtbot.mouseClick(v, Qt.MouseButton.LeftButton, pos=a)
    qtbot.mouseClick(v, Qt.MouseButton.LeftButton, pos=a + QPoint(0, 60))
    assert f"distance {60 / s:.1f} px" in w.message_label.text()
    v.setFocus()
    qtbot.keyClick(v, Qt.Key.Key_Escape)                 # Esc ends it: the menu follows
    assert not v.measuring and not w.measure_action.isChecked()
    assert w.message_label.text() == ""


def test_measure_geometry():
    assert angle_at((0, 1), (0, 0), (1, 0)) == pytest.approx(90.0)
    assert angle_at((1, 0), (0, 0), (-1, 0)) == pytest.approx(180.0)
    assert np.isnan(angle_at((0, 0), (0, 0), (1, 0)))
    m = Measurement().add((0, 0)).add((3, 4))
    assert m.distance == pytest.approx(5.0) and m.angle is None
    assert m.add((1, 1)).add((9, 9)).points == ((9.0, 9.0),)


# ---- readable track IDs -----------------------------------------------------------------------
def _label_pixels(with_label: np.ndarray, without: np.ndarray) -> np.ndarray:
    """The pixels of the label's bounding box (where the two renders differ)."""
    diff = np.abs(with_label.astype(int) - without.astype(int)).sum(axis=2) > 0
    ys, xs = np.nonzero(diff)
    assert len(ys), "no label drawn"
    return with_label[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def _dark_box_with_white_text(px: np.ndarray) -> None:
    grey = px.astype(int).mean(axis=2)
    assert px.shape[0] >= 10 and px.shape[1] >= 15
    assert (grey < 70).mean() > 0.5, "the label's background is not dark"
    assert (grey > 200).sum() >= 10, "no white text in the label"
    # its border is dark all round: white text never touches the white frame
    rim = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    assert (rim < 70).all()


def test_track_id_labels_sit_on_a_dark_box_in_the_gui_and_in_overlay_videos():
    white = np.full((480, 640, 3), 255, np.uint8)
    frame = PoseFrame(0, 0.0, (480, 640), (person_at(standing_person(), track_id=12),),
                      image=white)
    # the GUI (what the view shows): the label's box, then with the skeleton drawn too
    s = OverlaySettings(skeleton=False, boxes=True, ids=True)
    on, _ = render_frame(frame, s, (640, 480))
    off, _ = render_frame(frame, dataclasses.replace(s, ids=False), (640, 480))
    _dark_box_with_white_text(_label_pixels(on, off))
    # the followed person's label: dark text on the highlight colour
    sel, _ = render_frame(frame, dataclasses.replace(s, angle_track=12), (640, 480))
    offsel, _ = render_frame(frame, dataclasses.replace(s, angle_track=12, ids=False), (640, 480))
    px = _label_pixels(sel, offsel).reshape(-1, 3).astype(int)
    assert (np.abs(px - np.array(SELECTED_COLOR)).sum(axis=1) < 30).mean() > 0.4
    assert (px.mean(axis=1) < 60).sum() >= 10
    # `annotate --overlay` draws through core.visualization.draw_pose_frame
    drawn = draw_pose_frame(white.copy(), frame)
    plain = white.copy()
    p = frame.people[0]
    draw_skeleton(plain, p.keypoints, np.nan_to_num(p.keypoint_scores), 0.3)   # no label
    _dark_box_with_white_text(_label_pixels(drawn, plain))


def test_id_labels_of_people_side_by_side_do_not_cover_each_other():
    """Two people 12 px apart (a pair walking together): each id label, centred over its
    person's head, would cover the other's. Both stay whole, side by side, in the GUI and
    in the overlay video; a person alone keeps the label where it was."""
    import cv2
    grey = np.full((480, 640, 3), 90, np.uint8)
    people = (person_at(standing_person(cx=200), track_id=1),
              person_at(standing_person(cx=212), track_id=27))
    frame = PoseFrame(0, 0.0, (480, 640), people, image=grey)
    s = OverlaySettings(ids=True)
    on, _ = render_frame(frame, s, (640, 480))
    off, _ = render_frame(frame, dataclasses.replace(s, ids=False), (640, 480))
    boxes = (on != off).any(axis=2).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(boxes)
    assert n - 1 == 2, "the two id labels run into one"
    # the overlay video: the label boxes it records are apart, each near its own head
    labels: list = []
    draw_pose_frame(grey.copy(), frame, labels=labels)
    (a0, ay0, a1, ay1), (b0, by0, b1, by1) = labels
    assert a1 <= b0 or b1 <= a0 or ay1 <= by0 or by1 <= ay0
    assert all(abs((x0 + x1) / 2 - cx) < 45 for (x0, _, x1, _), cx in zip(labels, (200, 212)))
    alone: list = []
    draw_pose_frame(grey.copy(), dataclasses.replace(frame, people=people[:1]), labels=alone)
    assert alone[0] == labels[0]


def test_angle_lists_leave_id_labels_and_each_other_readable():
    """Two people close together, nobody selected: the first person's angle list would
    cover the second's id label on its right, so it goes to the left; the label's pixels
    are those drawn without any angles."""
    grey = np.full((480, 640, 3), 90, np.uint8)
    people = (person_at(standing_person(cx=200), track_id=1),
              person_at(standing_person(cx=300), track_id=2))
    frame = PoseFrame(0, 0.0, (480, 640), people, image=grey)
    s = OverlaySettings(ids=True, angles=("left_knee", "right_knee", "trunk"))
    with_lists, _ = render_frame(frame, s, (640, 480))
    ids_only, _ = render_frame(frame, dataclasses.replace(s, angles=()), (640, 480))
    bare, _ = render_frame(frame, dataclasses.replace(s, angles=(), ids=False), (640, 480))
    label = (ids_only != bare).any(axis=2)
    label[:, :250] = False                                # the second person's label only
    assert label.sum() > 100
    assert (with_lists[label] == ids_only[label]).all()
    lists = (with_lists != ids_only).any(axis=2)
    assert lists[:, :122].any()                           # the first list: left of its box
    assert lists[:, 380:].any()                           # the second: right of its box


def test_an_angle_list_goes_to_the_side_where_it_darkens_nobody_else():
    """Free space on the left, someone else's body on the right (their id label clear of
    the list): the list goes left, in the GUI and in the overlay video."""
    from core.visualization import draw_angles
    grey = np.full((480, 640, 3), 90, np.uint8)
    a, b = (person_at(standing_person(cx=250), track_id=1),
            person_at(standing_person(cx=470), track_id=2))
    frame = PoseFrame(0, 0.0, (480, 640), (a, b), image=grey)
    s = OverlaySettings(ids=True, angles=("left_knee", "right_knee", "trunk"),
                        angle_track=1)
    with_list, _ = render_frame(frame, s, (640, 480))
    without, _ = render_frame(frame, dataclasses.replace(s, angles=()), (640, 480))
    drawn = (with_list != without).any(axis=2)
    ax, bx = int(a.box[0]), int(b.box[0])
    assert drawn[:, :ax].any() and not drawn[:, ax + int(a.box[2]):].any()
    # core.visualization.draw_angles, as the overlay video calls it
    values = {"left_knee": 170.0, "right_knee": 171.0, "trunk": 2.0}
    canvas, taken = grey.copy(), []
    assert draw_angles(canvas, a.box, values, taken=taken, others=[b.box])
    assert taken[0][2] <= ax                                       # left of the box
    canvas, taken = grey.copy(), []
    assert draw_angles(canvas, a.box, values, taken=taken)         # nobody else: the right
    assert taken[0][0] >= ax + a.box[2]
    assert bx < ax + a.box[2] + 6 + (taken[0][2] - taken[0][0])     # it would cover b


# ---- the attention legend and its messages -----------------------------------------------------
def test_the_legend_shows_delta_and_says_when_delta_hides_everything(qtbot, view):
    att = synthetic_attention(peak=0.05)
    frame = attention_frame(att)
    s = OverlaySettings(attention=True, attention_delta=0.001, attention_keypoint=9)
    m = show_rendered(view, frame, s)
    assert m.legend is not None and m.legend.state == AttentionLegend.SHOWN
    assert "δ = 0.0010" in view.legend_text
    assert "left wrist" in view.legend_text and "layer 2/2" in view.legend_text
    assert view.attention_message == ""
    view.repaint()
    # delta above every value: nothing is drawn, and the view says why
    m = show_rendered(view, frame, dataclasses.replace(s, attention_delta=0.06))
    assert m.legend.state == AttentionLegend.HIDDEN
    assert "δ = 0.0600" in view.legend_text
    assert "hides all attention" in view.attention_message
    assert "0.0500" in view.attention_message                # the value to go below
    view.repaint()
    # just below the peak the strongest cells still show: no message
    show_rendered(view, frame, dataclasses.replace(s, attention_delta=0.049))
    assert view.attention_message == ""
    # all keypoints and a clicked point say so
    show_rendered(view, frame, dataclasses.replace(s, attention_keypoint=None))
    assert "all keypoints" in view.legend_text
    show_rendered(view, frame, dataclasses.replace(s, click_xy=(300.0, 250.0)))
    assert "the point (300, 250)" in view.legend_text
    # attention off: no legend
    show_rendered(view, frame, dataclasses.replace(s, attention=False))
    assert view.legend_text == "" and view.attention_message == ""


def test_computing_attention_shows_until_the_maps_arrive(qtbot, view):
    s = OverlaySettings(attention=True)
    show_rendered(view, attention_frame(None), s)              # on, but no maps yet
    assert view.attention_pending
    assert view.attention_message.startswith("Computing attention")
    view.repaint()
    show_rendered(view, attention_frame(synthetic_attention()), s)
    assert not view.attention_pending and view.attention_message == ""
    show_rendered(view, attention_frame(None, people=False), s)
    assert not view.attention_pending and "No person" in view.attention_message


def test_legend_in_the_window_follows_the_delta_slider(qtbot, window, random_tp_r_a3_checkpoint):
    """The real path: TransPose attention computed for the paused frame, the delta slider,
    the renderer, the view's legend."""
    from app.panels import DELTA_MAX, DELTA_STEPS
    w, c, panel = window, window.controller, window.panel
    states = []
    w.renderer.rendered.connect(
        lambda out: states.append(out.mapping.legend.state if out.mapping.legend else None))
    open_clip(qtbot, w)
    panel.set_model(str(random_tp_r_a3_checkpoint))
    qtbot.waitUntil(lambda: c.engine is not None and c.engine.has_attention, timeout=90_000)
    panel.attention_check.setChecked(True)
    qtbot.waitUntil(lambda: settled(w) and c.current.attention is not None
                    and w.view.legend is not None
                    and w.view.legend.state == AttentionLegend.SHOWN, timeout=90_000)
    assert "δ = 0.0000" in w.view.legend_text and "layer 3/3" in w.view.legend_text
    peak = w.view.legend.peak
    assert peak is not None and peak > 0
    panel.delta_slider.setValue(10)
    want = f"δ = {10 * DELTA_MAX / DELTA_STEPS:.4f}"
    qtbot.waitUntil(lambda: settled(w) and want in w.view.legend_text, timeout=20_000)
    # a delta above the strongest value hides the map and the view says so: a keypoint
    # whose strongest value the slider can reach (the random weights peak near 0.02)
    for k in range(17):
        panel.keypoint_combo.setCurrentIndex(panel.keypoint_combo.findData(k))
        qtbot.waitUntil(lambda: settled(w) and w.view.legend is not None
                        and w.view.legend.peak is not None
                        and w.view.legend.what == COCO_KEYPOINT_NAMES[k].replace("_", " "),
                        timeout=20_000)
        peak = w.view.legend.peak
        if peak < DELTA_MAX * (DELTA_STEPS - 1) / DELTA_STEPS:
            break
    else:
        pytest.skip("every keypoint's attention peaks above the delta slider's top")
    assert w.view.attention_message == ""
    panel.delta_slider.setValue(int(np.floor(peak / DELTA_MAX * DELTA_STEPS)) + 1)
    qtbot.waitUntil(lambda: settled(w) and "hides all attention" in w.view.attention_message
                    and AttentionLegend.HIDDEN in states, timeout=20_000)
    assert f"{peak:.4f}" in w.view.attention_message
    assert AttentionLegend.SHOWN in states


def test_skeleton_lines_are_as_thick_as_the_person_is_large():
    """On an HD frame a person 600 px tall keeps the frame's 4 px bones; a pedestrian 70 px
    tall gets 1 px bones (with the frame's, their face and limbs merged into one blob)."""
    grey = np.full((900, 1600, 3), 90, np.uint8)

    def shin_width(height: float) -> int:
        img = grey.copy()
        kps = standing_person(cx=800, top=100, height=height)
        draw_skeleton(img, kps, np.full(17, 0.9, np.float32), 0.3)
        (kx, ky), (ax, ay) = kps[13], kps[15]        # left knee, left ankle
        y = int(round((ky + ay) / 2))
        x = int(round((kx + ax) / 2))
        row = (img[y, x - 7:x + 8] != 90).any(axis=1)   # (the other shin lies further)
        return int(row.sum())

    big, small = shin_width(600), shin_width(70)
    assert 4 <= big <= 8, big             # anti-aliased edges add a pixel or two each side
    assert 1 <= small <= 3, small
    assert small < big
