"""Small helpers shared by the commands."""
from __future__ import annotations

import sys


def log(message: str) -> None:
    """Progress and status go to stderr so stdout stays clean for results."""
    print(message, file=sys.stderr, flush=True)


