"""Where frames come from: video files, image folders, single images and live cameras."""
from .base import IMAGE_EXTENSIONS, FrameSource, natural_key
from .camera import CameraConfig, CameraSource, is_camera_spec, list_cameras
from .file import Orientation, VideoFileConfig, VideoFileSource
from .images import ImageFolderSource, SingleImageSource
from .inputs import folder_inputs, open_source

__all__ = [
    "CameraConfig", "CameraSource", "FrameSource", "IMAGE_EXTENSIONS", "ImageFolderSource",
    "folder_inputs",
    "Orientation", "SingleImageSource", "VideoFileConfig", "VideoFileSource", "is_camera_spec",
    "list_cameras", "natural_key", "open_source",
]
