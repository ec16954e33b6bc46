"""The GUI with a TFPose model (pytest-qt, offscreen): its decoder attention explained.

The TFPose checkpoints here have *random* weights (tfpose-micro, saved to tmp_path): their
keypoints mean nothing, but their decoder attention has the real shapes, which is all the
window needs. The TransPose checkpoint is tests/conftest.py's deterministic random one.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core.pose.decoder_attention import DecoderAttention

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "tests" / "data" / "clip_person.mp4"      # 30 frames, 270x480, 60 fps
needs_qt = pytest.mark.skipif(
    importlib.util.find_spec("PySide6") is None or importlib.util.find_spec("pytestqt") is None,
    reason="PySide6 and pytest-qt are needed for the GUI tests")


def _explanation(centres: list[tuple[float, float]], seed: int = 0) -> DecoderAttention:
    """A DecoderAttention with 2 layers, 2 heads, 17 joints; person i samples around
    centres[i]."""
    rng = np.random.default_rng(seed)
    layers, heads, k, levels, points = 2, 2, 17, 4, 2
    p = len(centres)
    jw = rng.random((layers, p, heads, k, k)) + 0.01
    jw /= jw.sum(-1, keepdims=True)
    spread = rng.normal(0, 5, (layers, p, k, heads, levels, points, 2))
    pts = spread + np.asarray(centres, np.float64)[None, :, None, None, None, None, :]
    sw = rng.random((layers, p, k, heads, levels, points))
    sw /= sw.sum((-1, -2), keepdims=True)
    return DecoderAttention(jw.astype(np.float32), pts.astype(np.float32),
                            sw.astype(np.float32))


def test_decoder_attention_links_points_and_people():
    att = _explanation([(50, 60), (300, 200)])
    row = att.joint_dependencies(1, layer=0)[9]
    # one keypoint's links: the others above 10 % of its row's largest weight, strongest first
    joints, weights = att.joint_links(1, 9, layer=0, min_fraction=0.1)
    assert 9 not in joints and np.all(np.diff(weights) <= 0)
    np.testing.assert_allclose(weights, row[joints])
    assert set(joints) == {j for j in range(17) if j != 9 and row[j] >= 0.1 * row.max()}
    assert len(att.joint_links(1, 9, min_fraction=2.0)[0]) == 0
    # every joint's strongest other joint, strongest links first
    src, dst, w = att.strongest_links(0, layer=-1)
    deps = att.joint_dependencies(0, layer=-1).copy()
    np.fill_diagonal(deps, -1)
    assert sorted(src) == list(range(17)) and not np.any(src == dst)
    np.testing.assert_array_equal(dst[np.argsort(src)], deps.argmax(1))
    assert np.all(np.diff(w) <= 0)
    src2, _, _ = att.strongest_links(0, per_joint=3)
    assert len(src2) == 17 * 3
    # the strongest sampling points only, strongest first
    pts, w = att.sampling(0, 3, layer=0, top=5)
    all_pts, all_w = att.sampling(0, 3, layer=0)
    assert pts.shape == (5, 2) and np.all(np.diff(w) <= 0)
    np.testing.assert_allclose(w, np.sort(all_w)[::-1][:5])
    # which explanation row a (tracked, maybe reordered) person's box is
    np.testing.assert_allclose(att.centers(), [(50, 60), (300, 200)], atol=3)
    assert att.person_for([280, 150, 40, 100]) == 1
    assert att.person_for([20, 20, 60, 80]) == 0
    assert att.person_for([600, 600, 20, 20]) is None        # nobody's
    assert att.select(np.array([1])).person_for([280, 150, 40, 100]) == 0


# ----------------------------------------------------------------------------------------------
# The window


def pipeline_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("pose-pipeline-")]


@pytest.fixture
def tfpose_checkpoint(tmp_path) -> Path:
    import torch

    from core.models import build_tfpose, save_checkpoint
    torch.manual_seed(0)
    return Path(save_checkpoint(build_tfpose("tfpose-micro").eval(), tmp_path / "tfpose.pth"))


def settled(w) -> bool:
    c, r = w.controller, w.last_rendered
    return (c.idle and not c.playing and w.renderer.idle and c.current is not None
            and r is not None and r.frame is c.current)


@needs_qt
def test_tfpose_decoder_attention_in_the_window(qtbot, window, tfpose_checkpoint,
                                                 random_tp_r_a3_checkpoint):
    from PySide6.QtCore import QPoint, QPointF, Qt

    from app.overlay import JointMatrix, attention_heat, joint_matrix, render_frame
    from core.pose.attention import AttentionMaps
    w, c, panel = window, window.controller, window.panel
    w.open_source(str(CLIP))
    qtbot.waitUntil(lambda: settled(w) and c.current.index == 0, timeout=30_000)
    assert not panel.attention_group.isEnabled()                 # MediaPipe: none

    # a TFPose checkpoint: the attention controls range over the decoder layers
    panel.set_model(str(tfpose_checkpoint))
    qtbot.waitUntil(lambda: c.engine is not None and c.engine.has_attention, timeout=60_000)
    assert c.engine.attention_kind == "decoder" and "TFPose tfpose-micro" in c.engine.description
    dec_layers = 2                                                # tfpose-micro
    assert panel.attention_group.isEnabled() and "TFPose" in panel.attention_group.title()
    assert panel.layer_combo.count() == dec_layers
    assert panel.layer_combo.currentData() == dec_layers - 1      # the last
    assert "Decoder layer" in panel.layer_combo.toolTip()
    # the TransPose-only controls are disabled and say why; the matrix switch appears
    assert not panel.delta_slider.isEnabled() and "TransPose only" in panel.delta_slider.toolTip()
    assert not panel.clear_point_button.isEnabled()
    assert "TransPose only" in panel.clear_point_button.toolTip()
    assert not panel.point_label.isEnabled()
    assert panel.matrix_check.isVisibleTo(panel) and panel.matrix_check.isChecked()

    # attention on a paused frame: the decoder's explanation, computed once for it
    panel.set_attention(True, 9)                                  # left wrist
    qtbot.waitUntil(lambda: settled(w) and isinstance(c.current.attention, DecoderAttention),
                    timeout=60_000)
    frame = c.current
    assert frame.attention.num_layers == dec_layers and frame.people
    s = w.overlay_settings()
    assert s.attention and s.attention_keypoint == 9 and s.attention_layer == dec_layers - 1
    (tw, th), _ = w.view.target_size()
    drawn, mapping = render_frame(frame, s, (tw, th))
    plain, _ = render_frame(frame, dataclasses.replace(s, attention=False), (tw, th))
    assert np.abs(drawn.astype(int) - plain.astype(int)).sum() > 0
    assert attention_heat(frame, s, mapping.scale, mapping.display_hw) is None   # no heatmap
    for kp, layer in ((None, 0), (0, 0), (16, -1)):      # all keypoints, each end, each layer
        render_frame(frame, dataclasses.replace(s, attention_keypoint=kp, attention_layer=layer),
                     (tw, th))
    # the joint-dependency matrix of the first person, for the chosen layer, in the view
    m = joint_matrix(frame, s)
    assert isinstance(m, JointMatrix) and m.values.shape == (17, 17) and m.colors.shape == (17, 17, 3)
    np.testing.assert_allclose(m.values.sum(1), 1, atol=1e-4)
    assert (m.keypoint, m.layer, m.num_layers) == (9, dec_layers - 1, dec_layers)
    assert m.track_id == frame.people[0].track_id
    assert joint_matrix(frame, dataclasses.replace(s, attention_matrix=False)) is None
    qtbot.waitUntil(lambda: settled(w) and w.view.inset is not None, timeout=10_000)
    assert w.last_rendered.inset.keypoint == 9
    # a click on a row of the matrix explains that keypoint
    lay = w.view.inset_layout()
    row = QPointF(lay.grid.left() + 3 * lay.cell, lay.grid.top() + 5.5 * lay.cell)
    assert w.view.inset_cell_at(row) == (5, 3)
    qtbot.mouseClick(w.view, Qt.MouseButton.LeftButton, pos=row.toPoint())
    assert w.overlay_settings().attention_keypoint == 5
    qtbot.waitUntil(lambda: settled(w) and w.view.inset is not None
                    and w.view.inset.keypoint == 5, timeout=10_000)
    # the image itself has no affected area to show for TFPose: a click picks no point
    person = frame.people[0]
    bx, by, bw, bh = person.box
    m = w.last_rendered.mapping
    rect_x = (w.view.width() - m.display_hw[1]) / 2
    rect_y = (w.view.height() - m.display_hw[0]) / 2
    qtbot.mouseClick(w.view, Qt.MouseButton.LeftButton,
                     pos=QPoint(int(rect_x + (bx + bw / 2) * m.scale),
                                int(rect_y + (by + bh / 2) * m.scale)))
    assert w.overlay_settings().click_xy is None and not panel.clear_point_button.isEnabled()
    # another layer: the matrix follows
    panel.layer_combo.setCurrentIndex(0)
    qtbot.waitUntil(lambda: settled(w) and w.view.inset is not None and w.view.inset.layer == 0,
                    timeout=10_000)

    # playing keeps the explanation on every frame
    c.play()
    qtbot.waitUntil(lambda: c.current.index > 0 and isinstance(c.current.attention,
                                                               DecoderAttention), timeout=60_000)
    c.pause()
    qtbot.waitUntil(lambda: settled(w), timeout=30_000)

    # back to TransPose: its encoder-attention controls exactly as before
    panel.set_model(str(random_tp_r_a3_checkpoint))
    qtbot.waitUntil(lambda: c.engine is not None and c.engine.attention_kind == "encoder"
                    and settled(w) and isinstance(c.current.attention, AttentionMaps),
                    timeout=60_000)
    assert panel.attention_group.title() == "Attention (TransPose)"
    assert panel.layer_combo.count() == 3 and panel.layer_combo.currentData() == 2
    assert panel.layer_combo.toolTip().startswith("Encoder layer")
    assert panel.delta_slider.isEnabled() and panel.point_label.isEnabled()
    assert panel.delta_slider.toolTip().startswith("Threshold δ")
    assert "TransPose only" not in panel.clear_point_button.toolTip()
    assert not panel.matrix_check.isVisibleTo(panel)
    assert w.last_rendered.inset is None and w.view.inset is None
    s = w.overlay_settings()
    assert attention_heat(c.current, s, w.last_rendered.mapping.scale,
                          w.last_rendered.mapping.display_hw) is not None
    # and a click on the image is that point's affected area again
    qtbot.mouseClick(w.view, Qt.MouseButton.LeftButton,
                     pos=QPoint(int(rect_x + (bx + bw / 2) * m.scale),
                                int(rect_y + (by + bh / 2) * m.scale)))
    assert w.overlay_settings().click_xy is not None and panel.clear_point_button.isEnabled()

    t0 = time.monotonic()
    w.close()
    assert time.monotonic() - t0 < 2.0
    assert not pipeline_threads()


@needs_qt
def test_screenshot_with_tfpose_attention(tmp_path, tfpose_checkpoint):
    import cv2
    png = tmp_path / "tfpose.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "gui", "--source", str(CLIP), "--frame", "3",
         "--model", str(tfpose_checkpoint), "--device", "cpu", "--attention", "left_wrist",
         "--screenshot", str(png)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "has no attention" not in proc.stderr
    image = cv2.imread(str(png))
    assert image is not None and image.shape[0] >= 600 and image.shape[1] >= 1000
    # the matrix inset sits in the view's top-left corner, over the dark background
    assert image[70:260, 10:240].std() > 20
