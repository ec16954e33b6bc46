#!/usr/bin/env python
"""The README's picture of the review view: the window at 1280x720 on the Sports2D clip,
the shipped TransPose's real attention for the walker's left knee, the view zoomed on the
walker (who is followed), and the knee angle measured with three clicks.

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/make_gui_review_shot.py \
        [--video ~/.cache/transpose-studio/demo/sports2d_demo.mp4] [--out docs/img/gui_review.jpg]

Driven like a person drives the window (wheel, Shift+click, View > Measure, clicks), with
fresh settings in a temporary folder.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QPoint, QPointF, QSettings, Qt  # noqa: E402
from PySide6.QtGui import QWheelEvent  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

FRAME = 120
KNEE = ("left_hip", "left_knee", "left_ankle")


def wait(app: QApplication, cond, timeout_s: float = 180.0) -> None:
    end = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > end:
            raise SystemExit("timed out waiting for the window")
        app.processEvents()
        time.sleep(0.02)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", default=str(Path.home() / ".cache/transpose-studio/demo/"
                                          "sports2d_demo.mp4"))
    p.add_argument("--out", default="docs/img/gui_review.jpg")
    a = p.parse_args()
    if not Path(a.video).is_file():
        raise SystemExit(f"{a.video}: no such video (make demo fetches it)")

    from app.main_window import MainWindow
    from core.keypoints import COCO_KEYPOINT_NAMES

    app = QApplication.instance() or QApplication(sys.argv[:1])
    tmp = tempfile.TemporaryDirectory()
    w = MainWindow(QSettings(str(Path(tmp.name) / "s.ini"), QSettings.Format.IniFormat),
                   probe_cameras=False)
    w.resize(1280, 720)
    w.angles_dock.hide()            # the whole height for the video
    w.show()
    c, v = w.controller, w.view
    knee = COCO_KEYPOINT_NAMES.index("left_knee")
    w.panel.set_attention(True, knee)
    w.open_source(a.video, start=FRAME)

    def settled() -> bool:
        r = w.last_rendered
        return (c.idle and w.renderer.idle and c.current is not None and r is not None
                and r.frame is c.current and c.current.attention is not None)

    wait(app, lambda: settled() and c.current.index == FRAME)
    walker = max(c.current.people, key=lambda q: q.box[2] * q.box[3])
    bx, by, bw, bh = (float(t) for t in walker.box)
    # follow the walker (Shift+click), then zoom about them with the wheel
    centre = v.image_to_widget(bx + bw / 2, by + bh / 2)
    QTest.mouseClick(v, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier,
                     QPoint(int(centre.x()), int(centre.y())))
    ev = QWheelEvent(QPointF(centre), v.mapToGlobal(QPointF(centre)), QPoint(0, 0),
                     QPoint(0, 240), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                     Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(v, ev)
    wait(app, lambda: settled() and w.last_rendered.mapping.origin != (0.0, 0.0))
    # View > Measure, three clicks on hip, knee, ankle: the knee angle
    w.measure_action.trigger()
    kps = walker.keypoints
    for name in KNEE:
        pt = v.image_to_widget(*(float(t) for t in kps[COCO_KEYPOINT_NAMES.index(name)]))
        QTest.mouseClick(v, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                         QPoint(int(pt.x()), int(pt.y())))
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not w.grab().save(str(out), quality=88):
        raise SystemExit(f"{out}: could not be written")
    print(f"{out}: frame {c.current.index}, track #{walker.track_id}, "
          f"{w.view.measurement.text}")
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
