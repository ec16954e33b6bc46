"""Where frames come from: video files, image folders, single images and live cameras."""
from .sources import (
    CameraConfig,
    CameraSource,
    FrameSource,
    ImageFolderSource,
    IMAGE_EXTENSIONS,
    Orientation,
    SingleImageSource,
    VideoFileConfig,
    VideoFileSource,
    is_camera_spec,
    list_cameras,
    natural_key,
    open_source,
)

__all__ = [
    "CameraConfig", "CameraSource", "FrameSource", "IMAGE_EXTENSIONS", "ImageFolderSource",
    "Orientation", "SingleImageSource", "VideoFileConfig", "VideoFileSource", "is_camera_spec",
    "list_cameras", "natural_key", "open_source",
]
