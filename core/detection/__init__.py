"""Person detectors: image -> Detections (x, y, w, h boxes and scores), for the pose stage."""
from .base import PersonDetector, box_iou, clip_boxes, nms
from .factory import create_detector

__all__ = ["PersonDetector", "box_iou", "clip_boxes", "create_detector", "nms",
           "BlazePoseDetector", "BlazePoseConfig", "HogDetector", "HogConfig", "YoloxDetector",
           "YoloxConfig", "fetch_yolox_nano"]


def __getattr__(name):  # the detectors load their runtimes lazily
    if name in ("BlazePoseDetector", "BlazePoseConfig"):
        from . import blazepose
        return getattr(blazepose, name)
    if name in ("HogDetector", "HogConfig"):
        from . import hog
        return getattr(hog, name)
    if name in ("YoloxDetector", "YoloxConfig", "fetch_yolox_nano"):
        from . import yolox
        return getattr(yolox, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
