"""The player's keys (Space, Left/Right, Home/End) and Qt's focus conventions.

The player keys are window shortcuts, so they work wherever the window has focus. Qt offers
a focused widget a key before a shortcut takes it (a ShortcutOverride event); `PlayerKeys`
answers that offer for the window's input widgets that use the key themselves: a focused
slider takes the arrows, Home/End and Page Up/Down, a text field or spin box every player
key, a list its Space and Home/End, a check box or button its Space. Everywhere else (the
video, the bars, a combo box, nothing focused) the keys drive the player. Escape hands the
focus back to the video.
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (QAbstractButton, QAbstractItemView, QAbstractSlider,
                               QAbstractSpinBox, QLineEdit, QPlainTextEdit,
                               QTextEdit, QWidget)

K = Qt.Key
PLAYER_KEYS = frozenset({K.Key_Space, K.Key_Left, K.Key_Right, K.Key_Home, K.Key_End})
_SLIDER_KEYS = frozenset({K.Key_Left, K.Key_Right, K.Key_Up, K.Key_Down, K.Key_Home,
                          K.Key_End, K.Key_PageUp, K.Key_PageDown})
_LIST_KEYS = frozenset({K.Key_Space, K.Key_Home, K.Key_End, K.Key_Up, K.Key_Down,
                        K.Key_PageUp, K.Key_PageDown})


def widget_takes_key(widget: QWidget, key: int) -> bool:
    """Whether a focused `widget` uses `key` itself (then no shortcut may take it)."""
    if isinstance(widget, (QLineEdit, QAbstractSpinBox, QTextEdit, QPlainTextEdit)):
        return widget.isEnabled() and not getattr(widget, "isReadOnly", lambda: False)()
    if isinstance(widget, QAbstractSlider):
        return key in _SLIDER_KEYS
    if isinstance(widget, QAbstractItemView):
        return key in _LIST_KEYS
    if isinstance(widget, QAbstractButton):
        return key == K.Key_Space
    return False


class PlayerKeys(QObject):
    """Event filter on a window's input widgets: a focused one keeps the player keys it uses;
    Escape in one calls `on_escape` (the window hands the focus back to the video).

    Installed on the widgets themselves (`attach`), not on the application, so the other
    events of the application never pass through Python here."""

    def __init__(self, parent: QObject, on_escape: Callable[[], None]) -> None:
        super().__init__(parent)
        self._on_escape = on_escape
        self._watched: list[QWidget] = []

    def attach(self, root: QWidget) -> int:
        """Watch every input widget under `root` (and `root`); how many were added."""
        added = 0
        for w in [root, *root.findChildren(QWidget)]:
            if w in self._watched or not isinstance(w, _INPUT_TYPES):
                continue
            w.installEventFilter(self)
            self._watched.append(w)
            added += 1
        return added

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:   # noqa: N802 - Qt's name
        kind = event.type()
        if kind not in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress):
            return False
        if not isinstance(obj, QWidget) or not isinstance(event, QKeyEvent):
            return False
        key = event.key()
        plain = not (event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier)
        if kind == QEvent.Type.ShortcutOverride:
            if plain and key in PLAYER_KEYS and widget_takes_key(obj, key):
                event.accept()          # the widget gets the key press, the shortcut does not
                return True
            return False
        if (plain and key == K.Key_Escape and obj.hasFocus()
                and obj.window() is self.parent()):      # not in a combo box's popup list
            self._on_escape()
            return True
        return False


_INPUT_TYPES = (QLineEdit, QAbstractSpinBox, QTextEdit, QPlainTextEdit, QAbstractSlider,
                QAbstractItemView, QAbstractButton)
