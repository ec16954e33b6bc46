"""The angles dock: choose angles, see them beside the selected person on the video and as
a plot over time for the selected track (pyqtgraph).

Angles come from `core.analysis.angles` on the keypoints as the tracker delivers them
(live: no zero-lag filter, which needs the whole video; `main.py annotate --filter` has
it). Clicking a person on the video selects their track (main_window wires the click).
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                               QPushButton, QVBoxLayout, QWidget)

from core.analysis.angles import ANGLE_NAMES, compute_angles
from core.types import PoseFrame

DEFAULT_ANGLES: tuple[str, ...] = ("left_knee", "right_knee", "left_hip", "right_hip", "trunk")
# Distinct, colour-blind-friendly-ish pen colours (Okabe-Ito first), cycled per angle.
_PALETTE = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
            "#FFFFFF", "#999999")
MAX_SAMPLES = 20_000          # per track: about 11 minutes at 30 fps
_DOTS_BELOW = 60              # a series with fewer samples is drawn with dots as well


class AngleHistory:
    """Every angle of every track, per frame seen (a seek adds frames anywhere in time)."""

    def __init__(self) -> None:
        # track id -> frame index -> (time_s, {name: degrees})
        self._tracks: dict[int, dict[int, tuple[float, dict[str, float]]]] = defaultdict(dict)
        self.current_ids: tuple[int, ...] = ()     # the tracks in the newest frame added

    def clear(self) -> None:
        self._tracks.clear()
        self.current_ids = ()

    def add(self, frame: PoseFrame) -> None:
        self.current_ids = tuple(sorted(int(p.track_id) for p in frame.people))
        for p in frame.people:
            values = compute_angles(np.asarray(p.keypoints, float)[None], ANGLE_NAMES)
            samples = self._tracks[int(p.track_id)]
            samples[int(frame.index)] = (float(frame.time_s),
                                         {n: float(v[0]) for n, v in values.items()})
            if len(samples) > MAX_SAMPLES:
                samples.pop(min(samples))

    @property
    def track_ids(self) -> list[int]:
        return sorted(self._tracks)

    def series(self, track_id: int, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(times, degrees) of one angle of one track, in time order (NaN: missing)."""
        samples = self._tracks.get(track_id, {})
        rows = sorted(samples.values(), key=lambda r: r[0])
        return (np.array([t for t, _ in rows], float),
                np.array([v[name] for _, v in rows], float))

    def latest(self, track_id: int) -> dict[str, float]:
        samples = self._tracks.get(track_id)
        if not samples:
            return {}
        return samples[max(samples)][1]


