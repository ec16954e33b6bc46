"""The window's control panels: source bar, transport bar and the settings side panel.

Panels only turn user input into signals carrying plain values (specs, EngineConfig,
OverlaySettings); the main window wires them to the controller.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from PySide6.QtCore import QPoint, QSettings, Qt, QTimer, Signal
from PySide6.QtWidgets import (QAbstractButton, QCheckBox, QComboBox, QDoubleSpinBox,
                               QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QLineEdit, QMenu, QPushButton, QSizePolicy, QSlider, QStyle,
                               QToolButton, QToolTip, QVBoxLayout, QWidget)

from core import catalogue
from core.engine import EngineConfig
from core.keypoints import COCO_KEYPOINT_NAMES

from .infos import EngineInfo, SourceInfo
from .overlay import OverlaySettings
from .pacing import DEFAULT_FOLDER_FPS
from .timecode import GOTO_HELP, format_time, parse_position
from .widgets import ElidedLabel, SeekSlider

BROWSE = "__browse__"
VIDEO_FILTER = ("Videos (*.mp4 *.mov *.avi *.mkv *.webm *.m4v *.mpg *.mpeg *.wmv *.flv);;"
                "All files (*)")
SPEEDS = (0.25, 0.5, 1.0, 1.5, 2.0, 4.0)
DELTA_MAX = 0.02                 # top of the delta slider (attention values, rows sum to 1)
DELTA_STEPS = 200
NO_ATTENTION_TIP = ("The current pose model has no attention maps (MediaPipe BlazePose is not "
                    "a transformer). Choose a TransPose model (a .pth file or a model-zoo "
                    "name) or a TFPose checkpoint to see what each keypoint depends on.")
NO_MODEL_TIP = "Attention maps appear once a TransPose (or TFPose) model is loaded."
TRANSPOSE_TIP = ("Encoder attention of the TransPose model: for a keypoint, the image regions "
                 "its prediction depends on; for a clicked point, the regions it affects.")
TFPOSE_TIP = ("Decoder attention of the TFPose model: which joints each keypoint's query "
              "attended to (lines; the matrix: one row per joint's query) and where it sampled "
              "the image (dots).")
# TFPose's tooltips for the controls they share with TransPose
TFPOSE_TIPS = {
    "attention_check": "Explain the TFPose predictions: joint-to-joint attention and the "
                       "sampling points of each keypoint's query",
    "keypoint_combo": "Whose explanation to show: lines to the joints its query attended to "
                      "and dots where it sampled the image (size and colour by weight). All "
                      "keypoints: each joint's strongest dependency (an arrow to the joint it "
                      "attended to most) and a few sampling points per keypoint",
    "layer_combo": "Decoder layer (each one refines the keypoints; the last gives them)",
    "scale_combo": "Colour scale of the lines, sampling points and matrix, relative to the "
                   "strongest weight shown",
    "opacity_slider": "Opacity of the explanation drawn over the frame",
}
DELTA_TRANSPOSE_ONLY = ("TransPose only: δ hides weak encoder attention in the maps over the "
                        "image. TFPose's decoder attention is not such a map (it is drawn as "
                        "lines and sampling points, relative to the strongest).")
POINT_TRANSPOSE_ONLY = ("TransPose only: a point's affected area comes from the encoder's "
                        "attention between image positions. TFPose's decoder attends from each "
                        "joint's query instead: choose a keypoint (or click a row of the "
                        "matrix).")
MATRIX_TIP = ("The decoder's query-to-query attention of the first person (row: a joint's "
              "query, column: the joint it attended to; rows sum to 1), in the top-left corner "
              "of the video. Click a row to explain that keypoint; hover for the values.")


__all__ = ["BROWSE", "SettingsPanel", "SourceBar", "TransportBar", "format_time",
           "nearest_existing", "start_dir"]


def nearest_existing(folder: str | os.PathLike) -> Path | None:
    """`folder` when it exists, else its nearest existing parent (a folder not made yet);
    None when not even the root exists."""
    p = Path(folder).expanduser()
    while not p.exists():
        if p.parent == p:
            return None
        p = p.parent
    return p


def start_dir(folder: str | None) -> str:
    """Where a file dialog opens: `folder` when it still exists, else the home folder (never
    the working directory the program happened to start in)."""
    if folder and Path(folder).expanduser().is_absolute():
        p = nearest_existing(folder)
        if p is not None and p.is_file():
            p = p.parent
        if p is not None and p.is_dir() and p.parent != p:
            return str(p)
    return str(Path.home())


def _compact(combo: QComboBox, chars: int = 18) -> None:
    """A combo box that asks for room for `chars` characters, not for its longest entry
    (the model list's entries are long): the current entry is elided, the list opens as
    wide as its entries, and the tooltip names the current entry in full."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(chars)
    combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def widen_list() -> None:
        view = combo.view()
        view.setMinimumWidth(view.sizeHintForColumn(0) + 2 * view.frameWidth() + 24)

    def name_current(_: int = 0) -> None:
        base = combo.property("base_tip") or ""
        text = combo.currentText()
        combo.setToolTip(f"{base}\n{text}" if base and text else base or text)

    combo.setProperty("base_tip", combo.toolTip())
    combo.model().rowsInserted.connect(lambda *_: widen_list())
    combo.currentIndexChanged.connect(name_current)
    widen_list()
    name_current()


def _combo_select(combo: QComboBox, data: str, label: str | None = None) -> None:
    """Select the item with this data, adding it (before "Browse…") when missing."""
    i = combo.findData(data)
    if i < 0:
        at = combo.findData(BROWSE)
        at = combo.count() if at < 0 else at
        combo.insertItem(at, label or data, data)
        i = at
    combo.setCurrentIndex(i)


# ----------------------------------------------------------------------------------------------


class SourceBar(QWidget):
    """Camera picker, open video / image folder, recent sources."""

    open_requested = Signal(str)
    refresh_cameras = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        self.camera_combo = QComboBox()
        self.camera_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.camera_combo.setToolTip("Cameras OpenCV can open")
        self.camera_button = QPushButton("Open camera")
        self.camera_button.clicked.connect(self._open_camera)
        refresh = QToolButton()
        refresh.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_BrowserReload))
        refresh.setToolTip("Look for cameras again")
        refresh.clicked.connect(self.refresh_cameras)
        self.video_button = QPushButton("Open video…")
        self.video_button.clicked.connect(self.browse_video)
        self.folder_button = QPushButton("Open image folder…")
        self.folder_button.clicked.connect(self.browse_folder)
        # a push button sizes itself for its menu arrow (a tool button's arrow cut the text)
        self.recent_button = QPushButton("Recent")
        self.recent_button.setToolTip("Open a recently used source")
        self.recent_menu = QMenu(self)
        self.recent_button.setMenu(self.recent_menu)
        # elided in the middle (the size and frame count at the end stay readable), never
        # widening the window; the whole text is the tooltip
        self.current_label = ElidedLabel("no source", elide=Qt.TextElideMode.ElideMiddle,
                                         min_chars=6)
        self.current_label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.dialog_dir = ""          # where the file dialogs open (the last folder used)
        for w in (self.camera_combo, self.camera_button, refresh, self.video_button,
                  self.folder_button, self.recent_button, self.current_label):
            lay.addWidget(w)
        for b in (self.camera_button, refresh, self.video_button, self.folder_button,
                  self.recent_button):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)   # space/arrows stay transport keys
        self.set_cameras(None)
        self.set_recent([])

    def set_cameras(self, cameras: list[str] | None) -> None:
        self.camera_combo.clear()
        if cameras is None:
            self.camera_combo.addItem("looking for cameras…")
            self.camera_combo.setEnabled(False)
            self.camera_button.setEnabled(False)
        elif not cameras:
            self.camera_combo.addItem("no camera found")
            self.camera_combo.setEnabled(False)
            self.camera_button.setEnabled(False)
        else:
            for c in cameras:
                self.camera_combo.addItem(c, c)
            self.camera_combo.setEnabled(True)
            self.camera_button.setEnabled(True)

    def set_recent(self, recent: list[str]) -> None:
        self.recent_menu.clear()
        for spec in recent:
            act = self.recent_menu.addAction(spec)
            act.triggered.connect(lambda _=False, s=spec: self.open_requested.emit(s))
        self.recent_button.setEnabled(bool(recent))

    def set_current(self, text: str) -> None:
        self.current_label.setText(text)

    def _open_camera(self) -> None:
        spec = self.camera_combo.currentData()
        if spec:
            self.open_requested.emit(str(spec))

    def browse_video(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a video", start_dir(self.dialog_dir),
                                              VIDEO_FILTER)
        if path:
            self.dialog_dir = str(Path(path).parent)
            self.open_requested.emit(path)

    def browse_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a folder of images",
                                                start_dir(self.dialog_dir))
        if path:
            self.dialog_dir = str(Path(path).parent)
            self.open_requested.emit(path)


