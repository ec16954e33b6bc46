"""Batch annotation from the GUI: the queue dialog and the current video's export.

Both run `core.batch.job.annotate_one` on a worker thread with their own engine, so
their CSV/JSON/overlay files are exactly those of `main.py annotate` (same names from
`outputs_for`, same writers). Cancelling stops the running pipeline at once; annotate_one
then removes that input's unfinished outputs, as on Ctrl-C in the CLI.
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QDialog, QDialogButtonBox,
                               QFileDialog, QFormLayout, QHBoxLayout, QHeaderView, QLabel,
                               QLineEdit, QProgressBar, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from core.engine import EngineConfig, build_engine
from core.errors import StudioError

log = logging.getLogger(__name__)


class _Cancelled(Exception):
    """Raised inside annotate_one's progress callback / after its run to cancel an input."""


class _CancellablePipeline:
    """Wraps the pipeline annotate_one starts: the runner can stop it from outside, and a
    stopped run raises instead of returning (so annotate_one discards the partial files)."""

    def __init__(self, pipeline: Any, runner: "BatchRunner") -> None:
        self._pipeline = pipeline
        self._runner = runner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipeline, name)

    def run(self, on_frame: Callable[[Any], None] | None = None) -> Any:
        if not self._runner._attach(self._pipeline):
            raise _Cancelled()
        try:
            result = self._pipeline.run(on_frame)
        finally:
            self._runner._attach(None)
        if self._runner.cancelled:
            raise _Cancelled()
        return result


class _CancellableEngine:
    """An Engine whose pipelines are _CancellablePipeline (everything else is the engine's)."""

    def __init__(self, engine: Any, runner: "BatchRunner") -> None:
        self._engine = engine
        self._runner = runner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def pipeline(self, source: Any, **kwargs: Any) -> _CancellablePipeline:
        return _CancellablePipeline(self._engine.pipeline(source, **kwargs), self._runner)


@dataclass(frozen=True)
class BatchItemResult:
    row: int
    input: str
    status: str                 # done | skipped | failed | cancelled
    message: str
    outputs: dict[str, Path]


