"""A guard against a reference-counting defect of some PySide6 builds on CPython < 3.12.

PySide6-Essentials 6.12.0 (the cp310-abi3 wheel) returns None from every Qt method without a
result without taking a reference to it: each such call (QPainter.drawLine, QLabel.setText,
QWidget.update, ...) lowers None's reference count by one. CPython 3.12+ makes None immortal
(PEP 683), so nothing happens there; on 3.10/3.11 the count reaches zero after some 75,000
calls, about a minute of playback in this window, and the interpreter aborts with "Fatal
Python error: none_dealloc: deallocating None". The same can happen to True and False.

`guard_singletons()` detects the defect (a few calls of a void method, the count before and
after) and, only then, raises the reference counts of None, True and False by 2**40, which is
what CPython 3.12 does for them: these objects are never freed anyway, and at a few thousand
lost references a second the count stays positive for thousands of years. The real fix is a
PySide6 without the defect (see the project's dependency pins).
"""
from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

_BOOST = 1 << 40
_done = False


def leaks_none_references(calls: int = 64) -> bool:
    """Whether calling a Qt method without a result loses references to None."""
    from PySide6.QtCore import QPointF
    p = QPointF()
    before = sys.getrefcount(None)
    for _ in range(calls):
        p.setX(1.0)
    # other threads may take or drop references meanwhile: the defect loses one per call
    return before - sys.getrefcount(None) >= calls // 2


def _raise_refcount(obj: object) -> bool:
    """Add _BOOST to obj's reference count, checking first that the count sits where
    CPython's object layout puts it (the first field of the object)."""
    cell = ctypes.c_ssize_t.from_address(id(obj))
    # sys.getrefcount counts its own argument too; allow for other threads' moves
    if abs(cell.value - (sys.getrefcount(obj) - 1)) > 1000:
        return False
    cell.value += _BOOST
    return True


def guard_singletons() -> bool:
    """Protect None/True/False from the defect when this PySide6 has it; True when the guard
    was applied (once per process)."""
    global _done
    if _done or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    try:
        if not leaks_none_references():
            return False
        applied = all(_raise_refcount(o) for o in (None, True, False))
    except Exception:                                 # noqa: BLE001 - best effort
        log.debug("reference-count guard not applied", exc_info=True)
        return False
    _done = applied
    if applied:
        import PySide6
        log.info("PySide6 %s loses references to None on Python %d.%d; None, True and False "
                 "are kept alive (app.pyside_compat)", PySide6.__version__,
                 *sys.version_info[:2])
    return applied
