#!/usr/bin/env python3
"""Draw the application icon: resources/icons/transpose-studio-{256,64,...}.png.

A stylised COCO skeleton in a rounded square, bones coloured by side as the overlay draws
them (left blue, right orange, centre green), with a soft attention glow at the raised left
wrist. Each size is painted from vectors (not scaled down from one bitmap), so it stays sharp.

    .venv/bin/python packaging/make_icon.py            # writes resources/icons/*.png
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = (256, 128, 64, 48, 32)

# keypoints on a 256 x 256 canvas (the person faces us: their left is on the image's right)
P = {
    "nose": (128, 60), "ls": (160, 98), "rs": (96, 98), "le": (190, 70), "re": (70, 128),
    "lw": (200, 38), "rw": (58, 164), "lh": (150, 160), "rh": (106, 160), "lk": (172, 196),
    "rk": (92, 198), "la": (182, 230), "ra": (76, 232),
}
LEFT, RIGHT, CENTRE = (40, 160, 230), (255, 140, 40), (80, 200, 80)   # RGB, as the overlay
BONES = [
    ("ls", "le", LEFT), ("le", "lw", LEFT), ("ls", "lh", LEFT), ("lh", "lk", LEFT),
    ("lk", "la", LEFT),
    ("rs", "re", RIGHT), ("re", "rw", RIGHT), ("rs", "rh", RIGHT), ("rh", "rk", RIGHT),
    ("rk", "ra", RIGHT),
    ("ls", "rs", CENTRE), ("lh", "rh", CENTRE),
]


def draw(size: int):
    from PySide6.QtCore import QPointF, QRectF, Qt
    from PySide6.QtGui import QColor, QImage, QPainter, QPainterPath, QPen, QRadialGradient, \
        QLinearGradient

    img = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    img.fill(Qt.GlobalColor.transparent)
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.scale(size / 256.0, size / 256.0)

    # rounded square with a vertical gradient
    m = 8.0
    square = QPainterPath()
    square.addRoundedRect(QRectF(m, m, 256 - 2 * m, 256 - 2 * m), 48, 48)
    bg = QLinearGradient(0, 0, 0, 256)
    bg.setColorAt(0.0, QColor(38, 56, 92))
    bg.setColorAt(1.0, QColor(16, 24, 44))
    p.fillPath(square, bg)
    p.setClipPath(square)

    # attention glow around the raised left wrist
    glow = QRadialGradient(QPointF(*P["lw"]), 84)
    glow.setColorAt(0.0, QColor(255, 220, 100, 235))
    glow.setColorAt(0.4, QColor(255, 150, 40, 120))
    glow.setColorAt(1.0, QColor(255, 120, 20, 0))
    p.fillRect(QRectF(0, 0, 256, 256), glow)

    # bones: a dark outline under each coloured stroke keeps them readable at 32 px
    width = 13.0 if size >= 64 else 16.0
    for colour, w in (((10, 14, 26), width + 6), (None, width)):
        for a, b, c in BONES:
            pen = QPen(QColor(*(colour or c)), w)
            pen.setCapStyle(Qt.PenCapStyle.RoundCap)
            p.setPen(pen)
            p.drawLine(QPointF(*P[a]), QPointF(*P[b]))
        neck = QPointF((P["ls"][0] + P["rs"][0]) / 2, (P["ls"][1] + P["rs"][1]) / 2)
        pen = QPen(QColor(*(colour or CENTRE)), w)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        p.setPen(pen)
        p.drawLine(neck, QPointF(P["nose"][0], P["nose"][1] + 14))

    # head and joints
    p.setPen(QPen(QColor(10, 14, 26), 5))
    p.setBrush(QColor(245, 247, 250))
    p.drawEllipse(QPointF(*P["nose"]), 22, 22)
    if size >= 48:
        r = 8.5
        for name in ("ls", "rs", "le", "re", "lw", "rw", "lh", "rh", "lk", "rk", "la", "ra"):
            p.drawEllipse(QPointF(*P[name]), r, r)
    p.end()
    return img


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "resources" / "icons"))
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for size in SIZES:
        path = out / f"transpose-studio-{size}.png"
        if not draw(size).save(str(path)):
            print(f"error: {path}: could not be written", file=sys.stderr)
            return 1
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