class BatchRunner(QObject):
    """Annotates a list of inputs on a "gui-batch" thread; progress comes as signals."""

    file_started = Signal(int)
    file_progress = Signal(int, int, int)        # row, frames done, frame count (-1 unknown)
    file_finished = Signal(object)               # BatchItemResult
    overall_progress = Signal(float)             # 0..1
    status = Signal(str)
    finished = Signal(bool)                      # cancelled?

    def __init__(self, inputs: list[str], out_dir: str | Path, config: EngineConfig,
                 overlay: bool = False, force: bool = True,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.inputs = [str(i) for i in inputs]
        self.out_dir = Path(out_dir)
        self.config = config
        self.overlay = overlay
        self.force = force
        self.results: list[BatchItemResult] = []
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._pipeline: Any = None
        self._thread: threading.Thread | None = None
        self.done = False

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gui-batch", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        """Never blocks: the running pipeline is stopped by a short helper thread."""
        with self._lock:
            self._cancelled.set()
            p = self._pipeline
        if p is not None:
            threading.Thread(target=p.stop, name="gui-batch-cancel", daemon=True).start()

    def wait(self, timeout: float) -> bool:
        if self._thread is not None:
            self._thread.join(max(0.0, timeout))
        return not self.running

    def _attach(self, pipeline: Any) -> bool:
        with self._lock:
            if pipeline is not None and self._cancelled.is_set():
                return False
            self._pipeline = pipeline
            return True

    def _run(self) -> None:
        from core.batch.job import annotate_one, outputs_for
        n = len(self.inputs)
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self._fail_all(f"{self.out_dir}: cannot create the output folder ({e.strerror or e})")
            return
        self.status.emit(f"loading model {self.config.model}…")
        try:
            engine = _CancellableEngine(build_engine(self.config, progress=False), self)
        except StudioError as e:
            self._fail_all(str(e))
            return
        except Exception as e:                       # noqa: BLE001
            log.error("batch model load failed:\n%s", traceback.format_exc())
            self._fail_all(f"the model could not be loaded: {e}")
            return
        self.status.emit(engine.pose_description)
        for row, inp in enumerate(self.inputs):
            outputs = outputs_for(inp, self.out_dir, self.overlay)
            if self.cancelled:
                self._finish(row, inp, "cancelled", "not started", outputs)
                continue
            if not self.force and all(p.exists() for p in outputs.values()):
                self._finish(row, inp, "skipped", "outputs exist", outputs)
                self.overall_progress.emit((row + 1) / n)
                continue
            self.file_started.emit(row)
            last_emit = [0.0]

            def progress(done: int, total: int | None, row: int = row) -> None:
                if self.cancelled:
                    raise _Cancelled()
                now = time.monotonic()
                if now - last_emit[0] >= 0.05 or (total and done >= total):
                    last_emit[0] = now
                    self.file_progress.emit(row, done, total if total else -1)
                    frac = min(1.0, done / total) if total else 0.0
                    self.overall_progress.emit((row + frac) / n)

            try:
                r = annotate_one(engine, inp, outputs, None, progress=progress)
                note = r.warning_note()
                self._finish(row, inp, "done", f"{r.frames} frames in {r.seconds:.1f} s" +
                             (f"; {note}" if note else ""), outputs)
            except _Cancelled:
                self._finish(row, inp, "cancelled", "unfinished outputs removed", outputs)
            except StudioError as e:
                self._finish(row, inp, "failed", str(e), outputs)
            except Exception as e:                   # noqa: BLE001 - isolate each input
                log.error("batch input %s failed:\n%s", inp, traceback.format_exc())
                self._finish(row, inp, "failed", f"unexpected error: {e}", outputs)
            if not self.cancelled:
                self.overall_progress.emit((row + 1) / n)
        self.done = True
        self.finished.emit(self.cancelled)

    def _finish(self, row: int, inp: str, status: str, message: str,
                outputs: dict[str, Path]) -> None:
        r = BatchItemResult(row, inp, status, message, outputs)
        self.results.append(r)
        self.file_finished.emit(r)

    def _fail_all(self, message: str) -> None:
        for row, inp in enumerate(self.inputs):
            self._finish(row, inp, "failed", message, {})
        self.done = True
        self.finished.emit(self.cancelled)


# ----------------------------------------------------------------------------------------------


class BatchDialog(QDialog):
    """A queue of videos / image folders annotated to CSV, JSON and (optionally) overlay."""

    COLUMNS = ("Input", "Progress", "Status")

    def __init__(self, config_provider: Callable[[], EngineConfig],
                 default_out: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Batch annotation")
        self.setModal(False)
        self.resize(760, 420)
        self._config_provider = config_provider
        self.runner: BatchRunner | None = None
        self._bars: list[QProgressBar] = []
        self.dialog_dir = ""        # where "Add files/folder" open (the window's last folder)

        lay = QVBoxLayout(self)
        buttons = QHBoxLayout()
        self.add_files_button = QPushButton("Add files…")
        self.add_folder_button = QPushButton("Add folder…")
        self.remove_button = QPushButton("Remove")
        self.clear_button = QPushButton("Clear")
        for b in (self.add_files_button, self.add_folder_button, self.remove_button,
                  self.clear_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        lay.addLayout(buttons)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.Fixed)
        hh.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.setColumnWidth(1, 160)
        lay.addWidget(self.table, 1)

        form = QFormLayout()
        out_row = QHBoxLayout()
        self.out_edit = QLineEdit(default_out)
        self.out_edit.setPlaceholderText("output folder")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_out)
        out_row.addWidget(self.out_edit, 1)
        out_row.addWidget(browse)
        form.addRow("Output folder", out_row)
        self.overlay_check = QCheckBox("Also write <name>.overlay.mp4 (skeleton video)")
        form.addRow(self.overlay_check)
        self.force_check = QCheckBox("Redo inputs whose outputs already exist")
        form.addRow(self.force_check)
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        form.addRow("Model", self.model_label)
        lay.addLayout(form)
        self.overall_bar = QProgressBar()
        self.overall_bar.setRange(0, 1000)
        self.overall_bar.setFormat("overall %p%")
        lay.addWidget(self.overall_bar)
        self.status_label = QLabel("Add videos or image folders, choose an output folder, Start.")
        self.status_label.setWordWrap(True)
        lay.addWidget(self.status_label)
        bottom = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.cancel_button = QPushButton("Cancel")
        self.open_button = QPushButton("Open output folder")
        self.close_button = QPushButton("Close")
        bottom.addWidget(self.start_button)
        bottom.addWidget(self.cancel_button)
        bottom.addStretch(1)
        bottom.addWidget(self.open_button)
        bottom.addWidget(self.close_button)
        lay.addLayout(bottom)

        self.add_files_button.clicked.connect(self._browse_files)
        self.add_folder_button.clicked.connect(self._browse_folder)
        self.remove_button.clicked.connect(self._remove_selected)
        self.clear_button.clicked.connect(lambda: self.set_inputs([]))
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.open_button.clicked.connect(self.open_output_folder)
        self.close_button.clicked.connect(self.close)
        self._update_buttons()

    # ---- the queue -----------------------------------------------------------------------------
    @property
    def inputs(self) -> list[str]:
        return [self.table.item(r, 0).data(Qt.ItemDataRole.UserRole)
                for r in range(self.table.rowCount())]

    def add_inputs(self, paths: list[str]) -> None:
        have = set(self.inputs)
        for p in paths:
            p = str(p)
            if p in have:
                continue
            have.add(p)
            r = self.table.rowCount()
            self.table.insertRow(r)
            item = QTableWidgetItem(Path(p).name or p)
            item.setData(Qt.ItemDataRole.UserRole, p)
            item.setToolTip(p)
            self.table.setItem(r, 0, item)
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setValue(0)
            bar.setFormat("%p%")
            self.table.setCellWidget(r, 1, bar)
            self.table.setItem(r, 2, QTableWidgetItem("queued"))
        self._update_buttons()

    def set_inputs(self, paths: list[str]) -> None:
        if self.running:
            return
        self.table.setRowCount(0)
        self.add_inputs(paths)

    def set_output_dir(self, path: str) -> None:
        self.out_edit.setText(str(path))

    def bar(self, row: int) -> QProgressBar:
        return self.table.cellWidget(row, 1)

    def status_of(self, row: int) -> str:
        return self.table.item(row, 2).text()

    @property
    def running(self) -> bool:
        return self.runner is not None and self.runner.running

    # ---- actions -----------------------------------------------------------------------------
    def start(self) -> None:
        if self.running:
            return
        inputs = self.inputs
        out = self.out_edit.text().strip()
        if not inputs:
            self.status_label.setText("The queue is empty: add videos or image folders.")
            return
        if not out:
            self.status_label.setText("Choose an output folder first.")
            return
        config = self._config_provider()
        self.model_label.setText(f"{config.model} · detector {config.detector} · "
                                 f"smoothing {config.smoothing}")
        for r in range(self.table.rowCount()):
            self.bar(r).setRange(0, 1000)
            self.bar(r).setValue(0)
            self.table.item(r, 2).setText("queued")
        self.overall_bar.setValue(0)
        runner = BatchRunner(inputs, out, config, overlay=self.overlay_check.isChecked(),
                             force=self.force_check.isChecked(), parent=self)
        runner.file_started.connect(self._on_started)
        runner.file_progress.connect(self._on_progress)
        runner.file_finished.connect(self._on_file_finished)
        runner.overall_progress.connect(lambda f: self.overall_bar.setValue(int(f * 1000)))
        runner.status.connect(self.status_label.setText)
        runner.finished.connect(self._on_finished)
        self.runner = runner
        runner.start()
        self._update_buttons(running=True)

    def cancel(self) -> None:
        if self.runner is not None and self.running:
            self.runner.cancel()
            self.status_label.setText("cancelling…")

    def open_output_folder(self) -> None:
        out = self.out_edit.text().strip()
        if out and Path(out).is_dir():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(out).resolve())))
        else:
            self.status_label.setText("The output folder does not exist yet.")

    def shutdown(self, timeout: float) -> bool:
        if self.runner is None:
            return True
        self.runner.cancel()
        return self.runner.wait(timeout)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self.running:
            c = self._config_provider()
            self.model_label.setText(f"{c.model} · detector {c.detector} · smoothing "
                                     f"{c.smoothing} (the main window's settings)")

    # ---- reactions ---------------------------------------------------------------------------
    def _on_started(self, row: int) -> None:
        self.table.item(row, 2).setText("running…")
        self.table.scrollToItem(self.table.item(row, 0))

    def _on_progress(self, row: int, done: int, total: int) -> None:
        bar = self.bar(row)
        if total > 0:
            bar.setRange(0, 1000)
            bar.setValue(int(1000 * min(1.0, done / total)))
        else:
            bar.setRange(0, 0)                  # unknown length: busy indicator
        self.table.item(row, 2).setText(f"{done} frames" + (f" / {total}" if total > 0 else ""))

    def _on_file_finished(self, r: BatchItemResult) -> None:
        bar = self.bar(r.row)
        bar.setRange(0, 1000)
        if r.status in ("done", "skipped"):
            bar.setValue(1000)
        item = self.table.item(r.row, 2)
        item.setText(f"{r.status}: {r.message}" if r.message else r.status)
        item.setToolTip(r.message)

    def _on_finished(self, cancelled: bool) -> None:
        results = self.runner.results if self.runner else []
        counts: dict[str, int] = {}
        for r in results:
            counts[r.status] = counts.get(r.status, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in counts.items())
        self.status_label.setText(("Cancelled. " if cancelled else "Finished. ") + summary)
        self._update_buttons(running=False)

    def _update_buttons(self, running: bool = False) -> None:
        self.start_button.setEnabled(not running and self.table.rowCount() > 0)
        self.cancel_button.setEnabled(running)
        for b in (self.add_files_button, self.add_folder_button, self.remove_button,
                  self.clear_button):
            b.setEnabled(not running)

    def _browse_files(self) -> None:
        from .panels import VIDEO_FILTER, start_dir
        paths, _ = QFileDialog.getOpenFileNames(self, "Add videos", start_dir(self.dialog_dir),
                                                VIDEO_FILTER)
        if paths:
            self.dialog_dir = str(Path(paths[0]).parent)
        self.add_inputs(paths)

    def _browse_folder(self) -> None:
        from .panels import start_dir
        path = QFileDialog.getExistingDirectory(self, "Add a folder of images",
                                                start_dir(self.dialog_dir))
        if path:
            self.dialog_dir = str(Path(path).parent)
            self.add_inputs([path])

    def _browse_out(self) -> None:
        from .panels import start_dir
        path = QFileDialog.getExistingDirectory(self, "Output folder",
                                                start_dir(self.out_edit.text() or self.dialog_dir))
        if path:
            self.out_edit.setText(path)

    def _remove_selected(self) -> None:
        for r in sorted({i.row() for i in self.table.selectedIndexes()}, reverse=True):
            self.table.removeRow(r)
        self._update_buttons()


class ExportDialog(QDialog):
    """Where to export the current video's tracks, and whether to write the overlay."""

    def __init__(self, source_name: str, default_out: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export tracks")
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel(f"Export the tracks of <b>{source_name}</b> "
                             f"as CSV and JSON (the same files as <code>main.py annotate</code>)."))
        form = QFormLayout()
        row = QHBoxLayout()
        self.out_edit = QLineEdit(default_out)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row.addWidget(self.out_edit, 1)
        row.addWidget(browse)
        form.addRow("Output folder", row)
        self.overlay_check = QCheckBox("Also write the overlay video")
        form.addRow(self.overlay_check)
        lay.addLayout(form)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok |
                               QDialogButtonBox.StandardButton.Cancel)
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        lay.addWidget(box)

    def _browse(self) -> None:
        from .panels import start_dir
        path = QFileDialog.getExistingDirectory(self, "Output folder",
                                                start_dir(self.out_edit.text()))
        if path:
            self.out_edit.setText(path)
