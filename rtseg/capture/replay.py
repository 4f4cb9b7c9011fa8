"""Sources that replay frames already in memory: for benchmarks, soak runs and tests.

:class:`Replay` is an offline source (every frame, in order, looped to any length).
:class:`ReplayCamera` stands in for ``cv2.VideoCapture`` inside a
:class:`~rtseg.capture.sources.LiveSource`: it hands frames out at their real rate, as a camera does.

>>> import numpy as np
>>> frames = [np.zeros((4, 6, 3), np.uint8), np.ones((4, 6, 3), np.uint8)]
>>> [(f.index, int(f.image[0, 0, 0])) for f in Replay(frames, fps=10, frames=3)]
[(0, 0), (1, 1), (2, 0)]
"""

from __future__ import annotations

import time
from typing import Callable, Iterator

import cv2
import numpy as np

from rtseg.capture.sources import Frame, Source


class Replay(Source):
    """The sample's frames as a source: once or looped (``frames`` in all), every frame in order;
    ``on_frame(index)`` is called as each is handed over."""

    def __init__(self, images: list[np.ndarray], fps: float, frames: int, name: str = "replay",
                 on_frame: Callable[[int], None] | None = None) -> None:
        self.images, self.total, self.name, self.on_frame = images, frames, name, on_frame
        self.rate = self.fps = fps
        self.size = (images[0].shape[1], images[0].shape[0])

    def __iter__(self) -> Iterator[Frame]:
        for i in range(self.total):
            if self.on_frame is not None:
                self.on_frame(i)
            yield Frame(i, i / self.rate, self.images[i % len(self.images)])


class ReplayCamera:
    """A camera (the ``cv2.VideoCapture`` calls LiveSource makes) playing frames at their real rate."""

    def __init__(self, images: list[np.ndarray], fps: float) -> None:
        self.images, self.fps, self.k = images, fps, 0
        self.start = time.monotonic()

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return True

    def get(self, prop: int) -> float:
        h, w = self.images[0].shape[:2]
        return {cv2.CAP_PROP_FPS: self.fps, cv2.CAP_PROP_FRAME_WIDTH: w, cv2.CAP_PROP_FRAME_HEIGHT: h}.get(prop, 0.0)

    def read(self) -> tuple[bool, np.ndarray | None]:
        due = self.start + self.k / self.fps
        time.sleep(max(0.0, due - time.monotonic()))
        self.k += 1
        return True, self.images[(self.k - 1) % len(self.images)]

    def release(self) -> None:
        pass
