"""Frame sources: webcam, video file, image folder, single image, or stream URL.

A source is a context manager and an iterator of :class:`Frame`. Offline sources (files, folders)
yield every frame in order. Live sources (cameras, streams) are read by a background thread that
keeps only the newest frame, so a slow consumer skips stale frames instead of building up latency.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from time import monotonic
from typing import Any, Iterator

import cv2
import numpy as np

from rtseg.errors import RtsegError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
STREAM_PREFIXES = ("rtsp://", "rtmp://", "http://", "https://", "udp://", "tcp://")


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """OpenCV prints several lines of warnings when a camera or file cannot be opened: we say it in one."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


@dataclass
class Frame:
    """One source frame: ``index`` counts source frames (live sources skip stale ones), ``time`` is
    the position in seconds (video time for files, wall time since opening for live sources),
    ``image`` is BGR (H, W, 3) uint8, ``read_at`` the ``time.monotonic()`` it was read (latency is
    measured from it), ``depth`` the (H, W) uint16 depth image registered to it, when there is one
    (:mod:`rtseg.capture.depth`; 0 = no depth)."""

    index: int
    time: float
    image: np.ndarray
    read_at: float = field(default_factory=monotonic)
    depth: np.ndarray | None = None


class Source:
    """Base class: ``with open_source(spec) as src: for frame in src: ...``."""

    live: bool = False
    fps: float | None = None
    name: str = ""
    size: tuple[int, int] | None = None  # (width, height), when known before the first frame

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        pass

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError


class VideoFileSource(Source):
    """Every frame of a video file, in order; a frame that cannot be decoded mid-file is an error."""

    def __init__(self, path: Path) -> None:
        self.name = str(path)
        with _quiet_opencv():
            self.cap = cv2.VideoCapture(str(path))
        if not self.cap.isOpened():
            raise RtsegError(f"cannot open {path}: not a video file OpenCV can read")
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and fps > 0 else None
        self.frame_count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        with _quiet_opencv():
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


class LiveSource(Source):
    """A camera or stream read on a background thread that keeps only the newest frame.

    When the newest frame is already old and the next one is due within ``fresh_wait`` of a frame
    interval, the consumer gets the next one instead: it waits that little (at most a quarter of an
    interval) and shows a frame that much younger. A loop about as fast as the camera otherwise
    takes frames that waited half an interval on average (up to a whole one).
    """

    live = True
    fresh_wait = 0.25  # of the frame interval (measured): 0 always takes the newest frame at once

    def __init__(self, target: int | str, name: str, max_failures: int = 50, capture: Any = None) -> None:
        self.name = name
        with _quiet_opencv():
            self.cap = capture if capture is not None else cv2.VideoCapture(target)
        if not self.cap.isOpened():
            what = f"camera {target}" if isinstance(target, int) else f"stream {target}"
            raise RtsegError(f"cannot open {what}: not connected, busy, or unreachable")
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 0 < fps < 1000 else None
        w, h = int(self.cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.size = (w, h) if w > 0 and h > 0 else None
        self.max_failures = max_failures
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._error: str | None = None
        self._stopped = False
        self.dropped = 0  # frames replaced by a newer one before anyone took them
        self.captured_at = 0.0  # monotonic time the newest frame was read
        self.interval = 0.0  # seconds between frames, a running mean of the reads
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._reader, name=f"capture {name}", daemon=True)
        self._thread.start()

    def _reader(self) -> None:
        index, failures = 0, 0
        while not self._stopped:
            ok, image = self.cap.read()
            if not ok or image is None:
                failures += 1
                if failures >= self.max_failures:
                    with self._cond:
                        self._error = f"{self.name}: no frame for {failures} reads in a row (stream ended or lost)"
                        self._cond.notify_all()
                    return
                time.sleep(0.01)
                continue
            failures = 0
            with self._cond:
                if self._latest is not None:
                    self.dropped += 1
                now = time.monotonic()
                if self.captured_at:
                    gap = now - self.captured_at
                    self.interval = gap if not self.interval else 0.9 * self.interval + 0.1 * gap
                self._latest = Frame(index, now - self._start, image, read_at=now)
                self.captured_at = now
                self._cond.notify_all()
            index += 1

    def _moved_on(self, frame: Frame) -> bool:
        """A newer frame than ``frame`` came in, or the source ended."""
        return self._latest is not frame or self._error is not None or self._stopped

    def __iter__(self) -> Iterator[Frame]:
        while True:
            with self._cond:
                while self._latest is None and self._error is None and not self._stopped:
                    self._cond.wait(0.5)
                if self._latest is None:
                    if self._error:
                        raise RtsegError(self._error)
                    return
                frame = self._latest
                due = self.interval - (time.monotonic() - frame.read_at)  # until the next frame
                if 0 < due <= self.fresh_wait * self.interval:
                    self._cond.wait_for(functools.partial(self._moved_on, frame), timeout=due + 0.1 * self.interval)
                    frame = self._latest or frame
                self._latest = None
            yield frame

    def close(self) -> None:
        self._stopped = True
        self._thread.join(timeout=2)
        self.cap.release()


def open_source(spec: str | int) -> Source:
    """Open a source: a camera index (``0``), a video file, an image folder, an image, or a stream URL."""
    text = str(spec)
    if text.isdigit():
        return LiveSource(int(text), f"camera {text}")
    if text.lower().startswith(STREAM_PREFIXES):
        return LiveSource(text, text)
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

