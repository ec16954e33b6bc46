"""The video view: paints the newest rendered frame, maps clicks back to image pixels."""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (QColor, QFont, QFontMetricsF, QHelpEvent, QImage, QMouseEvent, QPainter,
                           QPaintEvent, QPen, QPixmap, QResizeEvent)
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from .overlay import JointMatrix, ViewMapping


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


class VideoView(QWidget):
    """Shows a pre-rendered QImage 1:1, centred (the renderer already scaled it to fit).

    Painting is a single drawImage: all scaling and overlay drawing happen off this thread.
    """

    clicked = Signal(float, float)          # image pixels
    cleared = Signal()                      # right click: forget the clicked point
    size_changed = Signal()                 # after resizing settles: render again
    keypoint_picked = Signal(int)           # a row of the joint-dependency inset was clicked

    INSET_MARGIN = 8                        # from the view's top-left corner
    INSET_CELL = 11                         # one matrix cell, logical px
    INSET_PAD = 6

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
        self.setToolTip("")

    # ---- content -----------------------------------------------------------------------------
    def set_image(self, image: QImage, mapping: ViewMapping,
                  inset: JointMatrix | None = None) -> None:
        self._image, self._mapping = image, mapping
        if inset is not self._inset:
            self._inset, self._inset_pixmap = inset, None
        self.update()

    def clear(self, placeholder: str | None = None) -> None:
        self._image, self._mapping = None, None
        self._inset, self._inset_pixmap = None, None
        if placeholder is not None:
            self._placeholder = placeholder
        self.update()

    def set_busy(self, text: str) -> None:
        self._busy_text = text
        self.update()

    @property
    def has_image(self) -> bool:
        return self._image is not None

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

    # ---- geometry ----------------------------------------------------------------------------
    def _image_rect(self) -> QRectF | None:
        if self._image is None:
            return None
        dpr = self._image.devicePixelRatio() or 1.0
        w, h = self._image.width() / dpr, self._image.height() / dpr
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def widget_to_image(self, pos: QPointF) -> tuple[float, float] | None:
        rect, m, image = self._image_rect(), self._mapping, self._image
        if rect is None or m is None or image is None or not rect.contains(pos):
            return None
        dpr = image.devicePixelRatio() or 1.0
        return m.to_image((pos.x() - rect.x()) * dpr, (pos.y() - rect.y()) * dpr)

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

    # ---- events ------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(24, 24, 28))
        rect = self._image_rect()
        if rect is not None and self._image is not None:
            p.drawImage(rect.topLeft(), self._image)
            lay, m = self.inset_layout(), self.inset
            if lay is not None and m is not None:
                p.drawPixmap(0, 0, self._inset_image(lay, m))
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
        if event.button() == Qt.MouseButton.RightButton:
            self.cleared.emit()
            return
        lay = self.inset_layout()
        if lay is not None and lay.rect.contains(event.position()):
            hit = self.inset_cell_at(event.position())
            if event.button() == Qt.MouseButton.LeftButton and hit is not None:
                self.keypoint_picked.emit(hit[0])         # explain that row's keypoint
            return
        if event.button() == Qt.MouseButton.LeftButton:
            xy = self.widget_to_image(event.position())
            if xy is not None:
                self.clicked.emit(*xy)

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
