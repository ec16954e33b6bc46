"""The main window: video view, source bar, transport, settings panel, status bar, menus."""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QHBoxLayout, QLabel, QMainWindow, QMessageBox,
                               QProgressBar, QProgressDialog, QScrollArea, QToolButton,
                               QVBoxLayout, QWidget, QFrame)

from core.engine import EngineConfig
from core.types import PoseFrame

from .angles_panel import AnglesPanel
from .batch_dialog import BatchDialog, BatchRunner, ExportDialog
from .controller import Controller, EngineInfo, PlaybackStats, SourceInfo
from .overlay import OverlaySettings
from .panels import SettingsPanel, SourceBar, TransportBar
from .renderer import FrameRenderer, RenderedFrame
from .video_view import VideoView

log = logging.getLogger(__name__)

ORGANIZATION = "TransPose Studio"
APPLICATION = "TransPose Studio"
MAX_RECENT = 10


def default_settings() -> QSettings:
    return QSettings(ORGANIZATION, APPLICATION)


class Banner(QFrame):
    """A dismissable message strip above the video: errors never need a modal box."""

    COLORS = {"error": ("#5c1f1f", "#ffd9d9"), "warning": ("#5a4a12", "#fff1c2"),
              "info": ("#1f3d5c", "#d9ecff")}

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
        self.hide()

    def show_message(self, level: str, text: str) -> None:
        bg, fg = self.COLORS.get(level, self.COLORS["info"])
        self.setStyleSheet(f"Banner {{ background: {bg}; }} QLabel {{ color: {fg}; }} "
                           f"QToolButton {{ color: {fg}; }}")
        self.level = level
        self.label.setText(text)
        self.show()

    @property
    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""