# ----------------------------------------------------------------------------------------------


class TransportBar(QWidget):
    """Play/pause, single steps, Home/End, a frame-accurate slider (a click jumps there), a
    go-to field (a frame or a time), time and speed."""

    play_clicked = Signal()
    step_requested = Signal(int)
    home_requested = Signal()
    end_requested = Signal()
    seek_requested = Signal(int)
    speed_changed = Signal(float)
    goto_finished = Signal()          # Enter in the go-to field went somewhere (or Escape)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 2, 6, 4)
        self._add_buttons(lay)
        self.slider = SeekSlider()
        # a player's position bar: clicks and drags, never the keyboard focus (the arrows
        # stay frame steps)
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.slider.setToolTip("Frame position: click to jump there, drag to scrub")
        self.slider.setMinimumWidth(80)
        lay.addWidget(self.slider, 1)
        self.time_label = self._build_time_label()
        lay.addWidget(self.time_label)
        self.goto_edit = self._build_goto_edit()
        lay.addWidget(self.goto_edit)
        self.speed_combo = self._build_speed_combo()
        lay.addWidget(self.speed_combo)

        self._connect_signals()
        self._count: int | None = None
        self._duration: float | None = None
        self._fps: float | None = None
        self.set_source(None)

    # ---- building ------------------------------------------------------------------------------
    def _add_buttons(self, lay: QHBoxLayout) -> None:
        """Home, one back, play/pause, one forward, End."""
        st = self.style()

        def button(icon: QStyle.StandardPixmap, tip: str) -> QToolButton:
            b = QToolButton()
            b.setIcon(st.standardIcon(icon))
            b.setToolTip(tip)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            lay.addWidget(b)
            return b

        self.home_button = button(QStyle.StandardPixmap.SP_MediaSkipBackward, "First frame (Home)")
        self.back_button = button(QStyle.StandardPixmap.SP_MediaSeekBackward,
                                  "One frame back (Left)")
        self.play_button = button(QStyle.StandardPixmap.SP_MediaPlay, "Play / pause (Space)")
        self.forward_button = button(QStyle.StandardPixmap.SP_MediaSeekForward,
                                     "One frame forward (Right)")
        self.end_button = button(QStyle.StandardPixmap.SP_MediaSkipForward, "Last frame (End)")

    @staticmethod
    def _build_time_label() -> QLabel:
        label = QLabel(format_time(None))
        # fixed width, digits of equal width: a new time never re-lays out the window
        font = label.font()
        font.setStyleHint(font.StyleHint.Monospace)
        font.setFamily("monospace")
        label.setFont(font)
        label.setFixedWidth(label.fontMetrics().horizontalAdvance(
            "00:00.000 / 00:00.000   frame 00000 / 00000") + 12)
        label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return label

    @staticmethod
    def _build_goto_edit() -> QLineEdit:
        edit = QLineEdit()
        edit.setPlaceholderText("go to…")
        edit.setToolTip(GOTO_HELP + " (Ctrl+G)")
        edit.setClearButtonEnabled(False)
        edit.setFixedWidth(edit.fontMetrics().horizontalAdvance("00:00:00.000") + 16)
        return edit

    @staticmethod
    def _build_speed_combo() -> QComboBox:
        combo = QComboBox()
        combo.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        combo.setToolTip("Playback speed")
        for s in SPEEDS:
            combo.addItem(f"{s:g}×", s)
        combo.setCurrentIndex(SPEEDS.index(1.0))
        return combo

    # ---- wiring --------------------------------------------------------------------------------
    def _connect_signals(self) -> None:
        self.play_button.clicked.connect(self.play_clicked)
        self.back_button.clicked.connect(lambda: self.step_requested.emit(-1))
        self.forward_button.clicked.connect(lambda: self.step_requested.emit(1))
        self.home_button.clicked.connect(self.home_requested)
        self.end_button.clicked.connect(self.end_requested)
        self.speed_combo.currentIndexChanged.connect(
            lambda _: self.speed_changed.emit(float(self.speed_combo.currentData())))
        # Seeks while dragging are throttled: each one restarts decoding at a keyframe.
        self._seek_timer = QTimer(self)
        self._seek_timer.setSingleShot(True)
        self._seek_timer.setInterval(120)
        self._seek_timer.timeout.connect(lambda: self.seek_requested.emit(self.slider.value()))
        self.slider.valueChanged.connect(self._slider_moved)
        self.slider.sliderReleased.connect(self._slider_released)
        self.goto_edit.returnPressed.connect(self.go_to_typed)

    def go_to_typed(self) -> bool:
        """Seek to the frame or time typed in the go-to field; False (and a hint beside the
        field) when it is neither or there is nothing to seek in."""
        index = None
        if self.slider.isEnabled():
            index = parse_position(self.goto_edit.text(), self._fps or DEFAULT_FOLDER_FPS,
                                   self._count)
        if index is None:
            QToolTip.showText(self.goto_edit.mapToGlobal(QPoint(0, self.goto_edit.height())),
                              GOTO_HELP if self.slider.isEnabled() else
                              "Open a video or an image folder first.", self.goto_edit)
            return False
        self.goto_edit.clear()
        self.seek_requested.emit(index)
        self.goto_finished.emit()
        return True

    @property
    def dragging(self) -> bool:
        return self.slider.isSliderDown()

    def _slider_moved(self, value: int) -> None:
        if not self._seek_timer.isActive():
            self._seek_timer.start()
        self._show_time(value, None)

    def _slider_released(self) -> None:
        self._seek_timer.stop()
        self.seek_requested.emit(self.slider.value())

    def set_source(self, info: SourceInfo | None) -> None:
        seekable = info is not None and not info.is_live and bool(info.frame_count)
        self._count = info.frame_count if info is not None else None
        self._duration = info.duration_s if info is not None else None
        self._fps = info.fps if info is not None else None
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, (self._count or 1) - 1))
        self.slider.setValue(0)
        self.slider.setPageStep(max(1, int(round(self._fps or 10))))
        self.slider.blockSignals(False)
        self.slider.setEnabled(seekable)
        self.goto_edit.setEnabled(seekable)
        for b in (self.home_button, self.back_button, self.forward_button, self.end_button):
            b.setEnabled(seekable)
        self.play_button.setEnabled(info is not None)
        self.speed_combo.setEnabled(info is not None and not info.is_live)
        self._show_time(None, None)

    def set_position(self, index: int, time_s: float | None) -> None:
        if not self.dragging and not self._seek_timer.isActive():
            self.slider.blockSignals(True)
            self.slider.setValue(index)
            self.slider.blockSignals(False)
        self._show_time(index, time_s)

    def _show_time(self, index: int | None, time_s: float | None) -> None:
        if index is not None and time_s is None and self._fps:
            time_s = index / self._fps
        elif index is not None and not self._fps and self._duration is not None:
            # an image folder has no timing: it plays at DEFAULT_FOLDER_FPS, and its
            # duration is counted so (its frames' own time_s is one second per image)
            time_s = index / DEFAULT_FOLDER_FPS
        total = f" / {self._count}" if self._count else ""
        frame = f"frame {index}{total}" if index is not None else f"frame –{total}"
        self.time_label.setText(f"{format_time(time_s)} / {format_time(self._duration)}   "
                                f"{frame}")

    def set_playing(self, playing: bool) -> None:
        self.play_button.setIcon(self.style().standardIcon(
            QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay))

    def set_speed(self, speed: float) -> None:
        i = self.speed_combo.findData(speed)
        if i >= 0:
            self.speed_combo.setCurrentIndex(i)

    @property
    def speed(self) -> float:
        return float(self.speed_combo.currentData())