class AnglesPanel(QWidget):
    """Angle choice, the selected track and its plot. Emits `changed` when what the video
    overlay should draw changes (angles shown, selection)."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        import pyqtgraph as pg

        super().__init__(parent)
        self.history = AngleHistory()
        self._track: int | None = None
        self._curves: dict[str, object] = {}

        self.show_check = QCheckBox("Show angles on the video")
        self.show_check.setChecked(True)
        self.show_check.setToolTip("List the chosen angles beside the selected person "
                                   "(beside everyone while nobody is selected)")
        self.list = QListWidget()
        self.list.setToolTip("Angles to show and plot (convention: docs/angles.md)")
        for name in ANGLE_NAMES:
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if name in DEFAULT_ANGLES
                               else Qt.CheckState.Unchecked)
            self.list.addItem(item)
        self.list.setMaximumWidth(190)
        self.track_label = QLabel()
        self.track_label.setWordWrap(True)
        self.clear_button = QPushButton("Deselect")
        self.clear_button.setToolTip("Show the angles of everyone; the plot follows the "
                                     "first track")
        self.clear_button.clicked.connect(lambda: self.select_track(None))

        pg.setConfigOptions(antialias=True)
        self.plot = pg.PlotWidget()
        self.plot.setLabel("bottom", "time", units="s")
        self.plot.setLabel("left", "angle (degrees)")
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.addLegend(offset=(8, 8))
        self.plot.setMinimumHeight(150)

        left = QVBoxLayout()
        left.addWidget(self.show_check)
        left.addWidget(self.list, 1)
        left.addWidget(self.track_label)
        left.addWidget(self.clear_button)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        lay.addLayout(left)
        lay.addWidget(self.plot, 1)

        # the plot is redrawn at most 5 times a second, not once per frame
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(200)
        self._timer.timeout.connect(self.refresh_plot)
        self.list.itemChanged.connect(self._on_choice)
        self.show_check.toggled.connect(lambda _: self.changed.emit())
        self._update_label()

    # ---- state ----------------------------------------------------------------------------
    def chosen_angles(self) -> tuple[str, ...]:
        return tuple(self.list.item(i).text() for i in range(self.list.count())
                     if self.list.item(i).checkState() == Qt.CheckState.Checked)

    def set_angles(self, names: tuple[str, ...] | list[str]) -> None:
        wanted = set(names)
        self.list.blockSignals(True)
        for i in range(self.list.count()):
            item = self.list.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.text() in wanted
                               else Qt.CheckState.Unchecked)
        self.list.blockSignals(False)
        self._on_choice()

    def overlay_angles(self) -> tuple[str, ...]:
        """What the video should list beside the person ((): nothing)."""
        return self.chosen_angles() if self.show_check.isChecked() else ()

    @property
    def selected_track(self) -> int | None:
        return self._track

    def plotted_track(self) -> int | None:
        """The selected track; else the first person of the newest frame (so the plot
        follows who is on screen), else the first track seen."""
        if self._track is not None:
            return self._track
        ids = self.history.current_ids or tuple(self.history.track_ids)
        return ids[0] if ids else None

    def select_track(self, track_id: int | None) -> None:
        self._track = None if track_id is None else int(track_id)
        self._update_label()
        self.refresh_plot()
        self.changed.emit()

    # ---- data -----------------------------------------------------------------------------
    def add_frame(self, frame: PoseFrame) -> None:
        self.history.add(frame)
        if not self._timer.isActive():
            self._timer.start()

    def clear(self) -> None:
        """Forget the angles seen (a new source). The selected track id stays: ids start
        at 1 in every source, and `main.py gui --track` selects before the source opens."""
        self.history.clear()
        self._update_label()
        self.refresh_plot()

    def refresh_plot(self) -> None:
        track = self.plotted_track()
        names = self.chosen_angles()
        for name in list(self._curves):
            if name not in names or track is None:
                self.plot.removeItem(self._curves.pop(name))
        if track is None:
            return
        for name in names:
            t, v = self.history.series(track, name)
            color = _PALETTE[ANGLE_NAMES.index(name) % len(_PALETTE)]
            curve = self._curves.get(name)
            if curve is None:
                curve = self.plot.plot(name=name, pen={"color": color, "width": 2},
                                       connect="finite")
                self._curves[name] = curve
            # a line needs two samples in a row: a still frame (or a few frames seen by
            # seeking) would plot nothing, so short series get dots too
            dots = int(np.isfinite(v).sum()) < _DOTS_BELOW
            curve.setData(t, v, connect="finite", symbol="o" if dots else None, symbolSize=6,
                          symbolPen=None, symbolBrush=color)
        self.plot.setTitle(f"track #{track}")
        self._update_label()

    @property
    def refresh_pending(self) -> bool:
        """Frames added that the plot does not show yet (it is redrawn on a timer)."""
        return self._timer.isActive()

    def curve_data(self, name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The plotted (times, degrees) of one angle (tests)."""
        curve = self._curves.get(name)
        if curve is None:
            return None
        x, y = curve.getData()
        return (np.asarray(x if x is not None else []), np.asarray(y if y is not None else []))

    def _on_choice(self, *_: object) -> None:
        self.refresh_plot()
        self.changed.emit()

    def _update_label(self) -> None:
        if self._track is None:
            shown = self.plotted_track()
            self.track_label.setText("Click a person on the video to select them." +
                                     (f" Plotting #{shown}." if shown is not None else ""))
        else:
            latest = self.history.latest(self._track)
            values = ", ".join(f"{n} {round(float(latest[n]))}°" for n in self.chosen_angles()[:2]
                               if n in latest and np.isfinite(latest[n]))
            self.track_label.setText(f"Selected: #{self._track}" +
                                     (f"\n{values}" if values else ""))
