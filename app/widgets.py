"""Small widgets the window's bars are built of: a label that elides instead of widening the
window, and a seek slider that jumps to the clicked spot like a media player's."""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRect, QSize, Qt
from PySide6.QtGui import QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QSlider, QStyle, QStyleOptionSlider, QWidget


class ElidedLabel(QLabel):
    """A one-line label that never forces its window wider: a long text is elided ("…") to
    the width the layout gives it, and the whole text is its tooltip.

    `text()` is the whole text. `min_chars` characters is the smallest width it asks for;
    `hint_text`, when given, is the width it prefers (so a text changing every half second,
    like the playback statistics, does not re-lay out the status bar each time); `max_hint`
    caps the preferred width of a long text."""

    def __init__(self, text: str = "", parent: QWidget | None = None, *,
                 elide: Qt.TextElideMode = Qt.TextElideMode.ElideRight, min_chars: int = 8,
                 hint_text: str | None = None, max_hint: int | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self._elide = elide
        self._min_chars = min_chars
        self._hint_text = hint_text
        self._max_hint = max_hint
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:               # noqa: N802 - Qt's name
        text = str(text)
        if text == self._full:
            return
        self._full = text
        super().setText(text)
        self.setToolTip(text if text else "")
        self.updateGeometry()
        self.update()

    def text(self) -> str:
        return self._full

    def minimumSizeHint(self) -> QSize:                 # noqa: N802
        fm = self.fontMetrics()
        m = self.contentsMargins()
        width = fm.horizontalAdvance("x" * self._min_chars) + m.left() + m.right()
        return QSize(width, super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:                        # noqa: N802
        fm = self.fontMetrics()
        m = self.contentsMargins()
        text = self._hint_text if self._hint_text is not None else self._full
        width = fm.horizontalAdvance(text) + m.left() + m.right() + 4
        if self._max_hint is not None:
            width = min(width, self._max_hint)
        width = max(width, self.minimumSizeHint().width())
        return QSize(width, super().sizeHint().height())

    def elided_text(self) -> str:
        """The text as painted at the current width."""
        return self.fontMetrics().elidedText(self._full, self._elide,
                                             max(0, self.contentsRect().width()))

    def paintEvent(self, event: QPaintEvent) -> None:   # noqa: N802
        p = QPainter(self)
        self.style().drawItemText(p, self.contentsRect(),
                                  int(self.alignment() | Qt.AlignmentFlag.AlignVCenter),
                                  self.palette(), self.isEnabled(), self.elided_text(),
                                  self.foregroundRole())
        p.end()


class SeekSlider(QSlider):
    """A horizontal slider for a media position: a left click jumps to the clicked spot (and
    the handle can be dragged on from there), as in VLC or mpv, instead of moving one page
    towards it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)

    def value_at(self, x: float) -> int:
        """The value under widget x coordinate `x` (the handle's centre there)."""
        opt = QStyleOptionSlider()
        self.initStyleOption(opt)
        st = self.style()
        groove = st.subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                   QStyle.SubControl.SC_SliderGroove, self)
        handle = st.subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                   QStyle.SubControl.SC_SliderHandle, self)
        span = max(1, groove.width() - handle.width())
        pos = int(round(x - groove.x() - handle.width() / 2))
        return QStyle.sliderValueFromPosition(self.minimum(), self.maximum(),
                                              max(0, min(pos, span)), span, opt.upsideDown)

    def _handle_rect(self) -> QRect:
        opt = QStyleOptionSlider()
        self.initStyleOption(opt)
        return self.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                           QStyle.SubControl.SC_SliderHandle, self)

    def mousePressEvent(self, event: QMouseEvent) -> None:   # noqa: N802
        if (event.button() == Qt.MouseButton.LeftButton and self.isEnabled()
                and self.orientation() == Qt.Orientation.Horizontal
                and not self._handle_rect().contains(event.position().toPoint())):
            # jump to the spot, then press the handle there: a drag goes on from the
            # clicked spot, and QSlider never sees a press beside the handle (a page step)
            self.setValue(self.value_at(event.position().x()))
            centre = QPointF(self._handle_rect().center())
            press = QMouseEvent(event.type(), centre, self.mapToGlobal(centre),
                                event.button(), event.buttons(), event.modifiers())
            super().mousePressEvent(press)
            event.setAccepted(press.isAccepted())
            return
        super().mousePressEvent(event)
