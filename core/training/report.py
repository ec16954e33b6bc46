"""Learning curves of training runs: a Markdown table and a plot.

    python -m core.training.report out/train/tp-r-tiny-e10 out/train/tfpose-tiny-e10 \\
        --plot docs/img/learning_curves.png

Each run folder holds the ``history.json`` the trainer writes. Runs continued from another
run's weights (``train --init``) can be chained with ``A+B``: B's epochs are numbered after
A's. The plot shows validation PCK@0.05 per epoch (comparable across architectures: every
model is scored on joints in heatmap pixels against the same targets) and each run's
training loss relative to its first epoch (TransPose's heatmap MSE and TFPose's L1 +
auxiliary + score loss are on different scales).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import InputError


def load_history(spec: str) -> tuple[str, list[dict[str, Any]]]:
    """'RUN' or 'RUN_A+RUN_B' -> (label, rows with a global epoch number)."""
    rows: list[dict[str, Any]] = []
    names = []
    for part in spec.split("+"):
        path = Path(part) / "history.json"
        if not path.is_file():
            raise InputError(f"{path}: no such file (is {part} a training run folder?)")
        offset = rows[-1]["epoch"] if rows else 0
        for r in json.loads(path.read_text()):
            rows.append({**r, "epoch": r["epoch"] + offset, "run": Path(part).name})
        names.append(Path(part).name)
    return "+".join(names), rows


def markdown_table(label: str, rows: list[dict[str, Any]]) -> str:
    lines = [f"**{label}**", "",
             "| epoch | train loss | val loss | val PCK@0.05 | lr | s/epoch |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        vl = f"{r['val_loss']:.4g}" if r.get("val_loss") is not None else "-"
        pck = f"{r['val_pck05']:.3f}" if r.get("val_pck05") is not None else "-"
        lines.append(f"| {r['epoch']} | {r['train_loss']:.4g} | {vl} | {pck} | "
                     f"{r['lr']:.2e} | {r['time_s']:.0f} |")
    return "\n".join(lines)


def plot(runs: list[tuple[str, list[dict[str, Any]]]], out: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("--plot needs matplotlib (pip install matplotlib)") from None
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=110)
    for label, rows in runs:
        ep = [r["epoch"] for r in rows]
        a.plot(ep, [r.get("val_pck05") or 0 for r in rows], marker="o", ms=3, label=label)
        first = rows[0]["train_loss"]
        b.plot(ep, [r["train_loss"] / first for r in rows], marker="o", ms=3, label=label)
    a.set(xlabel="epoch", ylabel="validation PCK@0.05", title="held-out training people")
    b.set(xlabel="epoch", ylabel="train loss / epoch-1 loss", title="training loss (relative)")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = out.with_name(out.stem + ".tmp" + out.suffix)
    fig.savefig(tmp)
    tmp.replace(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="learning curves of training runs")
    p.add_argument("runs", nargs="+", help="run folders (history.json); A+B chains a --init run")
    p.add_argument("--plot", type=Path, metavar="OUT.png")
    args = p.parse_args(argv)
    runs = [load_history(r) for r in args.runs]
    for label, rows in runs:
        print(markdown_table(label, rows) + "\n")
    if args.plot:
        plot(runs, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
