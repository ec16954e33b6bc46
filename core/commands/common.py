"""Small helpers shared by the commands."""
from __future__ import annotations

import sys
from pathlib import Path

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
SHIPPED_MODELS = RESOURCES / "models"


def log(message: str) -> None:
    """Progress and status go to stderr so stdout stays clean for results."""
    print(message, file=sys.stderr, flush=True)


def shipped_weights() -> Path | None:
    """Our own trained TransPose shipped in resources/models, if any."""
    files = sorted(SHIPPED_MODELS.glob("*.pth"))
    return files[0] if files else None
