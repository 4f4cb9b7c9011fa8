"""Live sources: a camera or a stream, read on a background thread that keeps only the newest frame
(a slow consumer skips stale frames instead of building up latency), and reopened when it drops.

A stream or camera that stops delivering frames is reopened with backoff (0.5 s, doubling up to
5 s) for up to ``reconnect`` seconds. The first frame after the gap carries the gap's length
(``Frame.gap``), and the gap is logged; the tracker sees the objects again as after an occlusion,
so they keep their ids. After ``reconnect`` seconds without a frame the source ends with
:class:`StreamLost` (exit code 1: outputs are complete, the stream is gone).
"""

from __future__ import annotations

import functools
import threading
import time
from typing import Any, Callable, Iterator

import cv2

from rtseg.capture.base import Frame, Source, quiet_opencv
from rtseg.errors import RtsegError, warn

NETWORK_TIMEOUT_MS = 5000  # an FFmpeg open or read of a dead stream gives up after this, not minutes


class StreamLost(RtsegError):
    """A live source gave no frame for longer than it may reconnect."""

    exit_code = 1


def open_capture(target: int | str) -> Any:
    """``cv2.VideoCapture`` of a camera index or a stream URL, with network timeouts for streams."""
    with quiet_opencv():
        if isinstance(target, str):
            return cv2.VideoCapture(target, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, NETWORK_TIMEOUT_MS,
                                                             cv2.CAP_PROP_READ_TIMEOUT_MSEC, NETWORK_TIMEOUT_MS])
        return cv2.VideoCapture(target)


class LiveSource(Source):
    """A camera or stream read on a background thread that keeps only the newest frame.

    When the newest frame is already old and the next one is due within ``fresh_wait`` of a frame
    interval, the consumer gets the next one instead: it waits that little (at most a quarter of an
    interval) and shows a frame that much younger. A loop about as fast as the camera otherwise
    takes frames that waited half an interval on average (up to a whole one).

    Args:
        target: camera index or stream URL.
        name: for messages.
        max_failures: failed reads in a row that count as the source dropping.
        capture: an open capture to read (tests, replays); by default ``open_capture(target)``.
        reconnect: seconds to keep reopening a source that dropped (0: end at once).
        reopen: makes a new capture when reconnecting (default: ``open_capture(target)``).
        clock, sleep: the time source and the pause between reads and reopens (default: ``time.monotonic``
            and ``time.sleep``; tests pass a simulated clock).
    """

    live = True
    fresh_wait = 0.25  # of the frame interval (measured): 0 always takes the newest frame at once

    def __init__(self, target: int | str, name: str, max_failures: int = 50, capture: Any = None,
                 reconnect: float = 0.0, reopen: Callable[[], Any] | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.name, self.reconnect = name, reconnect
        self.clock, self.sleep = clock, sleep
        self.reopen = reopen or functools.partial(open_capture, target)
        self.cap = capture if capture is not None else open_capture(target)
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
        self._error: RtsegError | None = None
        self._stopped = False
        self.dropped = 0  # frames replaced by a newer one before anyone took them
        self.gaps: list[tuple[int, float]] = []  # (frame index after the gap, seconds without frames)
        self.captured_at = 0.0  # monotonic time the newest frame was read
        self.interval = 0.0  # seconds between frames, a running mean of the reads
        self._start = self.clock()
        self._thread = threading.Thread(target=self._reader, name=f"capture {name}", daemon=True)
        self._thread.start()

    def _reader(self) -> None:
        try:
            self._read_frames()
        except Exception as exc:  # a capture that raises: the consumer must hear of it, not wait for ever
            self._fail(RtsegError(f"{self.name}: {type(exc).__name__}: {exc}".splitlines()[0]))

    def _read_frames(self) -> None:
        index, failures, gap = 0, 0, 0.0
        while not self._stopped:
            ok, image = self.cap.read()
            if not ok or image is None:
                failures += 1
                if failures < self.max_failures:
                    self.sleep(0.01)
                    continue
                back = self._reopen(index, failures)
                if back is None:
                    return
                gap, failures = back, 0
                continue
            failures = 0
            with self._cond:
                if self._latest is not None:  # not taken: dropped, but a gap it carried passes to this frame
                    self.dropped += 1
                    gap = max(gap, self._latest.gap)
                now = self.clock()
                if self.captured_at and not gap:
                    step = now - self.captured_at
                    self.interval = step if not self.interval else 0.9 * self.interval + 0.1 * step
                self._latest = Frame(index, now - self._start, image, read_at=now, gap=gap)
                self.captured_at = now
                self._cond.notify_all()
            index, gap = index + 1, 0.0

    def _reopen(self, index: int, failures: int) -> float | None:
        """The source dropped before frame ``index``: reopen it for up to ``reconnect`` seconds.
        Returns the seconds since the last frame once it delivers again, None when it ends."""
        lost = self.captured_at or self.clock()
        if self.reconnect <= 0:
            self._fail(RtsegError(f"{self.name}: no frame for {failures} reads in a row (stream ended or lost)"))
            return None
        warn(f"{self.name}: no frame since frame {index}; reconnecting for up to {self.reconnect:g} s")
        self.cap.release()
        delay = 0.5
        while not self._stopped and self.clock() - lost < self.reconnect:
            cap = self.reopen()
            if cap.isOpened():
                self.cap = cap
                gap = self.clock() - lost
                self.gaps.append((index, gap))
                warn(f"{self.name}: reconnected after {gap:.1f} s")
                return gap
            cap.release()
            self.sleep(min(delay, max(self.reconnect - (self.clock() - lost), 0)))
            delay = min(2 * delay, 5.0)
        self._fail(StreamLost(f"{self.name}: no frame for {self.reconnect:g} s since frame {index} "
                              f"(stream lost; outputs written so far are complete)"))
        return None

    def _fail(self, error: RtsegError) -> None:
        with self._cond:
            self._error = error
            self._cond.notify_all()

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
                        raise self._error
                    return
                frame = self._latest
                due = self.interval - (self.clock() - frame.read_at)  # until the next frame
                if 0 < due <= self.fresh_wait * self.interval:
                    self._cond.wait_for(functools.partial(self._moved_on, frame), timeout=due + 0.1 * self.interval)
                    frame = self._latest or frame
                self._latest = None
            yield frame

    def close(self) -> None:
        self._stopped = True
        self._thread.join(timeout=2)
        self.cap.release()
