"""Multi-person pose tracking (Hungarian on OKS + IoU, re-identification) and per-keypoint
temporal smoothing (Kalman, One-Euro). Pure NumPy/SciPy/filterpy; no Qt, no torch."""
from .smoothing import (SMOOTHING_KINDS, KalmanKeypointSmoother, KeypointSmoother, NoSmoother,
                        OneEuroSmoother, make_smoother)
from .tracker import PoseTracker, TrackerConfig, TrackInfo, box_iou, keypoint_oks

__all__ = ["SMOOTHING_KINDS", "KalmanKeypointSmoother", "KeypointSmoother", "NoSmoother",
           "OneEuroSmoother", "PoseTracker", "TrackInfo", "TrackerConfig", "box_iou",
           "keypoint_oks", "make_smoother"]
