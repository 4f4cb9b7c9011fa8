"""Frame sources: webcam, video file, image folder, single image, or stream URL.

A source is a context manager and an iterator of :class:`Frame`. Offline sources (files, folders)
yield every frame in order. Live sources (cameras, streams) are read by a background thread that
keeps only the newest frame, so a slow consumer skips stale frames instead of building up latency.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from rtseg.capture.base import Frame, Source, quiet_opencv
from rtseg.capture.live import LiveSource
from rtseg.errors import RtsegError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
STREAM_PREFIXES = ("rtsp://", "rtmp://", "http://", "https://", "udp://", "tcp://")


class VideoFileSource(Source):
    """Every frame of a video file, in order; a frame that cannot be decoded mid-file is an error."""

    def __init__(self, path: Path) -> None:
        self.name = str(path)
        with quiet_opencv():
            self.cap = cv2.VideoCapture(str(path))
        if not self.cap.isOpened():
            raise RtsegError(f"cannot open {path}: not a video file OpenCV can read")
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and fps > 0 else None
        self.frame_count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        with quiet_opencv():
            ok, first = self.cap.read()
        if not ok or first is None:
            self.cap.release()
            raise RtsegError(f"cannot read {path}: not a video file, or it has no frames")
        self._first: np.ndarray | None = first
        self.size = (first.shape[1], first.shape[0])

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while True:
            if self._first is not None:
                image, self._first = self._first, None
            else:
                ok, image = self.cap.read()
                if not ok or image is None:
                    if index < self.frame_count - 1:
                        raise RtsegError(f"{self.name}: frame {index} of {self.frame_count} cannot be decoded "
                                         f"(file truncated or corrupt)")
                    return
            yield Frame(index, index / (self.fps or 30.0), image)
            index += 1

    def close(self) -> None:
        self.cap.release()


class ImageFolderSource(Source):
    """The images of a folder in name order (or one image file)."""

    def __init__(self, files: list[Path], name: str) -> None:
        self.files, self.name = files, name
        self._first = self._read(files[0])
        self.size = (self._first.shape[1], self._first.shape[0])

    @staticmethod
    def _read(path: Path) -> np.ndarray:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise RtsegError(f"cannot read image {path}: corrupt or not an image")
        return image

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.files):
            image = self._first if index == 0 else self._read(path)
            yield Frame(index, float(index), image)


def open_source(spec: str | int, reconnect: float | None = None) -> Source:
    """Open a source: a camera index (``0``), a video file, an image folder, an image, or a stream URL.

    ``reconnect``: seconds a camera or stream that drops is reopened for (None: 30; files: unused)."""
    text = str(spec)
    again = 30.0 if reconnect is None else reconnect
    if text.isdigit():
        return LiveSource(int(text), f"camera {text}", reconnect=again)
    if text.lower().startswith(STREAM_PREFIXES):
        return LiveSource(text, text, reconnect=again)
    path = Path(text)
    if not path.exists():
        raise RtsegError(f"source not found: {text}")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise RtsegError(f"no images in folder {text} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
        return ImageFolderSource(files, text)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageFolderSource([path], text)
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise RtsegError(f"cannot read {text}: {exc.strerror}") from exc
    return VideoFileSource(path)