class MainWindow(QMainWindow):
    cameras_found = Signal(list)

    def __init__(self, settings: QSettings | None = None, *,
                 engine_overrides: dict[str, Any] | None = None,
                 probe_cameras: bool = True) -> None:
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

        # --- widgets ------------------------------------------------------------------------
        central = QWidget()
        v = QVBoxLayout(central)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(0)
        self.banner = Banner()
        self.source_bar = SourceBar()
        self.view = VideoView()
        self.transport = TransportBar()
        v.addWidget(self.banner)
        v.addWidget(self.source_bar)
        v.addWidget(self.view, 1)
        v.addWidget(self.transport)
        self.setCentralWidget(central)

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

        sb = self.statusBar()
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setMaximumWidth(120)
        self.busy_bar.setMaximumHeight(14)
        self.busy_bar.hide()
        self.stats_label = QLabel("no source")
        self.device_label = QLabel("")
        sb.addPermanentWidget(self.busy_bar)
        sb.addPermanentWidget(self.stats_label)
        sb.addPermanentWidget(self.device_label)

        self._make_actions()
        self._wire()

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
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 860)
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

        m = mb.addMenu("&View")
        m.addAction(self.dock.toggleViewAction())
        m.addAction(self.angles_dock.toggleViewAction())
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
        c.state_changed.connect(self._on_state)
        c.message.connect(self.show_message)
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
        p = self.panel
        p.engine_config_changed.connect(self._on_engine_config)
        p.overlay_changed.connect(lambda _: self.rerender())
        p.attention_toggled.connect(self._on_attention_toggled)
        p.clear_point_requested.connect(self.clear_point)
        self.view.clicked.connect(self._on_view_clicked)
        self.view.cleared.connect(self.clear_point)
        self.view.size_changed.connect(self.rerender)
        self.view.keypoint_picked.connect(self.panel.select_keypoint)
        c.frame_ready.connect(self.angles_panel.add_frame)
        c.source_opened.connect(lambda *_: self.angles_panel.clear())
        self.angles_panel.changed.connect(self.rerender)

    # ---- public API (menus, tests, the screenshot mode) ----------------------------------------
    def open_source(self, spec: str, autoplay: bool = False, start: int = 0) -> None:
        self.source_bar.set_current(f"opening {spec}…")
        self.controller.open_source(spec, autoplay=autoplay, start=start)

    def overlay_settings(self) -> OverlaySettings:
        s = self.panel.overlay_settings()
        return dataclasses.replace(s, attention=self.panel.attention_check.isChecked(),
                                   click_xy=self._click_xy,
                                   angles=self.angles_panel.overlay_angles(),
                                   angle_track=self.angles_panel.selected_track)

    def rerender(self) -> None:
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

    def show_message(self, level: str, text: str) -> None:
        """Errors and warnings go to the banner (never a modal box), everything to the log."""
        getattr(log, "error" if level == "error" else "warning" if level == "warning"
                else "info")("%s", text)
        if level in ("error", "warning"):
            self.banner.show_message(level, text)
        self.statusBar().showMessage(text, 8000)

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
        self.batch_dialog.show()
        self.batch_dialog.raise_()
        return self.batch_dialog

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
            default = str(self.settings.value("export/out", "") or Path(info.spec).parent)
            dlg = ExportDialog(info.name, default, self)
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
            self.banner.show_message("info", f"Exported {files} ({r.message}).")
        elif r.status == "cancelled":
            self.show_message("warning", "Export cancelled; unfinished files were removed.")
        else:
            self.show_message("error", f"Export failed: {r.message}")

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
        if self.banner.level == "error" and "model" in self.banner.text.lower():
            self.banner.hide()
        self.rerender()

    def _on_engine_failed(self, message: str) -> None:
        self.panel.show_engine_config(self.controller.config)
        if self._engine_info is not None:
            self.panel.set_engine_info(self._engine_info)
        kept = " (the previous one stays in use)" if self._engine_info is not None else ""
        self.show_message("error", f"Model not loaded{kept}: {message}")

    def _on_busy(self, busy: bool, text: str) -> None:
        self.busy_bar.setVisible(busy)
        self.panel.set_busy(busy, text)
        self.view.set_busy(text if busy else "")
        if busy:
            self.statusBar().showMessage(text)
        else:
            self.statusBar().clearMessage()

    def _on_source_opened(self, info: SourceInfo) -> None:
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
        self.view.clear("processing the first frame…")
        if self.banner.level in ("error", "warning"):
            self.banner.hide()
        recent = [info.spec] + [r for r in self.recent_sources() if r != info.spec]
        self.settings.setValue("sources/recent", recent[:MAX_RECENT])
        self.source_bar.set_recent(recent[:MAX_RECENT])
        self._fill_recent_menu(recent[:MAX_RECENT])

    def _on_source_failed(self, message: str) -> None:
        info = self.controller.source
        self.source_bar.set_current(info.name if info is not None else "no source")
        self.show_message("error", message)

    def _on_frame(self, frame: PoseFrame) -> None:
        self.transport.set_position(frame.index, frame.time_s)
        (w, h), dpr = self.view.target_size()
        self.renderer.submit(frame, self.overlay_settings(), (w, h), dpr)

    def _on_rendered(self, out: RenderedFrame) -> None:
        if self._closed:
            return
        self._last_rendered = out
        self.view.set_image(out.image, out.mapping, out.inset)

    def _on_state(self, state: str) -> None:
        self.transport.set_playing(state == "playing")
        if state != "playing":
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
            self.statusBar().showMessage("Nobody to select in this frame.", 4000)
            return None
        track = int(people[i].track_id)
        self.angles_panel.select_track(track)
        self.statusBar().showMessage(f"Selected track #{track}.", 4000)
        return track

    def _on_view_clicked(self, x: float, y: float) -> None:
        if not self.panel.attention_on:
            # without attention a click picks a person (angles panel and plot)
            self.select_person_at(x, y)
            return
        if self.panel.attention_kind == "decoder":
            self.statusBar().showMessage(
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
                                "Space: play / pause\nLeft / Right: one frame back / forward\n"
                                "Home / End: first / last frame\nCtrl+O: open a video\n"
                                "Ctrl+E: export tracks\nCtrl+B: batch queue\n"
                                "Click the image (attention on, TransPose): affected area of "
                                "that point; right-click clears it\n"
                                "Click a row of the TFPose joint-dependency matrix: explain "
                                "that keypoint")

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
