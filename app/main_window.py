"""The main window: video view, source bar, transport, settings panel, status bar, menus."""
from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QHBoxLayout, QLabel, QMainWindow, QMessageBox,
                               QProgressBar, QProgressDialog, QScrollArea, QToolButton,
                               QVBoxLayout, QWidget, QFrame)

from core.engine import EngineConfig
from core.types import PoseFrame

from .angles_panel import AnglesPanel
from .batch_dialog import BatchDialog, BatchRunner, ExportDialog
from .controller import Controller, EngineInfo, PlaybackStats, SourceInfo
from .keys import PlayerKeys
from .memory import limit_malloc_arenas
from .overlay import OverlaySettings
from .panels import SettingsPanel, SourceBar, TransportBar, nearest_existing
from .pyside_compat import guard_singletons
from .renderer import FrameRenderer, RenderedFrame
from .video_view import VideoView
from .widgets import ElidedLabel

log = logging.getLogger(__name__)

ORGANIZATION = "TransPose Studio"
APPLICATION = "TransPose Studio"
MAX_RECENT = 10
DEFAULT_SIZE = QSize(1400, 860)      # at most the screen's free area
PLACEHOLDER = "Open a video, an image folder or a camera (File menu or the bar above)"
PREVIEW_DELAY_MS = 60     # a raw frame is drawn only if its processed one is not there by then
INFO_BANNER_MS = 12_000   # an info banner goes by itself; errors and warnings stay
STATS_HINT = "input 00.0 fps · processed 00.0 fps · latency 000 ms · dropped 0000"


def default_settings() -> QSettings:
    return QSettings(ORGANIZATION, APPLICATION)


class Banner(QFrame):
    """A dismissable message strip over the top of the video (errors never need a modal box).

    It floats over the picture instead of taking a row of the layout, so showing it never
    moves the video. `cause` says what it is about ("source", "playback", "engine",
    "export"): the window dismisses it when that is over (another video opened, the model
    loaded, playing again). Info messages go by themselves after INFO_BANNER_MS."""

    COLORS = {"error": ("rgba(92, 31, 31, 235)", "#ffd9d9"),
              "warning": ("rgba(90, 74, 18, 235)", "#fff1c2"),
              "info": ("rgba(31, 61, 92, 235)", "#d9ecff")}

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 4, 4, 4)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.label, 1)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        lay.addWidget(close)
        self.level = ""
        self.cause = ""
        self.over: QWidget | None = None        # the widget it floats over
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.hide)
        self.hide()

    def show_message(self, level: str, text: str, cause: str = "") -> None:
        bg, fg = self.COLORS.get(level, self.COLORS["info"])
        self.setStyleSheet(f"Banner {{ background: {bg}; }} QLabel {{ color: {fg}; }} "
                           f"QToolButton {{ color: {fg}; }}")
        self.level = level
        self.cause = cause
        self.label.setText(text)
        if level == "info":
            self._timer.start(INFO_BANNER_MS)
        else:
            self._timer.stop()
        self.show()
        self.raise_()
        self.place()

    def dismiss(self, *causes: str) -> None:
        """Hide it when it is about one of `causes` (any, when none is given)."""
        if self.isVisible() and (not causes or self.cause in causes):
            self.hide()

    def place(self) -> None:
        """Over the top of the widget it floats over (a sibling in the same parent)."""
        view = self.over
        if view is None:
            return
        width = max(1, view.width())
        height = (self.heightForWidth(width) if self.hasHeightForWidth()
                  else self.sizeHint().height())
        self.setGeometry(view.x(), view.y(), width, max(height, self.minimumSizeHint().height()))

    @property
    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""


class _Follow(QObject):
    """Calls `fn` whenever the watched widget moves or changes size."""

    def __init__(self, watched: QWidget, fn: Any) -> None:
        super().__init__(watched)
        self._fn = fn
        watched.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:   # noqa: N802 - Qt's name
        if event.type() in (QEvent.Type.Resize, QEvent.Type.Move):
            self._fn()
        return False


