"""Overlay rendering off the GUI thread.

Scaling a full-HD frame, warping attention maps and blending them take several milliseconds;
done on the GUI thread during playback they would stall the event loop. A single "gui-render"
thread takes the newest request (older unrendered ones are skipped), draws it with
`app.overlay.render_frame`, wraps it in a QImage (QImage, unlike QPixmap, may be built on any
thread) and hands it back with a queued signal.

The view's zoom (`set_viewport`) applies to every later request: a zoomed view gets only the
part of the frame it shows, rendered sharp at the zoomed scale.
"""
from __future__ import annotations

import logging
import sys
import threading
import traceback
from dataclasses import dataclass

import cv2
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from core.types import PoseFrame

from .controller import lower_priority
from .overlay import (JointMatrix, OverlaySettings, TrailBuffer, ViewMapping, Viewport,
                      joint_matrix, render_frame)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderRequest:
    frame: PoseFrame
    settings: OverlaySettings
    target_wh: tuple[int, int]      # device pixels
    device_pixel_ratio: float = 1.0
    serial: int = 0
    viewport: Viewport | None = None     # the view's zoom and centre (None: the whole frame)


@dataclass(frozen=True)
class RenderedFrame:
    image: QImage
    mapping: ViewMapping            # device pixels <-> image pixels
    frame: PoseFrame
    serial: int
    inset: JointMatrix | None = None   # TFPose: the joint-dependency matrix the view paints


class FrameRenderer(QObject):
    """Renders the newest submitted frame on its own thread; emits `rendered`."""

    rendered = Signal(object)       # RenderedFrame

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._cv = threading.Condition()
        self._pending: RenderRequest | None = None
        self._busy = False
        self._closed = False
        self._serial = 0
        self._viewport: Viewport | None = None
        self._trails = TrailBuffer()
        self._thread = threading.Thread(target=self._run, name="gui-render", daemon=True)
        self._thread.start()
        lower_priority([self._thread])            # below the GUI thread

    def submit(self, frame: PoseFrame, settings: OverlaySettings, target_wh: tuple[int, int],
               device_pixel_ratio: float = 1.0) -> int:
        with self._cv:
            self._serial += 1
            self._pending = RenderRequest(frame, settings, target_wh, device_pixel_ratio,
                                          self._serial, self._viewport)
            self._cv.notify()
            return self._serial

    def set_viewport(self, viewport: Viewport | None) -> None:
        """The part of the frame later requests render (VideoView.viewport_changed)."""
        with self._cv:
            self._viewport = viewport if viewport is not None and viewport.zoomed else None

    @property
    def viewport(self) -> Viewport | None:
        with self._cv:
            return self._viewport

    @property
    def idle(self) -> bool:
        with self._cv:
            return self._pending is None and not self._busy

    def _run(self) -> None:
        while True:
            with self._cv:
                while self._pending is None and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                req, self._pending = self._pending, None
                self._busy = True
            try:
                out = self._render(req)
            except Exception:                        # noqa: BLE001 - a drawing bug must not kill playback
                log.error("rendering frame %d failed:\n%s", req.frame.index, traceback.format_exc())
                out = None
            with self._cv:
                self._busy = False
            if out is not None and not self._closed:
                self.rendered.emit(out)

    def _render(self, req: RenderRequest) -> RenderedFrame:
        bgr, mapping = render_frame(req.frame, req.settings, req.target_wh, self._trails,
                                    req.viewport)
        # BGRA bytes are Qt's RGB32 on little-endian machines: the GUI thread's drawImage is
        # then a plain blit instead of a per-paint format conversion
        bgra = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
        h, w = bgra.shape[:2]
        fmt = QImage.Format.Format_RGB32 if sys.byteorder == "little" else None
        if fmt is None:
            image = QImage(bgr.data, w, h, int(bgr.strides[0]), QImage.Format.Format_BGR888).copy()
        else:
            image = QImage(bgra.data, w, h, int(bgra.strides[0]), fmt).copy()
        image.setDevicePixelRatio(req.device_pixel_ratio)
        return RenderedFrame(image, mapping, req.frame, req.serial,
                             joint_matrix(req.frame, req.settings))

    def shutdown(self, timeout: float = 0.5) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        self._thread.join(timeout)
