"""TransPose Studio desktop GUI (PySide6): a thin layer over core."""