def usable_out_dir(folder: str) -> bool:
    """Whether files can be written to `folder` (it exists and is writable, or its nearest
    existing parent is, so the export can create it)."""
    p = nearest_existing(folder) if folder else None
    return p is not None and p.is_dir() and os.access(p, os.W_OK | os.X_OK)


class MainWindow(QMainWindow):
    cameras_found = Signal(list)

    def __init__(self, settings: QSettings | None = None, *,
                 engine_overrides: dict[str, Any] | None = None,
                 probe_cameras: bool = True) -> None:
        guard_singletons()               # PySide6 6.12 on Python < 3.12: see app.pyside_compat
        limit_malloc_arenas()            # resident memory bounded: see app.memory
        super().__init__()
        self.settings = settings if settings is not None else default_settings()
        self.setWindowTitle("TransPose Studio")
        self.controller = Controller(self)
        self.renderer = FrameRenderer(self)
        self._click_xy: tuple[float, float] | None = None
        self._engine_info: EngineInfo | None = None
        self._last_rendered: RenderedFrame | None = None
        self._closed = False
        self.close_seconds: float | None = None
        self._export_runner: BatchRunner | None = None
        self._export_progress: QProgressDialog | None = None
        self.batch_dialog: BatchDialog | None = None
        self._preview: PoseFrame | None = None          # a raw frame waiting to be drawn
        self._preview_shown: PoseFrame | None = None    # the raw frame on screen, if any
        self._placeholder = PLACEHOLDER
        self._busy_text = ""

        # --- widgets ------------------------------------------------------------------------
        central = QWidget()
        v = QVBoxLayout(central)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(0)
        self.source_bar = SourceBar()
        self.view = VideoView()
        self.view.clear(PLACEHOLDER)
        self.transport = TransportBar()
        v.addWidget(self.source_bar)
        v.addWidget(self.view, 1)
        v.addWidget(self.transport)
        self.setCentralWidget(central)
        # the banner floats over the top of the video: not in the layout, nothing moves
        self.banner = Banner(central)
        self.banner.over = self.view
        self._banner_follow = _Follow(self.view, self.banner.place)

        self.panel = SettingsPanel()
        scroll = QScrollArea()
        scroll.setWidget(self.panel)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(self.panel.minimumSizeHint().width() + 24)
        self.dock = QDockWidget("Settings", self)
        self.dock.setObjectName("settings-dock")
        self.dock.setWidget(scroll)
        self.dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable |
                              QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)

        self.angles_panel = AnglesPanel()
        self.angles_dock = QDockWidget("Angles", self)
        self.angles_dock.setObjectName("angles-dock")
        self.angles_dock.setWidget(self.angles_panel)
        self.angles_dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable |
                                     QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.angles_dock)
        self.resizeDocks([self.angles_dock], [220], Qt.Orientation.Vertical)

        self._build_status_bar()
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(PREVIEW_DELAY_MS)
        self._preview_timer.timeout.connect(self._draw_preview)

        self._make_actions()
        self._wire()
        # focused sliders, fields and lists keep the keys they use (Qt's convention); the
        # player's keys work everywhere else; Escape gives the focus back to the video
        self.keys = PlayerKeys(self, self.focus_video)
        self.keys.attach(self)

        # --- settings -----------------------------------------------------------------------
        config = self.panel.load(self.settings)
        if engine_overrides:
            # command-line choices win over the saved ones
            config = dataclasses.replace(config, **engine_overrides)
            self.panel.show_engine_config(config)
        speed = self.settings.value("playback/speed", 1.0)
        try:
            self.transport.set_speed(float(speed))
        except (TypeError, ValueError):
            pass
        self.controller.set_speed(self.transport.speed)
        self.source_bar.set_recent(self.recent_sources())
        self.source_bar.dialog_dir = str(self.settings.value("dialogs/dir", "") or "")
        geometry = self.settings.value("window/geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(self.default_size())
        state = self.settings.value("window/state")
        if state is not None:
            self.restoreState(state)
        self.controller.set_engine_config(config)
        self.controller.set_attention(self.panel.attention_check.isChecked())
        if probe_cameras:
            threading.Thread(target=self._probe_cameras, name="gui-camera-probe",
                             daemon=True).start()
        else:
            self.source_bar.set_cameras([])

    # ---- construction helpers ------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        """Messages on the left (elided, never over the rest), then the busy bar, the
        playback statistics and the model: none of them can make the window wider."""
        sb = self.statusBar()
        self.message_label = ElidedLabel("", min_chars=4)
        self._message_timer = QTimer(self)
        self._message_timer.setSingleShot(True)
        self._message_timer.timeout.connect(lambda: self.message_label.setText(""))
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setMaximumWidth(120)
        self.busy_bar.setMaximumHeight(14)
        self.busy_bar.hide()
        self.stats_label = ElidedLabel("no source", hint_text=STATS_HINT, min_chars=10)
        self.device_label = ElidedLabel("", min_chars=12, max_hint=360)
        sb.addWidget(self.message_label, 1)
        sb.addPermanentWidget(self.busy_bar)
        sb.addPermanentWidget(self.stats_label)
        sb.addPermanentWidget(self.device_label)

    def default_size(self) -> QSize:
        """1400 x 860, or less on a smaller screen (the offscreen platform's nominal 800 x
        600 screen is no real one: there the window keeps the default)."""
        size = QSize(DEFAULT_SIZE)
        screen = self.screen()
        if screen is not None and QGuiApplication.platformName() != "offscreen":
            avail = screen.availableGeometry().size()
            # leave room for the window frame the window manager adds
            size = size.boundedTo(QSize(max(1, avail.width() - 16), max(1, avail.height() - 40)))
        return size.expandedTo(self.minimumSizeHint())

    def _make_actions(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        self.open_video_action = m.addAction("Open &video…", self.source_bar.browse_video)
        self.open_video_action.setShortcut(QKeySequence.StandardKey.Open)
        self.open_folder_action = m.addAction("Open image &folder…", self.source_bar.browse_folder)
        self.open_folder_action.setShortcut(QKeySequence("Ctrl+Shift+O"))
        self.camera_menu = m.addMenu("Open &camera")
        self.recent_menu = m.addMenu("Open &recent")
        m.addSeparator()
        self.export_action = m.addAction("&Export tracks of this video…", self.export_tracks)
        self.export_action.setShortcut(QKeySequence("Ctrl+E"))
        self.export_action.setEnabled(False)
        self.batch_action = m.addAction("&Batch queue…", self.show_batch_dialog)
        self.batch_action.setShortcut(QKeySequence("Ctrl+B"))
        m.addSeparator()
        quit_action = m.addAction("&Quit", self.close)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)

        m = mb.addMenu("&Playback")

        def act(text: str, key: Any, slot: Any) -> QAction:
            a = QAction(text, self)
            a.setShortcut(QKeySequence(key))
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            a.triggered.connect(slot)
            m.addAction(a)
            self.addAction(a)          # works even with the menu bar hidden
            return a

        self.play_action = act("Play / pause", Qt.Key.Key_Space, self.controller.toggle)
        act("One frame back", Qt.Key.Key_Left, lambda: self.controller.step(-1))
        act("One frame forward", Qt.Key.Key_Right, lambda: self.controller.step(1))
        act("First frame", Qt.Key.Key_Home, self._home)
        act("Last frame", Qt.Key.Key_End, self.controller.seek_end)
        self.goto_action = act("Go to frame or time…", QKeySequence("Ctrl+G"), self.focus_goto)

        m = mb.addMenu("&View")
        m.addAction(self.dock.toggleViewAction())
        m.addAction(self.angles_dock.toggleViewAction())
        m.addSeparator()
        # M, 0, +/- and Esc belong to the video itself (keyPressEvent): bound here as window
        # shortcuts they would take the keys from a focused field
        self.measure_action = m.addAction("Measure (M in the video)")
        self.measure_action.setCheckable(True)
        self.measure_action.toggled.connect(self.view.set_measure_mode)
        self.view.measure_mode_changed.connect(self.measure_action.setChecked)
        m.addAction("Reset zoom (0 or double-click)", self.view.reset_view)
        m = mb.addMenu("&Help")
        m.addAction("&Keyboard shortcuts", self._show_shortcuts)
        m.addAction("&About", self._show_about)

    def _wire(self) -> None:
        c = self.controller
        c.engine_ready.connect(self._on_engine_ready)
        c.engine_failed.connect(self._on_engine_failed)
        c.busy_changed.connect(self._on_busy)
        c.source_opened.connect(self._on_source_opened)
        c.source_failed.connect(self._on_source_failed)
        c.frame_ready.connect(self._on_frame)
        c.preview_ready.connect(self._on_preview)
        c.position_requested.connect(lambda i: self.transport.set_position(i, None))
        c.state_changed.connect(self._on_state)
        c.message.connect(lambda level, text: self.show_message(level, text, "playback"))
        c.stats_changed.connect(self._on_stats)
        self.renderer.rendered.connect(self._on_rendered)
        self.source_bar.open_requested.connect(self.open_source)
        self.source_bar.refresh_cameras.connect(
            lambda: threading.Thread(target=self._probe_cameras, name="gui-camera-probe",
                                     daemon=True).start())
        self.cameras_found.connect(self._on_cameras)
        t = self.transport
        t.play_clicked.connect(c.toggle)
        t.step_requested.connect(c.step)
        t.home_requested.connect(self._home)
        t.end_requested.connect(c.seek_end)
        t.seek_requested.connect(c.seek)
        t.speed_changed.connect(self._on_speed)
        t.goto_finished.connect(self.focus_video)
        p = self.panel
        p.engine_config_changed.connect(self._on_engine_config)
        p.overlay_changed.connect(lambda _: self.rerender())
        p.attention_toggled.connect(self._on_attention_toggled)
        p.clear_point_requested.connect(self.clear_point)
        self.view.clicked.connect(self._on_view_clicked)
        self.view.cleared.connect(self.clear_point)
        self.view.size_changed.connect(self.rerender)
        self.view.keypoint_picked.connect(self.panel.select_keypoint)
        # zoom / pan: the renderer draws only the visible part, sharp at the zoomed scale
        self.view.viewport_changed.connect(self.renderer.set_viewport)
        self.view.viewport_changed.connect(lambda _v: self.rerender())
        self.view.person_clicked.connect(self.select_person_at)
        self.view.deselect_requested.connect(lambda: self.angles_panel.select_track(None))
        self.view.measurement_changed.connect(self._on_measurement)
        c.frame_ready.connect(self.angles_panel.add_frame)
        c.source_opened.connect(lambda *_: self.angles_panel.clear())
        self.angles_panel.changed.connect(self.rerender)

    # ---- public API (menus, tests, the screenshot mode) ----------------------------------------
    def open_source(self, spec: str, autoplay: bool = False, start: int = 0) -> None:
        self.source_bar.set_current(f"opening {spec}…")
        self.controller.open_source(spec, autoplay=autoplay, start=start)

    def overlay_settings(self) -> OverlaySettings:
        s = self.panel.overlay_settings()
        return dataclasses.replace(s, attention=self.panel.attention_on,
                                   click_xy=self._click_xy,
                                   angles=self.angles_panel.overlay_angles(),
                                   angle_track=self.angles_panel.selected_track)

    def rerender(self) -> None:
        preview = self._preview_shown
        if preview is not None:            # a raw frame newer than the processed one
            (w, h), dpr = self.view.target_size()
            self.renderer.submit(preview, self._preview_settings(), (w, h), dpr)
            return
        frame = self.controller.current
        if frame is not None:
            (w, h), dpr = self.view.target_size()
            self.renderer.submit(frame, self.overlay_settings(), (w, h), dpr)

    def set_point(self, x: float, y: float) -> None:
        self._click_xy = (float(x), float(y))
        self.panel.set_point(self._click_xy)
        self.rerender()

    def clear_point(self) -> None:
        if self._click_xy is None:
            return
        self._click_xy = None
        self.panel.set_point(None)
        self.rerender()

    def show_message(self, level: str, text: str, cause: str = "") -> None:
        """Errors and warnings go to the banner (never a modal box), everything to the log.
        `cause`: what the message is about, so the banner goes when that is over."""
        getattr(log, "error" if level == "error" else "warning" if level == "warning"
                else "info")("%s", text)
        if level in ("error", "warning"):
            self.banner.show_message(level, text, cause)
        self.status_message(text, 8000)

    def status_message(self, text: str, timeout_ms: int = 0) -> None:
        """A message in the status bar's own field (elided, beside the permanent ones);
        gone after timeout_ms when given."""
        self.message_label.setText(text)
        if timeout_ms > 0:
            self._message_timer.start(timeout_ms)
        else:
            self._message_timer.stop()

    def _on_measurement(self, measurement: Any) -> None:
        if self.view.measuring:
            self.status_message(measurement.text)
        else:
            self.status_message("")

    def focus_video(self) -> None:
        """The keyboard focus back to the video: the arrow keys step frames again."""
        self.view.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def focus_goto(self) -> None:
        edit = self.transport.goto_edit
        if edit.isEnabled():
            edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
            edit.selectAll()

    @property
    def last_rendered(self) -> RenderedFrame | None:
        return self._last_rendered

    def recent_sources(self) -> list[str]:
        v = self.settings.value("sources/recent", [])
        if isinstance(v, str):
            v = [v]
        return [str(x) for x in (v or [])][:MAX_RECENT]

    # ---- export / batch ----------------------------------------------------------------------
    def show_batch_dialog(self) -> BatchDialog:
        if self.batch_dialog is None:
            self.batch_dialog = BatchDialog(lambda: self.controller.config,
                                            str(self.settings.value("batch/out", "")), self)
            self.batch_dialog.out_edit.textChanged.connect(
                lambda t: self.settings.setValue("batch/out", t))
        self.batch_dialog.dialog_dir = self.source_bar.dialog_dir
        self.batch_dialog.show()
        self.batch_dialog.raise_()
        return self.batch_dialog

    def export_folder(self, info: SourceInfo) -> str:
        """Where an export goes unless the user says otherwise: the last export folder, else
        the video's own folder, else the home folder; always one that can be written to (a
        video's folder may be read-only: a camera card, a share)."""
        for folder in (str(self.settings.value("export/out", "") or ""),
                       str(Path(info.spec).parent)):
            if usable_out_dir(folder):
                return folder
        return str(Path.home())

    def export_tracks(self, out_dir: str | None = None, overlay: bool | None = None) -> None:
        """Annotate the whole current video (CSV/JSON, optional overlay) with a cancellable
        progress dialog; asks where when out_dir is None."""
        info = self.controller.source
        if info is None or info.is_live:
            self.show_message("warning", "Open a video or an image folder to export its tracks.")
            return
        if self._export_runner is not None and self._export_runner.running:
            self.show_message("warning", "An export is already running.")
            return
        if out_dir is None:
            dlg = ExportDialog(info.name, self.export_folder(info), self)
            if dlg.exec() != ExportDialog.DialogCode.Accepted:
                return
            out_dir, overlay = dlg.out_edit.text().strip(), dlg.overlay_check.isChecked()
            if not out_dir:
                return
            self.settings.setValue("export/out", out_dir)
        runner = BatchRunner([info.spec], out_dir, self.controller.config, overlay=bool(overlay),
                             force=True, parent=self)
        progress = QProgressDialog(f"Exporting the tracks of {info.name}…", "Cancel", 0, 1000, self)
        progress.setWindowTitle("Export tracks")
        progress.setWindowModality(Qt.WindowModality.WindowModal)
        progress.setMinimumDuration(0)
        progress.setAutoClose(False)
        progress.setAutoReset(False)
        progress.canceled.connect(runner.cancel)
        runner.overall_progress.connect(lambda f: progress.setValue(int(f * 1000)))
        runner.status.connect(progress.setLabelText)
        runner.file_finished.connect(self._on_export_done)
        runner.finished.connect(lambda _c: progress.close())
        self._export_runner, self._export_progress = runner, progress
        progress.show()
        runner.start()

    @property
    def export_runner(self) -> BatchRunner | None:
        return self._export_runner

    def _on_export_done(self, r: Any) -> None:
        if r.status == "done":
            files = ", ".join(p.name for p in r.outputs.values())
            self.show_message("info", f"Exported {files} to {Path(next(iter(r.outputs.values()))).parent}")
            self.banner.show_message("info", f"Exported {files} ({r.message}).", "export")
        elif r.status == "cancelled":
            self.show_message("warning", "Export cancelled; unfinished files were removed.",
                              "export")
        else:
            self.show_message("error", f"Export failed: {r.message}", "export")

    # ---- reactions -----------------------------------------------------------------------------
    def _on_engine_config(self, config: EngineConfig) -> None:
        self.controller.set_engine_config(config)

    def _on_engine_ready(self, info: EngineInfo) -> None:
        self._engine_info = info
        self.panel.set_engine_info(info)
        self.panel.show_engine_config(info.config)
        self.device_label.setText(f"{info.device} · {info.description}")
        self.device_label.setToolTip(info.description)
        if info.attention_kind == "decoder":
            self.clear_point()             # TFPose has no affected area for a point
        self.banner.dismiss("engine")      # a model that failed before: this one loaded
        self.rerender()

    def _on_engine_failed(self, message: str) -> None:
        self.panel.show_engine_config(self.controller.config)
        if self._engine_info is not None:
            self.panel.set_engine_info(self._engine_info)
        kept = " (the previous one stays in use)" if self._engine_info is not None else ""
        self.show_message("error", f"Model not loaded{kept}: {message}", "engine")

    def _on_busy(self, busy: bool, text: str) -> None:
        self.busy_bar.setVisible(busy)
        self.panel.set_busy(busy, text)
        if not self.view.has_image:
            # no picture: the busy box alone (the placeholder text would sit under it)
            self.view.clear("" if busy else self._placeholder)
        self.view.set_busy(text if busy else "")
        if busy:
            self.status_message(text)
        elif self.message_label.text() == self._busy_text:
            self.status_message("")
        self._busy_text = text if busy else ""

    def _on_source_opened(self, info: SourceInfo) -> None:
        self._forget_preview()
        self.transport.set_source(info)
        self._click_xy = None
        self.panel.set_point(None)
        size = f"{info.size_hw[1]}×{info.size_hw[0]}"
        detail = (f"{info.frame_count} frames" if info.frame_count else "live") + \
            (f", {info.fps:.3g} fps" if info.fps else "")
        self.source_bar.set_current(f"{info.name}  ({size}, {detail})")
        self.setWindowTitle(f"TransPose Studio — {info.name}")
        self.export_action.setEnabled(not info.is_live)
        self.stats_label.setText("paused")
        # the reader shows the raw first frame in a moment, the processed one follows
        self._placeholder = "" if info.is_live else "reading the first frame…"
        self.view.clear("" if self._busy_text else self._placeholder)   # never under the busy box
        # what the banner said was about the previous source (its export, its playback)
        self.banner.dismiss("source", "playback", "export", "")
        if not info.is_live:
            self.source_bar.dialog_dir = str(Path(info.spec).parent)
        recent = [info.spec] + [r for r in self.recent_sources() if r != info.spec]
        self.settings.setValue("sources/recent", recent[:MAX_RECENT])
        self.source_bar.set_recent(recent[:MAX_RECENT])
        self._fill_recent_menu(recent[:MAX_RECENT])

    def _on_source_failed(self, message: str) -> None:
        info = self.controller.source
        self.source_bar.set_current(info.name if info is not None else "no source")
        self.show_message("error", message, "source")

    def _on_frame(self, frame: PoseFrame) -> None:
        self._forget_preview()             # the processed frame replaces any raw one
        self.transport.set_position(frame.index, frame.time_s)
        (w, h), dpr = self.view.target_size()
        self.renderer.submit(frame, self.overlay_settings(), (w, h), dpr)

    def _on_preview(self, frame: PoseFrame) -> None:
        """A raw frame (no people yet) for a seek or a step: drawn unless its processed
        frame comes within PREVIEW_DELAY_MS (no flicker when processing is quick)."""
        self.transport.set_position(frame.index, frame.time_s)
        self._preview = frame
        if not self._preview_timer.isActive():
            self._preview_timer.start()

    def _draw_preview(self) -> None:
        frame, self._preview = self._preview, None
        if frame is None or self._closed:
            return
        self._preview_shown = frame
        (w, h), dpr = self.view.target_size()
        self.renderer.submit(frame, self._preview_settings(), (w, h), dpr)

    def _preview_settings(self) -> OverlaySettings:
        # trails follow processed frames only (a raw frame has nobody to add to them)
        return dataclasses.replace(self.overlay_settings(), trails=False)

    def _forget_preview(self) -> None:
        self._preview_timer.stop()
        self._preview = self._preview_shown = None

    def _on_rendered(self, out: RenderedFrame) -> None:
        if self._closed:
            return
        self._last_rendered = out
        self.view.set_image(out.image, out.mapping, out.inset)

    def _on_state(self, state: str) -> None:
        self.transport.set_playing(state == "playing")
        if state == "playing":
            self.banner.dismiss("playback")       # what stopped the last playback is over
        else:
            self.stats_label.setText("paused")

    def _on_stats(self, s: PlaybackStats) -> None:
        if not self.controller.playing:
            return
        self.stats_label.setText(f"input {s.input_fps:.1f} fps · processed {s.processed_fps:.1f} "
                                 f"fps · latency {s.latency_ms:.0f} ms · dropped {s.dropped}")

    def _on_speed(self, speed: float) -> None:
        self.controller.set_speed(speed)
        self.settings.setValue("playback/speed", speed)

    def _on_attention_toggled(self, _on: bool) -> None:
        self.controller.set_attention(self.panel.attention_check.isChecked())
        self.rerender()

    def select_person_at(self, x: float, y: float) -> int | None:
        """Select the track of the person at image point (x, y) for the angles panel."""
        from .overlay import pick_person
        frame = self.controller.current
        people = frame.people if frame is not None else ()
        i = pick_person(people, (x, y))
        if i is None:
            self.status_message("Nobody to select in this frame.", 4000)
            return None
        track = int(people[i].track_id)
        self.angles_panel.select_track(track)
        self.status_message(f"Selected track #{track}.", 4000)
        return track

    def _on_view_clicked(self, x: float, y: float) -> None:
        if not self.panel.attention_on:
            # without attention a click picks a person (angles panel and plot)
            self.select_person_at(x, y)
            return
        if self.panel.attention_kind == "decoder":
            self.status_message(
                "TFPose explains keypoints, not image points: choose a keypoint (or click a "
                "row of the joint-dependency matrix).", 5000)
            return
        self.set_point(x, y)

    def _home(self) -> None:
        self.controller.pause()
        self.controller.seek(0)

    def _probe_cameras(self) -> None:
        try:
            from core.video import list_cameras
            cams = list_cameras()
        except Exception:                             # noqa: BLE001 - no cameras, not an error
            cams = []
        if not self._closed:
            self.cameras_found.emit(cams)

    def _on_cameras(self, cams: list) -> None:
        self.source_bar.set_cameras(cams)
        self.camera_menu.clear()
        for c in cams:
            self.camera_menu.addAction(c, lambda s=c: self.open_source(s))
        if not cams:
            a = self.camera_menu.addAction("no camera found")
            a.setEnabled(False)

    def _fill_recent_menu(self, recent: list[str]) -> None:
        self.recent_menu.clear()
        for spec in recent:
            self.recent_menu.addAction(spec, lambda s=spec: self.open_source(s))

    def _show_shortcuts(self) -> None:
        QMessageBox.information(self, "Keyboard shortcuts",
                                "Space: play / pause\nLeft / Right: one frame back / forward "
                                "(quick presses add up)\n"
                                "Home / End: first / last frame\n"
                                "Ctrl+G: go to a frame or a time (type 120, 4.5s or 1:02.5)\n"
                                "A click on the position bar jumps there; drag to scrub\n"
                                "A focused slider, field or list keeps these keys (click or "
                                "Tab to it); Esc: back to the video\n"
                                "Ctrl+O: open a video\n"
                                "Ctrl+E: export tracks\nCtrl+B: batch queue\n"
                                "Click the image (attention on, TransPose): affected area of "
                                "that point; right-click clears it\n"
                                "Click a row of the TFPose joint-dependency matrix: explain "
                                "that keypoint\n"
                                "Shift+click a person: follow them (Esc stops)\n"
                                "In the video: wheel or +/-: zoom, drag: pan, 0 or "
                                "double-click: whole frame\n"
                                "M: measure (two clicks: a distance, three: the angle at the "
                                "second; Esc ends)")

    def _show_about(self) -> None:
        info = self._engine_info
        QMessageBox.about(self, "TransPose Studio",
                          "Human pose estimation and tracking in video, with TransPose "
                          "attention maps and TFPose decoder attention that show what each "
                          "keypoint depends on.\n\n"
                          f"Model: {info.description if info else 'not loaded'}")

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self._fill_recent_menu(self.recent_sources())

    # ---- closing -----------------------------------------------------------------------------
    def shutdown(self, timeout: float = 1.8) -> bool:
        """Stop every worker (pipelines, batch, export, renderer); bounded by `timeout`."""
        if self._closed:
            return True
        self._closed = True
        t0 = time.monotonic()
        deadline = t0 + timeout
        self.save_settings()
        ok = True
        for runner in (self._export_runner,
                       self.batch_dialog.runner if self.batch_dialog else None):
            if runner is not None:
                runner.cancel()           # non-blocking; joined below
        ok &= self.controller.shutdown(timeout=max(0.1, deadline - time.monotonic() - 0.2))
        for runner in (self._export_runner,
                       self.batch_dialog.runner if self.batch_dialog else None):
            if runner is not None:
                ok &= runner.wait(max(0.05, deadline - time.monotonic() - 0.1))
        self.renderer.shutdown(max(0.05, deadline - time.monotonic()))
        self.close_seconds = time.monotonic() - t0
        return ok

    def save_settings(self) -> None:
        self.panel.save(self.settings)
        self.settings.setValue("dialogs/dir", self.source_bar.dialog_dir)
        self.settings.setValue("playback/speed", self.transport.speed)
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        ok = self.shutdown()
        if not ok:
            log.warning("some worker threads did not stop within the time limit")
        if self.batch_dialog is not None:
            self.batch_dialog.close()
        if self._export_progress is not None:
            self._export_progress.close()
        event.accept()
