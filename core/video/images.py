"""Images as frame sources: every image in a folder (an image sequence), or one image."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io_utils import read_image
from ..types import Frame
from .base import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, FrameSource, _visible_files


class _ImageListSource(FrameSource):
    """A fixed list of image files, read one at a time (seekable)."""

    def __init__(self, files: list[Path], name: str, fps: float | None) -> None:
        super().__init__(name)
        if fps is not None and fps <= 0:
            raise InputError(f"{name}: fps must be positive, got {fps}")
        self.files = files
        self._fps = fps
        self._next = 0
        self._first: tuple[int, np.ndarray] | None = None
        if len(files) == 1:
            image = read_image(files[0])          # one image: unreadable is an error
            self._first = (0, image)
        else:
            for i, f in enumerate(files):         # a sequence: the first readable sets the size
                try:
                    self._first = (i, read_image(f))
                    break
                except InputError:
                    continue
            if self._first is None:
                raise InputError(f"{name}: none of its {len(files)} images can be decoded "
                                 f"(e.g. {files[0].name}: empty, corrupt or another format)")
        self._size_hw = Frame(0, 0.0, self._first[1]).size_hw

    @property
    def fps(self) -> float | None:
        return self._fps

    @property
    def frame_count(self) -> int:
        return len(self.files)

    @property
    def size_hw(self) -> tuple[int, int]:
        """Size of the first image (later images may differ)."""
        return self._size_hw

    def time_of(self, index: int) -> float:
        # Without an fps, one "second" per image: strictly increasing times, which trackers and
        # smoothers need, and the time reads as the image number.
        return index / self._fps if self._fps else float(index)

    def _read_next(self) -> Frame | None:
        """The next readable image; an unreadable one in a sequence is skipped with a
        warning and listed in `skipped_frames` (the other frames keep their indices)."""
        while self._next < len(self.files):
            i = self._next
            self._next += 1
            if self._first is not None and self._first[0] == i:
                image = self._first[1]
                self._first = None
                return Frame(index=i, time_s=self.time_of(i), image=image)
            try:
                image = read_image(self.files[i])
            except InputError as e:
                if len(self.files) == 1:
                    raise
                if all(f["frame"] != i for f in self.skipped_frames):
                    reason = str(e).split(": ", 1)[-1]
                    self.skipped_frames.append({"frame": i, "file": self.files[i].name,
                                                "reason": reason})
                    self._warn(f"{self.name}: skipped frame {i} ({self.files[i].name}: "
                               f"{reason})")
                continue
            return Frame(index=i, time_s=self.time_of(i), image=image)
        return None

    def _seek(self, index: int) -> None:
        self._next = index
        self._first = None

    def _release(self) -> None:
        pass


class ImageFolderSource(_ImageListSource):
    """Every image in a folder (not recursive), in natural order: img2 before img10."""

    def __init__(self, folder: str | Path, fps: float | None = None) -> None:
        folder = Path(folder)
        if not folder.exists():
            raise InputError(f"{folder}: no such folder")
        if not folder.is_dir():
            raise InputError(f"{folder}: is not a folder")
        files = _visible_files(folder, IMAGE_EXTENSIONS)
        if not files:
            videos = _visible_files(folder, VIDEO_EXTENSIONS)
            if videos:
                raise InputError(f"{folder}: holds {len(videos)} video(s), not an image "
                                 f"sequence; open the videos themselves (main.py annotate "
                                 f"takes a folder's videos)")
            raise InputError(f"{folder}: contains no images "
                             f"({', '.join(sorted(IMAGE_EXTENSIONS))}) and no videos")
        self.folder = folder
        super().__init__(files, folder.name or str(folder), fps)


class SingleImageSource(_ImageListSource):
    """One image as a one-frame source."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        super().__init__([path], path.name, None)
        self.path = path