# ----------------------------------------------------------------------------------------------


def _slider(lo: int, hi: int, value: int, tip: str) -> QSlider:
    s = QSlider(Qt.Orientation.Horizontal)
    s.setRange(lo, hi)
    s.setValue(value)
    s.setToolTip(tip + " (click or Tab to it, then the arrow keys; Esc: back to the video)")
    # Qt's convention: a click (or Tab) gives the slider the focus, then the arrows, Home/End
    # and Page Up/Down move it (app.keys keeps them from the player's shortcuts)
    s.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    return s


class SettingsPanel(QWidget):
    """Model, detector, device and smoothing; skeleton overlay; attention overlay."""

    engine_config_changed = Signal(object)      # EngineConfig
    overlay_changed = Signal(object)            # OverlaySettings (click point left to the window)
    attention_toggled = Signal(bool)
    clear_point_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._detect_every = EngineConfig().detect_every
        self._engine_info: EngineInfo | None = None
        self._attention_kind = ""
        self._point_set = False
        self._last_model = "auto"
        self._last_detector = "auto"
        self._layer_choice = -1         # the attention layer chosen: an index, -1 the last
        self.dialog_dir = ""            # where the checkpoint dialogs open
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        self.model_group = self._build_model_group()
        lay.addWidget(self.model_group)
        lay.addWidget(self._build_skeleton_group())
        self.attention_group = self._build_attention_group()
        lay.addWidget(self.attention_group)
        lay.addStretch(1)
        self._set_layers(0)

        self._connect_engine_controls()
        self._connect_overlay_controls()
        # check boxes and buttons take the focus from Tab only: a mouse click leaves it where
        # it was, so Space still plays the video after ticking a box
        for b in self.findChildren(QAbstractButton):
            b.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self._update_labels()
        self._attention_tips = {w: w.toolTip() for w in (
            self.attention_check, self.keypoint_combo, self.layer_combo, self.delta_slider,
            self.scale_combo, self.opacity_slider, self.clear_point_button)}
        self.set_engine_info(None)

    # ---- building ------------------------------------------------------------------------------
    def _build_model_group(self) -> QGroupBox:
        """Pose model, detector, device and smoothing, and the loaded model's description."""
        group = QGroupBox("Model")
        form = QFormLayout(group)
        self.model_combo = QComboBox()
        for entry in catalogue.pose_models():           # the CLI's --model choices
            if entry.label:
                self.model_combo.addItem(entry.label, entry.name)
        self.model_combo.addItem("Browse .pth…", BROWSE)
        self.model_combo.setToolTip("Pose model: TransPose weights give attention maps")
        form.addRow("Pose model", self.model_combo)
        self.detector_combo = QComboBox()
        for entry in catalogue.detectors():             # the CLI's --detector choices
            if entry.label:
                self.detector_combo.addItem(entry.label, entry.name)
        self.detector_combo.addItem("Browse .onnx…", BROWSE)
        self.detector_combo.setToolTip("Person detector (runs every few frames)")
        form.addRow("Detector", self.detector_combo)
        self.device_combo = QComboBox()
        for label, spec in _devices():
            self.device_combo.addItem(label, spec)
        self.device_combo.setToolTip("Where TransPose runs (BlazePose always runs on the CPU)")
        form.addRow("Device", self.device_combo)
        self.smoothing_combo = QComboBox()
        for label, spec in (("Kalman", "kalman"), ("One-Euro", "one-euro"), ("none", "none")):
            self.smoothing_combo.addItem(label, spec)
        form.addRow("Smoothing", self.smoothing_combo)
        self.strength_spin = QDoubleSpinBox()
        self.strength_spin.setRange(0.0, 5.0)
        self.strength_spin.setSingleStep(0.1)
        self.strength_spin.setValue(1.0)
        self.strength_spin.setToolTip("Smoothing strength (0 = off)")
        form.addRow("Strength", self.strength_spin)
        for combo in (self.model_combo, self.detector_combo, self.device_combo):
            _compact(combo)
        self.model_status = QLabel("")
        self.model_status.setWordWrap(True)
        # the window's own text colour (palette(mid) was grey on grey), a little smaller
        font = self.model_status.font()
        if font.pointSizeF() > 0:
            font.setPointSizeF(font.pointSizeF() * 0.92)
        self.model_status.setFont(font)
        self.model_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow(self.model_status)
        return group

    def _build_skeleton_group(self) -> QGroupBox:
        """What is drawn of each person, and the confidence threshold."""
        group = QGroupBox("Skeleton overlay")
        form = QFormLayout(group)
        self.skeleton_check = QCheckBox("Skeleton")
        self.skeleton_check.setToolTip("Bones coloured by side, joints by confidence")
        self.skeleton_check.setChecked(True)
        self.ids_check = QCheckBox("Track id labels")
        self.ids_check.setChecked(True)
        self.boxes_check = QCheckBox("Person boxes")
        self.trails_check = QCheckBox("Trails (wrists and ankles)")
        for c in (self.skeleton_check, self.ids_check, self.boxes_check, self.trails_check):
            form.addRow(c)
        self.threshold_slider = _slider(0, 100, 30, "Keypoints less confident than this are hidden")
        self.threshold_label = QLabel()
        form.addRow("Confidence", self._with_label(self.threshold_slider, self.threshold_label))
        return group

    def _build_attention_group(self) -> QGroupBox:
        """The attention overlay: keypoint, layer, threshold, colours, opacity, clicked point
        and (TFPose) the joint-dependency matrix."""
        group = QGroupBox("Attention (TransPose)")
        form = QFormLayout(group)
        self.attention_check = QCheckBox("Show attention")
        form.addRow(self.attention_check)
        self.keypoint_combo = QComboBox()
        self.keypoint_combo.addItem("all keypoints", -1)
        for i, name in enumerate(COCO_KEYPOINT_NAMES):
            self.keypoint_combo.addItem(name.replace("_", " "), i)
        self.keypoint_combo.setToolTip("Whose dependency area to show: the image regions the "
                                       "keypoint's prediction relied on")
        form.addRow("Keypoint", self.keypoint_combo)
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("Encoder layer (the last one forms the heatmaps)")
        form.addRow("Layer", self.layer_combo)
        self.delta_slider = _slider(0, DELTA_STEPS, 0, "Threshold δ: attention below it is hidden")
        self.delta_label = QLabel()
        form.addRow("δ", self._with_label(self.delta_slider, self.delta_label))
        self.scale_combo = QComboBox()
        self.scale_combo.addItem("√ attention (shows the spread)", "sqrt")
        self.scale_combo.addItem("linear", "linear")
        self.scale_combo.setToolTip("Colour scale of the overlay; each person's map is shown "
                                    "relative to its own peak")
        form.addRow("Colours", self.scale_combo)
        self.opacity_slider = _slider(0, 100, 60, "Opacity of the attention overlay")
        self.opacity_label = QLabel()
        form.addRow("Opacity", self._with_label(self.opacity_slider, self.opacity_label))
        self.point_label = QLabel("Click the image: that point's affected area. "
                                  "Right-click clears it.")
        self.point_label.setWordWrap(True)
        self.clear_point_button = QPushButton("Clear point")
        self.clear_point_button.setEnabled(False)
        form.addRow(self.point_label)
        form.addRow(self.clear_point_button)
        self.matrix_check = QCheckBox("Joint-dependency matrix (top left of the video)")
        self.matrix_check.setChecked(True)
        self.matrix_check.setToolTip(MATRIX_TIP)
        self.matrix_check.setVisible(False)              # TFPose only
        form.addRow(self.matrix_check)
        return group

    # ---- wiring --------------------------------------------------------------------------------
    def _connect_engine_controls(self) -> None:
        self.model_combo.activated.connect(self._model_activated)
        self.detector_combo.activated.connect(self._detector_activated)
        self.device_combo.activated.connect(lambda _: self._emit_engine())
        self.smoothing_combo.activated.connect(lambda _: self._emit_engine())
        # spin box: rebuild once typing/clicking settles
        self._strength_timer = QTimer(self)
        self._strength_timer.setSingleShot(True)
        self._strength_timer.setInterval(400)
        self._strength_timer.timeout.connect(self._emit_engine)
        self.strength_spin.valueChanged.connect(lambda _: self._strength_timer.start())

    def _connect_overlay_controls(self) -> None:
        for c in (self.skeleton_check, self.ids_check, self.boxes_check, self.trails_check):
            c.toggled.connect(lambda _: self._emit_overlay())
        for s in (self.threshold_slider, self.delta_slider, self.opacity_slider):
            s.valueChanged.connect(lambda _: self._emit_overlay())
        self.keypoint_combo.currentIndexChanged.connect(lambda _: self._keypoint_changed())
        self.layer_combo.currentIndexChanged.connect(self._layer_changed)
        self.scale_combo.currentIndexChanged.connect(lambda _: self._emit_overlay())
        self.matrix_check.toggled.connect(lambda _: self._emit_overlay())
        self.attention_check.toggled.connect(self._attention_changed)
        self.clear_point_button.clicked.connect(self.clear_point_requested)

    @staticmethod
    def _with_label(slider: QSlider, label: QLabel) -> QWidget:
        w = QWidget()
        h = QHBoxLayout(w)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(slider, 1)
        label.setMinimumWidth(64)
        h.addWidget(label)
        return w

    # ---- values --------------------------------------------------------------------------------
    def engine_config(self) -> EngineConfig:
        return EngineConfig(model=str(self.model_combo.currentData()),
                            detector=str(self.detector_combo.currentData()),
                            device=str(self.device_combo.currentData()),
                            smoothing=str(self.smoothing_combo.currentData()),
                            smoothing_strength=float(self.strength_spin.value()),
                            detect_every=self._detect_every)

    def overlay_settings(self) -> OverlaySettings:
        kp = int(self.keypoint_combo.currentData())
        layer = self.layer_combo.currentData()
        return OverlaySettings(
            skeleton=self.skeleton_check.isChecked(), boxes=self.boxes_check.isChecked(),
            ids=self.ids_check.isChecked(), trails=self.trails_check.isChecked(),
            threshold=self.threshold_slider.value() / 100.0,
            attention=self.attention_on,
            attention_keypoint=None if kp < 0 else kp,
            attention_layer=int(layer) if layer is not None else -1,
            attention_delta=self.delta_slider.value() * DELTA_MAX / DELTA_STEPS,
            attention_opacity=self.opacity_slider.value() / 100.0,
            attention_scale=str(self.scale_combo.currentData()),
            attention_matrix=self.matrix_check.isChecked())

    @property
    def attention_on(self) -> bool:
        return self.attention_check.isChecked() and self.attention_group.isEnabled()

    # ---- programmatic changes (tests, settings, the window) ----------------------------------
    def set_model(self, spec: str) -> None:
        """Select a model (adding a file to the list) and apply it."""
        _combo_select(self.model_combo, spec, _file_label(spec))
        self._last_model = spec
        self._emit_engine()

    def show_engine_config(self, config: EngineConfig) -> None:
        """Reflect the engine actually in use (after a failed load: the previous one)."""
        for combo in (self.model_combo, self.detector_combo, self.device_combo,
                      self.smoothing_combo):
            combo.blockSignals(True)
        _combo_select(self.model_combo, config.model, _file_label(config.model))
        _combo_select(self.detector_combo, config.detector, _file_label(config.detector))
        _combo_select(self.device_combo, config.device)
        _combo_select(self.smoothing_combo, config.smoothing)
        self._last_model, self._last_detector = config.model, config.detector
        for combo in (self.model_combo, self.detector_combo, self.device_combo,
                      self.smoothing_combo):
            combo.blockSignals(False)
        self.strength_spin.blockSignals(True)
        self.strength_spin.setValue(config.smoothing_strength)
        self.strength_spin.blockSignals(False)
        self._detect_every = config.detect_every

    def set_engine_info(self, info: EngineInfo | None) -> None:
        self._engine_info = info
        has = info is not None and info.has_attention
        kind = info.attention_kind if has else ""
        decoder = kind == "decoder"
        if kind != self._attention_kind and kind and self._attention_kind:
            self._set_layers(0)            # encoder <-> decoder layers: start at the last again
            self._layer_choice = -1
        self._attention_kind = kind
        self.attention_group.setEnabled(has)
        self.attention_group.setTitle("Attention (TFPose decoder)" if decoder
                                      else "Attention (TransPose)")
        if info is None:
            tip = NO_MODEL_TIP
        elif not has:
            tip = NO_ATTENTION_TIP
        else:
            tip = TFPOSE_TIP if decoder else TRANSPOSE_TIP
        self.attention_group.setToolTip(tip)
        for w, own in self._attention_tips.items():
            w.setToolTip(own if has else tip)     # disabled widgets still show tooltips
        # TFPose: its own words for the shared controls; the TransPose-only ones (delta, the
        # clicked point's affected area) are disabled and say why; the matrix appears
        if decoder:
            for name, text in TFPOSE_TIPS.items():
                getattr(self, name).setToolTip(text)
        self.delta_slider.setEnabled(not decoder)
        self.delta_label.setEnabled(not decoder)
        self.point_label.setEnabled(not decoder)
        self.clear_point_button.setEnabled(self._point_set and not decoder)
        if decoder:
            self.delta_slider.setToolTip(DELTA_TRANSPOSE_ONLY)
            self.clear_point_button.setToolTip(POINT_TRANSPOSE_ONLY)
        self.delta_label.setToolTip(DELTA_TRANSPOSE_ONLY if decoder else "")
        self.point_label.setToolTip(POINT_TRANSPOSE_ONLY if decoder else "")
        self.matrix_check.setVisible(decoder)
        self._set_layers(info.num_layers if has else 0)
        if info is not None:
            self.model_status.setText(info.description)
            self.model_status.setToolTip(info.description)

    def set_busy(self, busy: bool, text: str = "") -> None:
        self.model_group.setEnabled(not busy)
        if busy:
            self.model_status.setText(text)

    @property
    def attention_kind(self) -> str:
        """"encoder" (TransPose), "decoder" (TFPose) or "" (no attention)."""
        return self._attention_kind

    def select_keypoint(self, keypoint: int | None) -> None:
        """Explain this keypoint (None: all of them), as if chosen in the list."""
        i = self.keypoint_combo.findData(-1 if keypoint is None else int(keypoint))
        if i >= 0:
            self.keypoint_combo.setCurrentIndex(i)

    def set_point(self, xy: tuple[float, float] | None) -> None:
        self._point_set = xy is not None
        self.clear_point_button.setEnabled(xy is not None and self._attention_kind != "decoder")
        self.point_label.setText(
            "Click the image: that point's affected area. Right-click clears it." if xy is None
            else f"Affected area of the point ({xy[0]:.0f}, {xy[1]:.0f}) px. "
                 f"Right-click or “Clear point” to go back to keypoints.")

    def _set_layers(self, n: int) -> None:
        """n layers to choose from; the chosen one stays (the last stays the last)."""
        keep = self._layer_choice
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        for i in range(n):
            self.layer_combo.addItem(f"{i + 1}" + (" (last)" if i == n - 1 else ""), i)
        if n:
            self.layer_combo.setCurrentIndex(n - 1 if keep < 0 or keep >= n else keep)
        self.layer_combo.blockSignals(False)

    def _layer_changed(self, _: int) -> None:
        layer, n = self.layer_combo.currentData(), self.layer_combo.count()
        if layer is not None:
            self._layer_choice = -1 if int(layer) == n - 1 else int(layer)
        self._emit_overlay()

    # ---- reactions ---------------------------------------------------------------------------
    def _model_activated(self, _: int) -> None:
        if self.model_combo.currentData() == BROWSE:
            here = self.dialog_dir or (self._last_model if "/" in self._last_model else "")
            path, _f = QFileDialog.getOpenFileName(self, "TransPose or TFPose checkpoint",
                                                   start_dir(here),
                                                   "PyTorch checkpoints (*.pth *.pt *.tar *.ckpt);;"
                                                   "All files (*)")
            if not path:
                _combo_select(self.model_combo, self._last_model)
                return
            _combo_select(self.model_combo, path, _file_label(path))
            self.dialog_dir = str(Path(path).parent)
        self._last_model = str(self.model_combo.currentData())
        self._emit_engine()

    def _detector_activated(self, _: int) -> None:
        if self.detector_combo.currentData() == BROWSE:
            path, _f = QFileDialog.getOpenFileName(self, "YOLOX ONNX person detector",
                                                   start_dir(self.dialog_dir),
                                                   "ONNX models (*.onnx);;All files (*)")
            if not path:
                _combo_select(self.detector_combo, self._last_detector)
                return
            _combo_select(self.detector_combo, f"onnx:{path}", _file_label(f"onnx:{path}"))
            self.dialog_dir = str(Path(path).parent)
        self._last_detector = str(self.detector_combo.currentData())
        self._emit_engine()

    def _emit_engine(self) -> None:
        self._strength_timer.stop()
        self.engine_config_changed.emit(self.engine_config())

    def _emit_overlay(self) -> None:
        self._update_labels()
        self.overlay_changed.emit(self.overlay_settings())

    def _keypoint_changed(self) -> None:
        self.clear_point_requested.emit()     # choosing a keypoint leaves the clicked point
        self._emit_overlay()

    def _attention_changed(self, on: bool) -> None:
        self._emit_overlay()
        self.attention_toggled.emit(self.attention_on)

    def _update_labels(self) -> None:
        self.threshold_label.setText(f"conf ≥ {self.threshold_slider.value() / 100:.2f}")
        self.delta_label.setText(f"{self.delta_slider.value() * DELTA_MAX / DELTA_STEPS:.4f}")
        self.opacity_label.setText(f"{self.opacity_slider.value()} %")

    # ---- persistence ---------------------------------------------------------------------------
    def save(self, s: QSettings) -> None:
        c = self.engine_config()
        s.setValue("engine/model", c.model)
        s.setValue("engine/detector", c.detector)
        s.setValue("engine/device", c.device)
        s.setValue("engine/smoothing", c.smoothing)
        s.setValue("engine/strength", c.smoothing_strength)
        o = self.overlay_settings()
        s.setValue("overlay/skeleton", o.skeleton)
        s.setValue("overlay/ids", o.ids)
        s.setValue("overlay/boxes", o.boxes)
        s.setValue("overlay/trails", o.trails)
        s.setValue("overlay/threshold", self.threshold_slider.value())
        s.setValue("attention/on", self.attention_check.isChecked())
        s.setValue("attention/keypoint", int(self.keypoint_combo.currentData()))
        s.setValue("attention/layer", self._layer_choice)
        s.setValue("dialogs/model_dir", self.dialog_dir)
        s.setValue("attention/delta", self.delta_slider.value())
        s.setValue("attention/opacity", self.opacity_slider.value())
        s.setValue("attention/scale", str(self.scale_combo.currentData()))
        s.setValue("attention/matrix", self.matrix_check.isChecked())

    def load(self, s: QSettings) -> EngineConfig:
        """Restore the controls (without emitting); the engine config to load."""
        def get(key: str, default, kind=str):
            v = s.value(key, default)
            try:
                if kind is bool:
                    return v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes")
                return kind(v)
            except (TypeError, ValueError):
                return default
        config = EngineConfig(model=get("engine/model", "auto"),
                              detector=get("engine/detector", "auto"),
                              device=get("engine/device", "auto"),
                              smoothing=get("engine/smoothing", "kalman"),
                              smoothing_strength=get("engine/strength", 1.0, float))
        if config.smoothing not in ("kalman", "one-euro", "none"):
            config = dataclasses.replace(config, smoothing="kalman")
        self.show_engine_config(config)
        widgets = (self.skeleton_check, self.ids_check, self.boxes_check, self.trails_check,
                   self.threshold_slider, self.attention_check, self.keypoint_combo,
                   self.delta_slider, self.opacity_slider, self.scale_combo, self.matrix_check)
        for w in widgets:
            w.blockSignals(True)
        self.skeleton_check.setChecked(get("overlay/skeleton", True, bool))
        self.ids_check.setChecked(get("overlay/ids", True, bool))
        self.boxes_check.setChecked(get("overlay/boxes", False, bool))
        self.trails_check.setChecked(get("overlay/trails", False, bool))
        self.threshold_slider.setValue(get("overlay/threshold", 30, int))
        self.attention_check.setChecked(get("attention/on", False, bool))
        kp = get("attention/keypoint", -1, int)
        self._layer_choice = get("attention/layer", -1, int)
        self.dialog_dir = get("dialogs/model_dir", "")
        self.keypoint_combo.setCurrentIndex(max(0, self.keypoint_combo.findData(kp)))
        self.delta_slider.setValue(get("attention/delta", 0, int))
        self.opacity_slider.setValue(get("attention/opacity", 60, int))
        self.scale_combo.setCurrentIndex(max(0, self.scale_combo.findData(
            get("attention/scale", "sqrt"))))
        self.matrix_check.setChecked(get("attention/matrix", True, bool))
        for w in widgets:
            w.blockSignals(False)
        self._update_labels()
        return config

    def set_attention(self, on: bool, keypoint: int | None = None) -> None:
        if keypoint is not None or on:
            self.keypoint_combo.setCurrentIndex(
                max(0, self.keypoint_combo.findData(-1 if keypoint is None else keypoint)))
        self.attention_check.setChecked(on)


def _file_label(spec: str) -> str | None:
    """A short label for file specs (the tooltip of the combo shows the whole path)."""
    raw = spec[5:] if spec.startswith("onnx:") else spec
    if raw.lower().endswith((".pth", ".pt", ".tar", ".ckpt", ".onnx")) or "/" in raw:
        return f"{Path(raw).name} (file)"
    return None


def _devices() -> list[tuple[str, str]]:
    """auto, cpu, and each CUDA device torch can see."""
    out = [("auto (CUDA if available)", "auto"), ("CPU", "cpu")]
    try:
        import torch
        for i in range(torch.cuda.device_count()):
            out.append((f"cuda:{i} – {torch.cuda.get_device_name(i)}", f"cuda:{i}"))
    except Exception:                                 # noqa: BLE001 - no CUDA: CPU only
        pass
    return out
