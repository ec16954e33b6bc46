"""The video view: paints the newest rendered frame, maps clicks back to image pixels.

What a person can do with the mouse and keys here:

* wheel: zoom about the cursor (up to 16x the fit-to-view scale); `+` / `-` zoom about the
  middle; double-click or `0`: back to the whole frame;
* drag (left or middle button) while zoomed: pan;
* click: `clicked` (the window decides: the attention point with TransPose attention on,
  else select and follow the person there); Shift+click: `person_clicked` (select and
  follow the person there, whatever the attention mode); right-click: `cleared`;
* Esc: `deselect_requested` (stop following the selected person);
* `M`: the measuring tool (clicks add points: two give a distance, three the angle at the
  second; right-click clears; `M` or Esc leaves); drawn over the frame in source pixels;
* a click on the TFPose joint-dependency inset: `keypoint_picked`.

Zoom and pan change `viewport`; `viewport_changed` tells the renderer (at most every 40 ms
while it changes), which then renders just the part shown, sharp. Until that render arrives, or
when nobody listens, the view scales the image it has. A followed person (the rendered
`ViewMapping.followed_box`) is kept in the middle half of a zoomed view as they move.

Over the frame the view paints the attention legend (what the colours mean, the delta in
use) from `ViewMapping.legend`, and says when attention is being computed or when delta
hides all of it.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (QColor, QFont, QFontMetricsF, QHelpEvent, QImage,
                           QKeyEvent, QMouseEvent, QPainter, QPainterPath, QPaintEvent, QPen,
                           QPixmap, QResizeEvent, QWheelEvent)
from PySide6.QtWidgets import QApplication, QSizePolicy, QToolTip, QWidget

from .measure import Measurement
from .overlay import (AttentionLegend, JointMatrix, ViewMapping, Viewport, colour_bar,
                      view_geometry)


@dataclass(frozen=True)
class _InsetLayout:
    """Where the parts of the joint-dependency inset are, in widget coordinates."""

    rect: QRectF                 # the whole inset
    grid: QRectF                 # the K x K cells
    cell: float
    label_w: float
    header_h: float
    title: QRectF
    legend: QRectF


@dataclass
class _Press:
    """A mouse button held down on the frame: a click on release, or a pan once it moves."""

    pos: QPointF
    button: Qt.MouseButton
    center: tuple[float, float]
    shift: bool
    panning: bool = False


def _bar_image(name: str) -> QImage:
    rgb = np.ascontiguousarray(colour_bar(name)[None])          # (1, 256, 3)
    return QImage(rgb.data, rgb.shape[1], 1, rgb.strides[0], QImage.Format.Format_RGB888).copy()


class VideoView(QWidget):
    """Shows the rendered frame (the renderer already scaled it for the view), zoomable.

    Painting is a single drawImage, 1:1 once the renderer has caught up with the zoom: all
    scaling and overlay drawing happen off this thread. The legend, messages and the
    measurement are a few small shapes painted on top.
    """

    clicked = Signal(float, float)          # image pixels: a plain left click (not a drag)
    cleared = Signal()                      # right click: forget the clicked point
    size_changed = Signal()                 # after resizing settles: render again
    keypoint_picked = Signal(int)           # a row of the joint-dependency inset was clicked
    person_clicked = Signal(float, float)   # Shift+click, image pixels: select/follow a person
    deselect_requested = Signal()           # Esc (not measuring): stop following the person
    viewport_changed = Signal(object)       # Viewport, once zooming or panning settles
    measure_mode_changed = Signal(bool)
    measurement_changed = Signal(object)    # Measurement (its points, in image pixels)

    INSET_MARGIN = 8                        # from the view's top-left corner
    INSET_CELL = 11                         # one matrix cell, logical px
    INSET_PAD = 6
    MAX_ZOOM = 16.0                         # times the fit-to-view scale
    ZOOM_STEP = 1.25                        # per wheel notch (and per + / - key)
    FOLLOW_ZONE = 0.5                       # a followed person stays in this middle share

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 200)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._image: QImage | None = None
        self._mapping: ViewMapping | None = None
        self._inset: JointMatrix | None = None
        self._inset_pixmap: QPixmap | None = None
        self._placeholder = "Open a video, an image folder or a camera (File menu or the bar above)"
        self._busy_text = ""
        self._resize_timer = QTimer(self)
        self._resize_timer.setSingleShot(True)
        self._resize_timer.setInterval(60)
        self._resize_timer.timeout.connect(self.size_changed)
        # zoom and pan
        self._viewport = Viewport()
        self._press: _Press | None = None
        self._followed: tuple[float, float, float, float] | None = None
        self._viewport_timer = QTimer(self)
        self._viewport_timer.setSingleShot(True)
        self._viewport_timer.setInterval(40)       # at most 25 re-renders a second
        self._viewport_timer.timeout.connect(self._emit_viewport)
        self._emitted: Viewport | None = None
        # the measuring tool
        self._measuring = False
        self._measure = Measurement()
        self._last_point_at = -1.0          # when a click last added a measuring point
        # attention feedback
        self._pending_since: float | None = None
        self._message_rect = QRectF()
        self._spinner = QTimer(self)
        self._spinner.setInterval(120)
        self._spinner.timeout.connect(self._tick)
        self._bars: dict[str, QImage] = {}
        self.setToolTip("")

    # ---- content -----------------------------------------------------------------------------
    def set_image(self, image: QImage, mapping: ViewMapping,
                  inset: JointMatrix | None = None) -> None:
        old = self._mapping
        self._image, self._mapping = image, mapping
        if inset is not self._inset:
            self._inset, self._inset_pixmap = inset, None
        if old is not None and old.image_hw != mapping.image_hw:
            self._set_viewport(Viewport(), now=True)  # another frame size: start over
            self.clear_measurement()
        self._update_pending(mapping.legend)
        self._follow(mapping.followed_box)
        self.update()

    def clear(self, placeholder: str | None = None) -> None:
        self._image, self._mapping = None, None
        self._inset, self._inset_pixmap = None, None
        self._followed = None
        if placeholder is not None:
            self._placeholder = placeholder
        self._set_viewport(Viewport(), now=True)       # a new source: the whole frame
        self.clear_measurement()
        self._update_pending(None)
        self.update()

    def set_busy(self, text: str) -> None:
        self._busy_text = text
        self.update()

    @property
    def has_image(self) -> bool:
        return self._image is not None

    @property
    def mapping(self) -> ViewMapping | None:
        """How the image shown sits over its frame (None without one)."""
        return self._mapping if self._image is not None else None

    @property
    def inset(self) -> JointMatrix | None:
        """The joint-dependency matrix painted in the top-left corner (TFPose), if any."""
        return self._inset if self._image is not None else None

    def target_size(self) -> tuple[tuple[int, int], float]:
        """((w, h) in device pixels, device pixel ratio) the renderer should aim for."""
        dpr = float(self.devicePixelRatioF())
        return (max(1, int(self.width() * dpr)), max(1, int(self.height() * dpr))), dpr

    def sizeHint(self) -> QSize:
        return QSize(960, 540)

    # ---- geometry: zoom and pan ----------------------------------------------------------------
    def _geometry(self) -> tuple[float, tuple[float, float]] | None:
        """(logical px per source px, the source point in the middle of the view)."""
        if self._image is None or self._mapping is None:
            return None
        (tw, th), dpr = self.target_size()
        scale, centre = view_geometry(self._mapping.image_hw, (tw, th), self._viewport)
        return scale / dpr, centre

    @property
    def zoom(self) -> float:
        """Times the fit-to-view scale (1: the whole frame)."""
        return self._viewport.zoom

    @property
    def view_scale(self) -> float | None:
        """Logical view pixels per source pixel (None without an image)."""
        g = self._geometry()
        return g[0] if g is not None else None

    @property
    def viewport(self) -> Viewport:
        """The zoom and the (kept-in-bounds) source point in the middle of the view."""
        g = self._geometry()
        if not self._viewport.zoomed or g is None:
            return Viewport()
        return Viewport(self._viewport.zoom, g[1])

    def _set_viewport(self, viewport: Viewport, now: bool = False) -> None:
        if not viewport.zoomed:
            viewport = Viewport()
        elif self._mapping is not None:           # keep the centre inside the frame
            (tw, th), _ = self.target_size()
            viewport = Viewport(viewport.zoom,
                                view_geometry(self._mapping.image_hw, (tw, th), viewport)[1])
        if viewport == self._viewport:
            return
        self._viewport = viewport
        self._update_cursor()
        self.update()
        if now:
            self._viewport_timer.stop()
            self._emit_viewport()
        elif not self._viewport_timer.isActive():  # throttled, not debounced: a steady
            self._viewport_timer.start()           # pan or follow still reaches the renderer

    def _emit_viewport(self) -> None:
        vp = self.viewport
        if vp != self._emitted:
            self._emitted = vp
            self.viewport_changed.emit(vp)

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        """Zoom by `factor`, keeping the frame point under `anchor` (widget coordinates;
        default: the middle) where it is."""
        g = self._geometry()
        if g is None:
            return
        s, (cx, cy) = g
        zoom = float(np.clip(self._viewport.zoom * factor, 1.0, self.MAX_ZOOM))
        if abs(zoom - self._viewport.zoom) < 1e-9:
            return
        mid = QPointF(self.width() / 2, self.height() / 2)
        a = anchor if anchor is not None else mid
        qx, qy = cx + (a.x() - mid.x()) / s, cy + (a.y() - mid.y()) / s
        s_new = s * zoom / self._viewport.zoom
        self._set_viewport(Viewport(zoom, (qx - (a.x() - mid.x()) / s_new,
                                           qy - (a.y() - mid.y()) / s_new)))

    def reset_view(self) -> None:
        """Back to the whole frame."""
        self._set_viewport(Viewport())

    def image_to_widget(self, x: float, y: float) -> QPointF | None:
        """Where a source pixel is in the widget (logical coordinates)."""
        g = self._geometry()
        if g is None:
            return None
        s, (cx, cy) = g
        return QPointF(self.width() / 2 + (x - cx) * s, self.height() / 2 + (y - cy) * s)

    def widget_to_image(self, pos: QPointF) -> tuple[float, float] | None:
        """The source pixel under a widget position (None off the frame)."""
        g = self._geometry()
        if g is None or self._mapping is None:
            return None
        s, (cx, cy) = g
        x = cx + (pos.x() - self.width() / 2) / s
        y = cy + (pos.y() - self.height() / 2) / s
        h, w = self._mapping.image_hw
        if not (0 <= x < w and 0 <= y < h):
            return None
        return x, y

    def _image_rect(self) -> QRectF | None:
        """Where the rendered image is painted (logical coordinates)."""
        g, image, m = self._geometry(), self._image, self._mapping
        if g is None or image is None or m is None:
            return None
        s, (cx, cy) = g
        k = s / m.scale                       # logical px per rendered pixel
        x = self.width() / 2 + (m.origin[0] - cx) * s
        y = self.height() / 2 + (m.origin[1] - cy) * s
        return QRectF(x, y, image.width() * k, image.height() * k)

    def _follow(self, box: tuple[float, float, float, float] | None) -> None:
        """Keep a followed person who moved in the middle of a zoomed view."""
        moved = box is not None and box != self._followed
        self._followed = box
        if not moved or not self._viewport.zoomed or self._press is not None:
            return
        g = self._geometry()
        if g is None:
            return
        s, (cx, cy) = g
        bx, by = box[0] + box[2] / 2, box[1] + box[3] / 2
        centre = []
        for b, c, half in ((bx, cx, self.width() / (2 * s)), (by, cy, self.height() / (2 * s))):
            zone = self.FOLLOW_ZONE * half
            d = b - c
            centre.append(c + d - math.copysign(zone, d) if abs(d) > zone else c)
        self._set_viewport(Viewport(self._viewport.zoom, (centre[0], centre[1])))

    def _update_cursor(self) -> None:
        if self._press is not None and self._press.panning:
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        elif self._measuring:
            self.setCursor(Qt.CursorShape.CrossCursor)
        elif self._viewport.zoomed:
            self.setCursor(Qt.CursorShape.OpenHandCursor)
        else:
            self.unsetCursor()

    # ---- the measuring tool --------------------------------------------------------------------
    @property
    def measuring(self) -> bool:
        return self._measuring

    @property
    def measurement(self) -> Measurement:
        """The points clicked in measure mode (image pixels) and what they measure."""
        return self._measure

    def set_measure_mode(self, on: bool) -> None:
        """Clicks add measuring points while on; leaving clears the measurement."""
        on = bool(on)
        if on == self._measuring:
            return
        self._measuring = on
        self._measure = Measurement()
        self._update_cursor()
        self.update()
        self.measure_mode_changed.emit(on)
        self.measurement_changed.emit(self._measure)

    def clear_measurement(self) -> None:
        if self._measure.points:
            self._measure = Measurement()
            self.update()
            self.measurement_changed.emit(self._measure)

    def _add_point(self, xy: tuple[float, float]) -> None:
        self._measure = self._measure.add(xy)
        self._last_point_at = time.monotonic()
        self.update()
        self.measurement_changed.emit(self._measure)

    # ---- attention feedback --------------------------------------------------------------------
    @property
    def legend(self) -> AttentionLegend | None:
        m = self.mapping
        return m.legend if m is not None else None

    @property
    def legend_text(self) -> str:
        """The attention legend's caption (empty while attention is off)."""
        leg = self.legend
        return leg.text if leg is not None else ""

    @property
    def attention_message(self) -> str:
        """What the view says over the frame about the attention ("computing…", "delta
        hides everything", nobody to explain); empty while the map shows."""
        leg = self.legend
        return leg.message if leg is not None else ""

    @property
    def attention_pending(self) -> bool:
        leg = self.legend
        return leg is not None and leg.state == AttentionLegend.PENDING

    def _tick(self) -> None:
        """Animate the "computing attention" message: repaint its strip only."""
        r = self._message_rect
        if r.isEmpty():
            self.update()
        else:
            self.update(0, int(r.top()) - 2, self.width(), int(r.height()) + 4)

    def _update_pending(self, legend: AttentionLegend | None) -> None:
        pending = legend is not None and legend.state == AttentionLegend.PENDING
        if pending and self._pending_since is None:
            self._pending_since = time.monotonic()
            self._spinner.start()
        elif not pending and self._pending_since is not None:
            self._pending_since = None
            self._spinner.stop()

    # ---- the joint-dependency inset (TFPose) ---------------------------------------------------
    def _fonts(self) -> tuple[QFont, QFont]:
        small = QFont(self.font())
        small.setPixelSize(10)
        title = QFont(self.font())
        title.setPixelSize(11)
        title.setBold(True)
        return small, title

    def _title(self, m: JointMatrix) -> str:
        return f"Joint dependencies  #{m.track_id}  layer {m.layer + 1}/{m.num_layers}"

    LEGEND = "row: a joint's query · column: what it attends to"

    def inset_layout(self) -> _InsetLayout | None:
        m = self.inset
        if m is None:
            return None
        small, title = self._fonts()
        fm, ft = QFontMetricsF(small), QFontMetricsF(title)
        k = len(m.labels)
        pad, cell = float(self.INSET_PAD), float(self.INSET_CELL)
        label_w = max(fm.horizontalAdvance(t) for t in m.labels) + 5
        title_h, legend_h = ft.height() + 3, fm.height() + 3
        width = max(pad + label_w + k * cell + pad, ft.horizontalAdvance(self._title(m)) + 2 * pad,
                    fm.horizontalAdvance(self.LEGEND) + 2 * pad)
        height = pad + title_h + label_w + k * cell + legend_h + pad
        x0 = y0 = float(self.INSET_MARGIN)
        rect = QRectF(x0, y0, width, height)
        gx = x0 + pad + label_w + max(0.0, (width - 2 * pad - label_w - k * cell) / 2)
        grid = QRectF(gx, y0 + pad + title_h + label_w, k * cell, k * cell)
        return _InsetLayout(rect, grid, cell, label_w, label_w,
                            QRectF(x0 + pad, y0 + pad, width - 2 * pad, title_h),
                            QRectF(x0 + pad, grid.bottom() + 2, width - 2 * pad, legend_h))

    def inset_cell_at(self, pos: QPointF) -> tuple[int, int | None] | None:
        """(row, column) of the inset under pos: a cell, or (row, None) on a row's label."""
        lay, m = self.inset_layout(), self.inset
        if lay is None or m is None or not lay.rect.contains(pos):
            return None
        g = lay.grid
        if not (g.top() <= pos.y() < g.bottom()):
            return None
        row = int((pos.y() - g.top()) // lay.cell)
        if g.left() <= pos.x() < g.right():
            return row, int((pos.x() - g.left()) // lay.cell)
        if pos.x() < g.left():
            return row, None
        return None

    def _paint_inset(self, p: QPainter, lay: _InsetLayout, m: JointMatrix) -> None:
        small, title = self._fonts()
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(12, 12, 16, 200))
        p.drawRoundedRect(lay.rect, 6, 6)
        p.setFont(title)
        p.setPen(QColor(235, 235, 240))
        p.drawText(lay.title, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                   self._title(m))
        g, cell, k = lay.grid, lay.cell, len(m.labels)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        for r in range(k):
            for c in range(k):
                rgb = m.colors[r, c]
                p.fillRect(QRectF(g.left() + c * cell, g.top() + r * cell, cell - 1, cell - 1),
                           QColor(int(rgb[0]), int(rgb[1]), int(rgb[2])))
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setFont(small)
        for i, label in enumerate(m.labels):
            chosen = i == m.keypoint
            p.setPen(QColor(255, 255, 255) if chosen else QColor(180, 180, 190))
            # row label, right-aligned against the grid
            p.drawText(QRectF(g.left() - lay.label_w, g.top() + i * cell - 2, lay.label_w - 4,
                              cell + 4),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, label)
            # column label, written upwards above its column
            p.save()
            p.translate(g.left() + i * cell, g.top() - 3)
            p.rotate(-90)
            p.drawText(QRectF(0, -1, lay.header_h - 4, cell + 2),
                       Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, label)
            p.restore()
        if m.keypoint is not None:
            p.setPen(QPen(QColor(255, 255, 255), 1.5))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(QRectF(g.left() - 1, g.top() + m.keypoint * cell - 1, k * cell + 1,
                              cell + 1))
        p.setPen(QColor(160, 160, 170))
        p.drawText(lay.legend, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                   self.LEGEND)

    def _inset_image(self, lay: _InsetLayout, m: JointMatrix) -> QPixmap:
        """The inset drawn once per matrix (a frame), then blitted on every paint."""
        if self._inset_pixmap is None:
            dpr = float(self.devicePixelRatioF())
            pm = QPixmap(int((lay.rect.right() + 1) * dpr), int((lay.rect.bottom() + 1) * dpr))
            pm.setDevicePixelRatio(dpr)
            pm.fill(Qt.GlobalColor.transparent)
            painter = QPainter(pm)
            self._paint_inset(painter, lay, m)
            painter.end()
            self._inset_pixmap = pm
        return self._inset_pixmap

    # ---- painting over the frame: legend, messages, measurement ------------------------------
    def _bar(self, name: str) -> QImage:
        if name not in self._bars:
            self._bars[name] = _bar_image(name)
        return self._bars[name]

    @staticmethod
    def _small_font(base: QFont, px: int = 11, bold: bool = False) -> QFont:
        f = QFont(base)
        f.setPixelSize(px)
        f.setBold(bold)
        return f

    def _paint_legend(self, p: QPainter, leg: AttentionLegend) -> None:
        """Bottom-left: what the colours mean and the settings that shaped them."""
        if leg.state == AttentionLegend.NOBODY:
            return
        font = self._small_font(self.font(), 11)
        fm = QFontMetricsF(font)
        pad, bar_w, bar_h = 7.0, 168.0, 9.0
        avail = max(120.0, self.width() - 2 * self.INSET_MARGIN - 2 * pad)
        caption = fm.elidedText(leg.text, Qt.TextElideMode.ElideRight, avail)
        if leg.kind == "decoder":
            bars = [("links", "joint links"), ("jet", "sampling points")]
            ends, mid, after = ("weak", "strong"), "", ""
        else:
            bars = [("jet", "")]
            # the bar is on the colour scale: its middle is 25% of the peak under sqrt
            ends, mid = ("0", "100%"), "25%" if leg.scale == "sqrt" else "50%"
            after = "of each person's peak"
        row_h = bar_h + fm.height() + 4
        name_w = max((fm.horizontalAdvance(n) for _, n in bars if n), default=0.0)
        name_w = name_w + 8 if name_w else 0.0
        after_w = fm.horizontalAdvance(after) + 8 if after else 0.0
        width = min(avail, max(fm.horizontalAdvance(caption), name_w + bar_w + after_w)) + 2 * pad
        height = pad + fm.height() + 4 + row_h * len(bars) + pad - 4
        box = QRectF(self.INSET_MARGIN, self.height() - self.INSET_MARGIN - height, width, height)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(12, 12, 16, 200))
        p.drawRoundedRect(box, 6, 6)
        p.setFont(font)
        p.setPen(QColor(235, 235, 240))
        p.drawText(QRectF(box.left() + pad, box.top() + pad, width - 2 * pad, fm.height()),
                   Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, caption)
        y = box.top() + pad + fm.height() + 4
        for name, label in bars:
            x = box.left() + pad
            if label:
                p.setPen(QColor(200, 200, 210))
                p.drawText(QRectF(x, y - 2, name_w, bar_h + 4),
                           Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, label)
                x += name_w
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            p.drawImage(QRectF(x, y, bar_w, bar_h), self._bar(name))
            p.setPen(QColor(170, 170, 180))
            under = QRectF(x, y + bar_h + 1, bar_w, fm.height())
            p.drawText(under, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, ends[0])
            p.drawText(under, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop, ends[1])
            if mid:
                p.drawText(under, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, mid)
            if after:
                p.drawText(QRectF(x + bar_w + 8, y - 2, after_w, bar_h + 4),
                           Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, after)
            y += row_h

    def _pill(self, p: QPainter, top: float, text: str, fg: QColor,
              spinner: bool = False) -> QRectF:
        """A rounded message box centred at the top of the view; returns its rectangle."""
        font = self._small_font(self.font(), 12, bold=True)
        fm = QFontMetricsF(font)
        pad, spin = 10.0, (fm.height() + 6 if spinner else 0.0)
        avail = max(100.0, self.width() - 40.0)
        text = fm.elidedText(text, Qt.TextElideMode.ElideRight, avail - 2 * pad - spin)
        w = fm.horizontalAdvance(text) + 2 * pad + spin
        box = QRectF((self.width() - w) / 2, top, w, fm.height() + 12)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(12, 12, 16, 215))
        p.drawRoundedRect(box, 8, 8)
        if spinner:
            r = fm.height() / 2 - 1
            c = QPointF(box.left() + pad + r, box.center().y())
            p.setPen(QPen(QColor(255, 255, 255, 60), 2.5))
            p.drawEllipse(c, r, r)
            p.setPen(QPen(fg, 2.5, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
            start = int(-(time.monotonic() * 360 % 360) * 16)
            p.drawArc(QRectF(c.x() - r, c.y() - r, 2 * r, 2 * r), start, 100 * 16)
        p.setFont(font)
        p.setPen(fg)
        p.drawText(box.adjusted(pad + spin, 0, -pad, 0),
                   Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
        return box

    def _paint_messages(self, p: QPainter) -> None:
        top = float(self.INSET_MARGIN)
        leg = self.legend
        self._message_rect = QRectF()
        if leg is not None and leg.message:
            text, colour = leg.message, QColor(255, 214, 120)
            if leg.state == AttentionLegend.PENDING:
                since = self._pending_since
                waited = time.monotonic() - since if since is not None else 0.0
                text = f"{text}  {waited:.0f} s" if waited >= 1 else text
                colour = QColor(170, 215, 255)
            elif leg.state == AttentionLegend.NOBODY:
                colour = QColor(215, 215, 220)
            self._message_rect = self._pill(p, top, text, colour,
                                            spinner=leg.state == AttentionLegend.PENDING)
            top = self._message_rect.bottom() + 6
        if self._measuring:
            self._pill(p, top, self._measure.text, QColor(255, 226, 90))

    def _paint_measurement(self, p: QPainter) -> None:
        pts = [self.image_to_widget(*xy) for xy in self._measure.points]
        pts = [q for q in pts if q is not None]
        if not pts:
            return
        colour = QColor(255, 226, 90)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        path = QPainterPath(pts[0])
        for q in pts[1:]:
            path.lineTo(q)
        for pen in (QPen(QColor(10, 10, 10, 220), 4.5), QPen(colour, 2.0)):
            pen.setCapStyle(Qt.PenCapStyle.RoundCap)
            pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawPath(path)
        p.setPen(QPen(QColor(10, 10, 10), 1.5))
        p.setBrush(colour)
        for q in pts:
            p.drawEllipse(q, 4.0, 4.0)
        m = self._measure
        font = self._small_font(self.font(), 12, bold=True)
        p.setFont(font)
        fm = QFontMetricsF(font)

        def tag(at: QPointF, text: str) -> None:
            w, h = fm.horizontalAdvance(text) + 10, fm.height() + 4
            box = QRectF(at.x() - w / 2, at.y() - h / 2, w, h)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(12, 12, 16, 215))
            p.drawRoundedRect(box, 4, 4)
            p.setPen(colour)
            p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

        if len(pts) == 2 and m.distance is not None:
            a, b = pts
            tag(QPointF((a.x() + b.x()) / 2, (a.y() + b.y()) / 2 - 14), f"{m.distance:.1f} px")
        if len(pts) == 3 and m.angle_text:
            a, v, b = pts
            ua = math.degrees(math.atan2(-(a.y() - v.y()), a.x() - v.x()))
            ub = math.degrees(math.atan2(-(b.y() - v.y()), b.x() - v.x()))
            span = (ub - ua + 180) % 360 - 180            # the smaller way round
            arms = min(math.hypot(a.x() - v.x(), a.y() - v.y()),
                       math.hypot(b.x() - v.x(), b.y() - v.y()))
            r = max(8.0, min(36.0, 0.45 * arms))
            p.setPen(QPen(colour, 1.5))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawArc(QRectF(v.x() - r, v.y() - r, 2 * r, 2 * r), int(ua * 16), int(span * 16))
            bis = math.radians(ua + span / 2)
            off = r + fm.height()
            tag(QPointF(v.x() + off * math.cos(bis), v.y() - off * math.sin(bis)), m.angle_text)

    # ---- events ------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(24, 24, 28))
        rect, image = self._image_rect(), self._image
        if rect is not None and image is not None:
            dpr = image.devicePixelRatio() or 1.0
            if abs(rect.width() - image.width() / dpr) < 1e-3 * rect.width():
                # the renderer's scale: a plain blit on whole device pixels
                d = float(self.devicePixelRatioF()) or 1.0
                p.drawImage(QPointF(round(rect.x() * d) / d, round(rect.y() * d) / d), image)
            else:                             # zoom ahead of the renderer: scale what we have
                p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
                p.drawImage(rect, image)
                p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
            if self._measuring:
                self._paint_measurement(p)
            leg = self.legend
            if leg is not None:
                self._paint_legend(p, leg)
            lay, m = self.inset_layout(), self.inset
            if lay is not None and m is not None:
                p.drawPixmap(0, 0, self._inset_image(lay, m))
            self._paint_messages(p)
        else:
            p.setPen(QColor(170, 170, 180))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                       self._placeholder)
        if self._busy_text:
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(0, 0, 0, 170))
            box = QRectF(0, 0, min(self.width() - 20, 520), 44)
            box.moveCenter(QPointF(self.width() / 2, self.height() / 2))
            p.drawRoundedRect(box, 8, 8)
            p.setPen(QColor(255, 255, 255))
            p.drawText(box, Qt.AlignmentFlag.AlignCenter, self._busy_text)
        p.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.setFocus()
        pos = event.position()
        if event.button() == Qt.MouseButton.RightButton:
            self._press = None
            if self._measuring:
                self.clear_measurement()
            else:
                self.cleared.emit()
            return
        lay = self.inset_layout()
        if lay is not None and lay.rect.contains(pos):
            hit = self.inset_cell_at(pos)
            if event.button() == Qt.MouseButton.LeftButton and hit is not None:
                self.keypoint_picked.emit(hit[0])         # explain that row's keypoint
            return
        if event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton):
            shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
            g = self._geometry()
            self._press = _Press(QPointF(pos), event.button(), g[1] if g else (0.0, 0.0), shift)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        press = self._press
        if press is None or not self._viewport.zoomed:
            return
        d = event.position() - press.pos
        if not press.panning and d.manhattanLength() < QApplication.startDragDistance():
            return
        g = self._geometry()
        if g is None:
            return
        if not press.panning:
            press.panning = True
            self._update_cursor()
        s = g[0]
        self._set_viewport(Viewport(self._viewport.zoom, (press.center[0] - d.x() / s,
                                                          press.center[1] - d.y() / s)))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        press = self._press
        if press is None or event.button() != press.button:
            return
        self._press = None
        if press.panning:
            self._update_cursor()
            return
        if press.button != Qt.MouseButton.LeftButton:
            return
        xy = self.widget_to_image(press.pos)
        if xy is None:
            return
        if self._measuring:
            self._add_point(xy)
        elif press.shift:
            self.person_clicked.emit(*xy)
        else:
            self.clicked.emit(*xy)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        lay = self.inset_layout()
        if lay is not None and lay.rect.contains(event.position()):
            return
        self._press = None                    # the release that follows is no click
        if (self._measuring and self._measure.points and time.monotonic() - self._last_point_at
                < QApplication.doubleClickInterval() / 1000 + 0.2):
            # the double-click's first click added a point: take it back
            self._measure = self._measure.without_last()
            self.measurement_changed.emit(self._measure)
        self.reset_view()
        self.update()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if self._image is None or steps == 0:
            event.ignore()
            return
        self.zoom_by(self.ZOOM_STEP ** steps, event.position())
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key == Qt.Key.Key_0:
            self.reset_view()
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_by(self.ZOOM_STEP)
        elif key == Qt.Key.Key_Minus:
            self.zoom_by(1 / self.ZOOM_STEP)
        elif key == Qt.Key.Key_M:
            self.set_measure_mode(not self._measuring)
        elif key == Qt.Key.Key_Escape:
            if self._measuring:
                self.set_measure_mode(False)
            else:
                self.deselect_requested.emit()
        else:
            super().keyPressEvent(event)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            hit = self.inset_cell_at(QPointF(event.pos()))
            m = self.inset
            if hit is not None and m is not None:
                row, col = hit
                text = (f"{m.names[row]}: click to explain this keypoint" if col is None else
                        f"{m.names[row]}'s query attends to {m.names[col]}: "
                        f"{float(m.values[row, col]):.1%} (layer {m.layer + 1})")
                QToolTip.showText(event.globalPos(), text, self)
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().event(event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._resize_timer.start()
