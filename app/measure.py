"""The view's measuring tool: points clicked on the frame, in source-image pixels.

Two points give a distance, three the angle at the middle one (first point, vertex, last
point, as with a protractor) and the lengths of its two arms. No Qt here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

Point = tuple[float, float]


def distance(a: Point, b: Point) -> float:
    """Euclidean distance in pixels."""
    return math.hypot(b[0] - a[0], b[1] - a[1])


def angle_at(a: Point, vertex: Point, b: Point) -> float:
    """The angle a-vertex-b in degrees, 0..180; NaN when an arm has no length."""
    ux, uy = a[0] - vertex[0], a[1] - vertex[1]
    vx, vy = b[0] - vertex[0], b[1] - vertex[1]
    if (ux == 0 and uy == 0) or (vx == 0 and vy == 0):
        return math.nan
    return math.degrees(abs(math.atan2(ux * vy - uy * vx, ux * vx + uy * vy)))


@dataclass(frozen=True)
class Measurement:
    """Up to three clicked points; what they measure."""

    points: tuple[Point, ...] = ()

    MAX_POINTS = 3

    def add(self, point: Point) -> "Measurement":
        """This measurement with one more point; a fourth click starts a new one."""
        p = (float(point[0]), float(point[1]))
        if len(self.points) >= self.MAX_POINTS:
            return Measurement((p,))
        return Measurement(self.points + (p,))

    def without_last(self) -> "Measurement":
        return Measurement(self.points[:-1])

    @property
    def distance(self) -> float | None:
        """Between the two points (None unless there are exactly two)."""
        return distance(*self.points) if len(self.points) == 2 else None

    @property
    def angle(self) -> float | None:
        """At the second of three points, degrees (None unless there are three)."""
        return angle_at(*self.points) if len(self.points) == 3 else None

    @property
    def arms(self) -> tuple[float, float] | None:
        """The lengths vertex-first point and vertex-last point, with three points."""
        if len(self.points) != 3:
            return None
        a, v, b = self.points
        return distance(v, a), distance(v, b)

    @property
    def text(self) -> str:
        """The reading, for the view and the status bar."""
        n = len(self.points)
        if n == 0:
            return "Measure: click two points for a distance, three for an angle (at the 2nd)"
        if n == 1:
            x, y = self.points[0]
            return f"({x:.0f}, {y:.0f}) px: click the next point"
        if n == 2:
            return (f"distance {self.distance:.1f} px · click a third point for the angle "
                    f"at the second")
        angle, (la, lb) = self.angle, self.arms or (0.0, 0.0)
        shown = "–" if angle is None or math.isnan(angle) else f"{angle:.1f}°"
        return f"angle {shown} · arms {la:.1f} px and {lb:.1f} px"

    @property
    def angle_text(self) -> str:
        a = self.angle
        return "" if a is None or math.isnan(a) else f"{a:.1f}°"
