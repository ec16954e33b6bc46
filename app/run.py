"""Entry point of the GUI: `run_gui(args) -> exit code` (`main.py gui`, `main.py` alone)."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _has_display() -> bool:
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or
                os.environ.get("QT_QPA_PLATFORM"))


def _qt_message(mode: Any, context: Any, message: str) -> None:
    # The offscreen platform warns about window size hints on every dock/tooltip: noise.
    if "propagateSizeHints" in message:
        return
    sys.stderr.write(f"{message}\n")


class HeadlessDriver:
    """--exit-after / --screenshot: play, wait for N processed frames, pause, wait until the
    final frame (with its attention when asked) is rendered, grab the window, quit."""

    def __init__(self, window: Any, frames: int, screenshot: str | None, timeout_s: float,
                 want_attention: bool, still_frame: int | None = None) -> None:
        from PySide6.QtCore import QTimer
        self.window = window
        self.frames = max(1, frames)
        self.screenshot = screenshot
        self.deadline = time.monotonic() + timeout_s
        self.want_attention = want_attention
        self.rc: int | None = None
        self.still_frame = still_frame
        self.phase = "run" if still_frame is None else "settle"   # a still: nothing to play
        self._stable = 0
        self._asked_attention = False
        self._seen_playing = False
        c = window.controller
        c.source_failed.connect(lambda m: self._fail(f"cannot open the source: {m}"))
        c.engine_failed.connect(lambda m: self._fail(f"cannot load the model: {m}"))
        c.message.connect(self._on_message)
        c.engine_ready.connect(self._on_engine)
        self.timer = QTimer(window)
        self.timer.setInterval(50)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _on_engine(self, info: Any) -> None:
        if self.want_attention and not info.has_attention:
            print(f"warning: --attention: {info.description} has no attention maps; the "
                  f"screenshot shows none", file=sys.stderr)

    def _on_message(self, level: str, text: str) -> None:
        if level == "error":
            self._fail(text)

    def _fail(self, message: str) -> None:
        if self.rc is None:
            print(f"error: {message}", file=sys.stderr)
            self._finish(1)

    def _finish(self, rc: int) -> None:
        from PySide6.QtWidgets import QApplication
        self.rc = rc
        self.timer.stop()
        self.window.close()
        QApplication.instance().exit(rc)

    def _still_index(self) -> int:
        info = self.window.controller.source
        n = info.frame_count if info is not None and info.frame_count else None
        return min(self.still_frame, n - 1) if n else self.still_frame

    def _tick(self) -> None:
        if self.rc is not None:
            return
        if time.monotonic() > self.deadline:
            self._fail(f"timed out in phase '{self.phase}' after "
                       f"{self.window.controller.frames_processed} processed frames")
            return
        c = self.window.controller
        if self.phase == "run":
            self._seen_playing |= c.playing
            ended = self._seen_playing and not c.playing       # a clip shorter than N
            if c.frames_processed >= self.frames or ended:
                c.pause()
                self.phase = "settle"
            return
        # settle: nothing in flight and the newest frame drawn
        info = c.engine
        if (self.want_attention and info is not None and info.has_attention and
                c.current is not None and c.current.attention is None and
                not self._asked_attention and c.idle):
            c.refresh_attention()
            self._asked_attention = True
            self._stable = 0
            return
        r = self.window.last_rendered
        ready = (c.idle and not c.playing and self.window.renderer.idle and
                 not self.window.angles_panel.refresh_pending and
                 c.current is not None and r is not None and r.frame is c.current and
                 (self.still_frame is None or c.current.index == self._still_index()))
        self._stable = self._stable + 1 if ready else 0
        if self._stable < 3:
            return
        if self.screenshot:
            path = Path(self.screenshot)
            path.parent.mkdir(parents=True, exist_ok=True)
            if not self.window.grab().save(str(path)):
                self._fail(f"{path}: the screenshot could not be written")
                return
            print(f"screenshot of frame {c.current.index} written to {path}", file=sys.stderr)
        self._finish(0)


ICONS = Path(__file__).resolve().parents[1] / "resources" / "icons"


def application_icon() -> Any:
    """The application icon (resources/icons/transpose-studio-*.png, every size drawn by
    packaging/make_icon.py); an empty QIcon when the files are missing."""
    from PySide6.QtGui import QIcon
    icon = QIcon()
    for path in sorted(ICONS.glob("transpose-studio-*.png")):
        icon.addFile(str(path))
    return icon


def run_gui(args: argparse.Namespace | None = None) -> int:
    """Open the main window; returns the application's exit code."""
    from .cli import defaults, resolve_source
    opts = defaults()
    if args is not None:
        for k, v in vars(args).items():
            if hasattr(opts, k):
                setattr(opts, k, v)
    try:
        opts.source = resolve_source(opts)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    headless = opts.screenshot is not None or opts.exit_after is not None
    if headless and not opts.source:
        print("error: --screenshot/--exit-after need --source", file=sys.stderr)
        return 2
    if not _has_display():
        if headless:
            os.environ["QT_QPA_PLATFORM"] = "offscreen"   # a grab needs no screen
        else:
            print("error: no display to open the GUI on (DISPLAY is not set). Use a subcommand "
                  "(main.py --help), run under a desktop session or Xvfb, or set "
                  "QT_QPA_PLATFORM=offscreen", file=sys.stderr)
            return 2
    keypoint: int | None = None
    if opts.attention is not None and str(opts.attention).lower() != "all":
        from core.keypoints import keypoint_index
        try:
            keypoint = keypoint_index(opts.attention)
        except ValueError as e:
            print(f"error: --attention: {e}", file=sys.stderr)
            return 2

    angles = None
    if opts.angles is not None:
        from core.analysis.angles import parse_angle_names
        from core.errors import InputError
        try:
            angles = parse_angle_names(opts.angles)
        except InputError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2

    from PySide6.QtCore import QSettings, qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    # MainWindow() guards against PySide6's None leak and caps malloc arenas before any
    # worker thread starts (app.pyside_compat, app.memory)
    from .main_window import APPLICATION, ORGANIZATION, MainWindow

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    qInstallMessageHandler(_qt_message)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setDesktopFileName("transpose-studio")   # packaging/transpose-studio.desktop
    app.setWindowIcon(application_icon())
    tmp = None
    if headless:
        # a reproducible run: fresh settings, and the user's own settings stay untouched
        tmp = tempfile.TemporaryDirectory(prefix="transpose-gui-")
        settings = QSettings(str(Path(tmp.name) / "settings.ini"), QSettings.Format.IniFormat)
    else:
        settings = QSettings(ORGANIZATION, APPLICATION)
    overrides = {k: getattr(opts, k) for k in ("model", "detector", "device", "detect_every")
                 if getattr(opts, k) is not None}
    if opts.frame is not None and opts.frame < 0:
        print("error: --frame must be 0 or more", file=sys.stderr)
        return 2
    if opts.detect_every is not None and opts.detect_every < 1:
        print("error: --detect-every must be at least 1", file=sys.stderr)
        return 2
    window = MainWindow(settings, engine_overrides=overrides, probe_cameras=not headless)
    if headless:
        window.resize(1440, 860)
    if opts.skeleton is not None:
        window.panel.skeleton_check.setChecked(bool(opts.skeleton))
    if opts.attention is not None:
        window.panel.set_attention(True, keypoint)
    if angles is not None:
        window.angles_panel.set_angles(angles)
    if opts.track is not None:
        window.angles_panel.select_track(opts.track)
    window.show()
    driver = None
    if headless:
        n = opts.exit_after if opts.exit_after is not None else 10
        driver = HeadlessDriver(window, n, opts.screenshot, opts.timeout,
                                want_attention=opts.attention is not None,
                                still_frame=opts.frame)
    if opts.source:
        window.open_source(opts.source, autoplay=headless and opts.frame is None,
                           start=opts.frame or 0)
    rc = app.exec()
    if driver is not None and driver.rc is not None:
        rc = driver.rc
    window.deleteLater()
    _join_workers(10.0)
    if tmp is not None:
        tmp.cleanup()
    return int(rc)


def _join_workers(timeout: float) -> None:
    """After the window closed: let workers still inside native code (a model call) finish
    before the interpreter tears down their libraries under them."""
    import threading
    deadline = time.monotonic() + timeout
    for t in threading.enumerate():
        if t is threading.current_thread() or not t.name.startswith(("pose-pipeline-", "gui-")):
            continue
        t.join(max(0.0, deadline - time.monotonic()))
        if t.is_alive():
            log.warning("thread %s is still running at exit", t.name)
