"""User-facing errors: one clear message naming the file and the problem.

The CLI and the GUI catch `StudioError` and show its message; anything else is a bug.
"""
from __future__ import annotations


class StudioError(Exception):
    """An error caused by the user's input or environment, with a message meant for them."""


class CheckpointError(StudioError):
    """A weights file that cannot be loaded (missing, truncated, foreign, mismatched)."""


class InputError(StudioError):
    """An image, video or argument that cannot be used."""


class DownloadError(StudioError):
    """A model download that failed or cannot be made (offline, bad checksum)."""
