"""What every source yields: :class:`Frame`; and the :class:`Source` protocol (a context manager and
an iterator of frames)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from time import monotonic
from typing import Iterator

import cv2
import numpy as np


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
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
    gap: float = 0.0  # seconds a live source delivered nothing before this frame (it dropped and came back)


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
