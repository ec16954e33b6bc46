"""The video view: paints the newest rendered frame, maps clicks back to image pixels."""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from .overlay import ViewMapping


class VideoView(QWidget):
    """Shows a pre-rendered QImage 1:1, centred (the renderer already scaled it to fit).

    Painting is a single drawImage: all scaling and overlay drawing happen off this thread.
    """

    clicked = Signal(float, float)          # image pixels
    cleared = Signal()                      # right click: forget the clicked point
    size_changed = Signal()                 # after resizing settles: render again

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 200)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._image: QImage | None = None
        self._mapping: ViewMapping | None = None
        self._placeholder = "Open a video, an image folder or a camera (File menu or the bar above)"
        self._busy_text = ""
        self._resize_timer = QTimer(self)
        self._resize_timer.setSingleShot(True)
        self._resize_timer.setInterval(60)
        self._resize_timer.timeout.connect(self.size_changed)
        self.setToolTip("")

    # ---- content -----------------------------------------------------------------------------
    def set_image(self, image: QImage, mapping: ViewMapping) -> None:
        self._image, self._mapping = image, mapping
        self.update()

    def clear(self, placeholder: str | None = None) -> None:
        self._image, self._mapping = None, None
        if placeholder is not None:
            self._placeholder = placeholder
        self.update()

    def set_busy(self, text: str) -> None:
        self._busy_text = text
        self.update()

    @property
    def has_image(self) -> bool:
        return self._image is not None

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

    # ---- events ------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(24, 24, 28))
        rect = self._image_rect()
        if rect is not None and self._image is not None:
            p.drawImage(rect.topLeft(), self._image)
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
        if event.button() == Qt.MouseButton.LeftButton:
            xy = self.widget_to_image(event.position())
            if xy is not None:
                self.clicked.emit(*xy)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._resize_timer.start()
