"""Draws docs/img/angles_convention.png, the figure of docs/angles.md.

    .venv/bin/python docs/make_angle_figure.py
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt                        # noqa: E402
from matplotlib.patches import Arc, FancyArrowPatch    # noqa: E402

OUT = Path(__file__).resolve().parent / "img" / "angles_convention.png"


def unit(deg: float) -> tuple[float, float]:
    return math.cos(math.radians(deg)), math.sin(math.radians(deg))


def add(p, d, length):
    return p[0] + d[0] * length, p[1] + d[1] * length


def pose(lean=15.0, hip=70.0, knee=80.0, shoulder=60.0, elbow=70.0):
    trunk = 90 - lean
    down = trunk - 180
    P = {"hip": (0.0, 0.0)}
    P["shoulder"] = add(P["hip"], unit(trunk), 1.0)
    P["knee"] = add(P["hip"], unit(down + hip), 0.9)
    P["ankle"] = add(P["knee"], unit(down + hip - knee), 0.9)
    P["elbow"] = add(P["shoulder"], unit(down + shoulder), 0.6)
    P["wrist"] = add(P["elbow"], unit(down + shoulder + elbow), 0.55)
    P["head"] = add(P["shoulder"], unit(trunk), 0.3)
    return P, dict(trunk=trunk, down=down, thigh=down + hip, shank=down + hip - knee,
                   arm=down + shoulder, fore=down + shoulder + elbow,
                   lean=lean, hip=hip, knee=knee, shoulder=shoulder, elbow=elbow)


def skeleton(ax, P):
    for a, b in (("hip", "shoulder"), ("hip", "knee"), ("knee", "ankle"),
                 ("shoulder", "elbow"), ("elbow", "wrist")):
        ax.plot(*zip(P[a], P[b]), color="#2a6fb0", lw=4, solid_capstyle="round", zorder=2)
    ax.add_patch(plt.Circle(P["head"], 0.17, fc="white", ec="#2a6fb0", lw=3, zorder=2))
    ax.plot(P["head"][0] + 0.2, P["head"][1], marker=">", color="#2a6fb0", ms=8)   # the nose
    for k in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist"):
        ax.plot(*P[k], "o", color="#d0452b", ms=6, zorder=3)


def arc(ax, centre, start, end, radius, label, color):
    lo, hi = sorted((start, end))
    ax.add_patch(Arc(centre, 2 * radius, 2 * radius, theta1=lo, theta2=hi, color=color, lw=2))
    mid = (start + end) / 2
    tip = add(centre, unit(end), radius)
    ax.annotate("", xy=tip, xytext=add(centre, unit(end - math.copysign(8, end - start)), radius),
                arrowprops=dict(arrowstyle="-|>", color=color, lw=2))
    ax.text(*add(centre, unit(mid), radius + 0.16), label, color=color, ha="center",
            va="center", fontsize=9,
            bbox=dict(fc="white", ec="none", alpha=0.8, pad=0.5))


def dashed(ax, p, deg, length=0.55, color="0.5"):
    ax.plot(*zip(p, add(p, unit(deg), length)), ls="--", color=color, lw=1)


def main() -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 5.4))
    P, A = pose()
    ax = axes[0]
    skeleton(ax, P)
    ax.set_title("Segment angles: proximal → distal,\nanticlockwise from the horizontal (y up)",
                 fontsize=11)
    for name, at, deg in (("trunk_segment", "hip", A["trunk"]), ("thigh", "hip", A["thigh"]),
                          ("shank", "knee", A["shank"]), ("upper_arm", "shoulder", A["arm"]),
                          ("forearm", "elbow", A["fore"])):
        dashed(ax, P[at], 0.0)
        r = 0.3 if name != "forearm" else 0.22
        arc(ax, P[at], 0.0, deg, r, f"{name}\n{deg:+.0f}°", "#3b8a3b")
    ax = axes[1]
    skeleton(ax, P)
    ax.set_title("Joint angles: 0 standing upright, + = flexion\n(person facing image-right)",
                 fontsize=11)
    dashed(ax, P["hip"], 90.0, 1.2)
    arc(ax, P["hip"], 90.0, A["trunk"], 0.95, f"trunk {A['lean']:+.0f}°", "#8a3b8a")
    dashed(ax, P["hip"], A["down"], 0.7)
    arc(ax, P["hip"], A["down"], A["thigh"], 0.35, f"hip {A['hip']:+.0f}°", "#c0392b")
    dashed(ax, P["knee"], A["thigh"], 0.5)
    arc(ax, P["knee"], A["thigh"], A["shank"], 0.28, f"knee {A['knee']:+.0f}°", "#c0392b")
    dashed(ax, P["shoulder"], A["down"], 0.55)
    arc(ax, P["shoulder"], A["down"], A["arm"], 0.22, f"shoulder {A['shoulder']:+.0f}°",
        "#c0392b")
    dashed(ax, P["elbow"], A["arm"], 0.45)
    arc(ax, P["elbow"], A["arm"], A["fore"], 0.22, f"elbow {A['elbow']:+.0f}°", "#c0392b")
    for ax in axes:
        ax.set_aspect("equal")
        ax.set_xlim(-1.2, 1.9)
        ax.set_ylim(-1.7, 1.7)
        ax.axis("off")
        ax.add_patch(FancyArrowPatch((-1.1, -1.55), (-0.6, -1.55), arrowstyle="-|>",
                                     mutation_scale=12, color="0.3"))
        ax.text(-0.55, -1.55, "x", va="center", color="0.3")
        ax.add_patch(FancyArrowPatch((-1.1, -1.55), (-1.1, -1.05), arrowstyle="-|>",
                                     mutation_scale=12, color="0.3"))
        ax.text(-1.1, -0.98, "y (up)", ha="center", color="0.3")
    fig.text(0.5, 0.02, "A person facing image-left is the mirror image: segment angle a "
             "becomes 180° − a; joint angles keep their sign.", ha="center", fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=90)
    print(OUT)


if __name__ == "__main__":
    main()
