"""Sinks for pipeline results: keypoint tracks as CSV and JSON, and overlay videos.

Every sink writes to a temporary name beside the target and renames it only when
`close()` completes, so an interrupted run never leaves a file that looks finished.
"""
from .sinks import (ExportMetadata, KeypointCsvWriter, KeypointJsonWriter, OverlayVideoWriter,
                    PoseSink, SourceInfo, ModelInfo)

__all__ = ["ExportMetadata", "KeypointCsvWriter", "KeypointJsonWriter", "ModelInfo",
           "OverlayVideoWriter", "PoseSink", "SourceInfo"]
