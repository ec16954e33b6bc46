"""From what the user names to sources: `open_source` for one input (camera, image folder,
image or video file) and `folder_inputs` for what a folder argument stands for."""
from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..io_utils import log
from .base import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, FrameSource, _visible_files, natural_key
from .camera import CameraSource, is_camera_spec
from .file import VideoFileSource
from .images import ImageFolderSource, SingleImageSource


def folder_inputs(folder: str | Path, recursive: bool = False) -> list[Path]:
    """The inputs a folder argument stands for: the videos in it (in natural order; with
    `recursive`, those in its subfolders too, folder by folder); a folder with no video
    but images is one image sequence (the folder itself); with `recursive`, so is every
    subfolder that holds images and no video. InputError when there is nothing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder")
    found: list[Path] = []

    def visit(d: Path, top: bool) -> None:
        videos = _visible_files(d, VIDEO_EXTENSIONS)
        if videos:
            found.extend(videos)
            images = _visible_files(d, IMAGE_EXTENSIONS)
            if images:                   # (said, not dropped in silence)
                log(f"note: {d}: the {len(images)} image(s) beside its videos are not "
                    f"annotated (a folder of only images is an image sequence; give the "
                    f"images themselves, or a folder of them)")
        elif _visible_files(d, IMAGE_EXTENSIONS) and (top or recursive):
            found.append(d)
        if recursive:
            subs = sorted((c for c in d.iterdir() if c.is_dir() and not c.name.startswith(".")),
                          key=lambda c: natural_key(c.name))
            for sub in subs:
                visit(sub, False)
    try:
        visit(folder, True)
    except OSError as e:
        raise InputError(f"{folder}: cannot be listed ({e.strerror or e})") from None
    if not found:
        where = " or its subfolders" if recursive else ""
        hint = "" if recursive else " (--recursive looks in subfolders)"
        raise InputError(f"{folder}: contains no videos ({', '.join(sorted(VIDEO_EXTENSIONS))}) "
                         f"and no images{where}{hint}")
    return found


def open_source(spec: str | Path) -> FrameSource:
    """camera:N or /dev/videoN -> camera; a folder -> its images; an image -> one frame;
    anything else -> a video file."""
    if is_camera_spec(spec):
        return CameraSource(str(spec))
    path = Path(spec)
    if path.is_dir():
        return ImageFolderSource(path)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return SingleImageSource(path)
    return VideoFileSource(path)
