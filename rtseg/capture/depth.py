"""Depth beside colour: a depth camera's images, paired with the colour source's frames by index.

Depth comes as

- a folder of 16-bit single-channel PNGs (or TIFFs), one per colour frame, in name order (the
  RealSense and ROS convention: ``depth/00000.png``, ... in millimetres), or
- a 16-bit video OpenCV decodes without conversion (``cv2.CAP_PROP_CONVERT_RGB`` off), such as FFV1
  ``gray16le`` in a ``.mkv``; its first channel is the depth. An 8-bit video is refused: 256 levels
  are no depth map.

Values are in units of ``camera.depth_scale`` metres (:class:`~rtseg.config.CameraConfig`), 0 = no
depth, and the images are registered to the colour frames (same size, pixel for pixel). Only files:
a live source's frames are skipped when the model is slower, so there is no index to pair by.

>>> import tempfile, cv2
>>> from rtseg.capture.replay import Replay
>>> folder = Path(tempfile.mkdtemp())
>>> for i in range(2):
...     _ = cv2.imwrite(str(folder / f"{i:05d}.png"), np.full((4, 6), 1000 + i, np.uint16))
>>> colour = Replay([np.zeros((4, 6, 3), np.uint8)], fps=30, frames=2)
>>> [int(f.depth[0, 0]) for f in with_depth(colour, folder)]
[1000, 1001]
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Protocol

import cv2
import numpy as np

from rtseg.capture.base import Frame, Source, quiet_opencv
from rtseg.errors import RtsegError

DEPTH_SUFFIXES = {".png", ".tif", ".tiff"}


class DepthFrames(Protocol):
    """Depth images by colour frame index (asked for in order, from 0)."""

    name: str

    def read(self, index: int) -> tuple[np.ndarray, str]:
        """The (H, W) uint16 depth image of frame ``index`` and what it was read from (for messages)."""
        ...

    def close(self) -> None:
        ...


def _depth_image(image: np.ndarray | None, where: str) -> np.ndarray:
    """``image`` as (H, W) uint16 (the first channel of several), or an RtsegError naming ``where``."""
    if image is None:
        raise RtsegError(f"cannot read depth image {where}: corrupt or not an image")
    if image.dtype != np.uint16:
        raise RtsegError(f"depth image {where} is {image.dtype}, not 16-bit: save depth as 16-bit PNGs")
    return image if image.ndim == 2 else image[..., 0]


class DepthFolder:
    """The 16-bit images of a folder in name order: image k is the depth of colour frame k."""

    def __init__(self, folder: Path) -> None:
        self.name = str(folder)
        self.files = sorted(p for p in folder.iterdir() if p.suffix.lower() in DEPTH_SUFFIXES)
        if not self.files:
            raise RtsegError(f"no depth images in folder {folder} (looked for {', '.join(sorted(DEPTH_SUFFIXES))})")

    def read(self, index: int) -> tuple[np.ndarray, str]:
        if index >= len(self.files):
            raise RtsegError(f"no depth image for frame {index}: {self.name} has only {len(self.files)}")
        path = self.files[index]
        return _depth_image(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), str(path)), str(path)

    def close(self) -> None:
        pass


class DepthVideo:
    """A 16-bit video decoded as is: frame k is the depth of colour frame k (read in order)."""

    def __init__(self, path: Path) -> None:
        self.name, self.next = str(path), 0
        with quiet_opencv():  # OpenCV warns that it returns frames unconverted: that is what is wanted
            self.cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_CONVERT_RGB, 0])
        if not self.cap.isOpened():
            raise RtsegError(f"cannot open depth video {path}: not a video file OpenCV can read")

    def read(self, index: int) -> tuple[np.ndarray, str]:
        where = f"{self.name} frame {index}"
        if index != self.next:
            raise RtsegError(f"{where}: a depth video is read in order (next is frame {self.next})")
        ok, image = self.cap.read()
        if not ok or image is None:
            raise RtsegError(f"no depth image for frame {index}: {self.name} ends after {index} frames")
        self.next += 1
        if image.dtype != np.uint16:
            raise RtsegError(f"{self.name} is an {image.dtype} video, not 16-bit depth: "
                             f"save depth as 16-bit PNGs or a 16-bit video (FFV1 gray16le)")
        return _depth_image(image, where), where

    def close(self) -> None:
        self.cap.release()


def open_depth(spec: str | Path) -> DepthFrames:
    """A folder of 16-bit images or a 16-bit video, as depth frames by index."""
    path = Path(spec)
    if not path.exists():
        raise RtsegError(f"depth not found: {spec}")
    return DepthFolder(path) if path.is_dir() else DepthVideo(path)


class DepthSource(Source):
    """``source``'s frames, each with the depth image of the same index attached (``Frame.depth``).

    The source is owned: closing this closes it. A depth image that is missing, unreadable or not the
    colour frame's size is an RtsegError at that frame (the first one when the colour size is known
    up front), naming the file."""

    def __init__(self, source: Source, depth: DepthFrames) -> None:
        _refuse_live(source)
        self.source, self.depth = source, depth
        self.live, self.fps, self.name, self.size = source.live, source.fps, source.name, source.size
        self._first: tuple[np.ndarray, str] | None = None
        if source.size is not None:  # say it before any model is loaded
            self._first = self._checked(0, source.size)

    def _checked(self, index: int, size: tuple[int, int]) -> tuple[np.ndarray, str]:
        """Depth image ``index`` and where it came from; an RtsegError unless it is ``size`` (w, h)."""
        depth, where = self.depth.read(index)
        if depth.shape[::-1] != tuple(size):
            raise RtsegError(f"depth image {where} is {depth.shape[1]}x{depth.shape[0]}, the colour frame "
                             f"{size[0]}x{size[1]}: depth must be registered to the colour camera")
        return depth, where

    def __iter__(self) -> Iterator[Frame]:
        for frame in self.source:
            size = (frame.image.shape[1], frame.image.shape[0])
            if frame.index == 0 and self._first is not None and self._first[0].shape[::-1] == size:
                frame.depth, self._first = self._first[0], None
            else:
                frame.depth = self._checked(frame.index, size)[0]
            yield frame

    def close(self) -> None:
        try:
            self.source.close()
        finally:
            self.depth.close()


def _refuse_live(source: Source) -> None:
    if source.live:
        raise RtsegError(f"depth is read from files only, and {source.name} is live (a camera or stream): "
                         f"record colour and depth to files first")


def with_depth(source: Source, depth: str | Path | None) -> Source:
    """``source`` with each frame's depth image from ``depth`` (a folder of 16-bit images or a
    16-bit video; see the module docstring); ``source`` itself when ``depth`` is None.

    The returned source owns ``source``: closing it closes both, and on an error ``source`` is closed.

    Raises:
        RtsegError: ``source`` is live, or ``depth`` is not there, not readable as depth, or its
            first image is not the size of ``source``'s frames.
    """
    if depth is None:
        return source
    frames: DepthFrames | None = None
    try:
        _refuse_live(source)
        frames = open_depth(depth)
        return DepthSource(source, frames)
    except BaseException:
        source.close()
        if frames is not None:
            frames.close()
        raise
