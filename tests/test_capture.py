"""Sources: files keep every frame in order; live sources keep only the newest frame."""

from __future__ import annotations

import functools
import queue
import threading
import time

import cv2
import numpy as np
import pytest

from rtseg.capture.live import LiveSource
from rtseg.capture.sources import open_source
from rtseg.errors import RtsegError

import conftest
from conftest import SHOWCASE


class FakeCamera:
    """A camera delivering frames in real time at ``fps``, each stamped with its number."""

    def __init__(self, fps: float = 60.0, frames: int = 10_000) -> None:
        self.period, self.frames, self.n, self.start = 1 / fps, frames, 0, time.monotonic()

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return True

    def get(self, prop: int) -> float:
        known = {cv2.CAP_PROP_FPS: 1 / self.period, cv2.CAP_PROP_FRAME_WIDTH: 8, cv2.CAP_PROP_FRAME_HEIGHT: 4}
        return known.get(prop, 0)

    def read(self):
        if self.n >= self.frames:
            return False, None
        time.sleep(max(0.0, self.start + (self.n + 1) * self.period - time.monotonic()))
        image = np.full((4, 8, 3), self.n % 256, np.uint8)
        self.n += 1
        return True, image

    def release(self) -> None:
        pass


DEADLINE = 120.0  # seconds: only bounds a hang; no test decides on the clock


wait_until = functools.partial(conftest.wait_until, timeout=DEADLINE, poll=0.002)


class ManualCamera(FakeCamera):
    """A camera whose frames come when the test puts them (a failed read every 50 ms meanwhile)."""

    def __init__(self) -> None:
        super().__init__()
        self.queue: queue.Queue[int] = queue.Queue()

    def read(self):
        try:
            n = self.queue.get(timeout=0.05)
        except queue.Empty:
            return False, None
        return True, np.full((4, 8, 3), n, np.uint8)


def test_live_source_drops_stale_frames_instead_of_queueing():
    """A consumer three times slower than the camera: three frames come for each one it takes, and it
    is handed the newest each time (lag 0 frames), the two older ones dropped."""
    camera = ManualCamera()
    with LiveSource(0, "fake camera", capture=camera, max_failures=10**9) as src:
        assert src.size == (8, 4) and src.live
        frames = iter(src)
        got, n = [], 0

        def handled(n: int) -> bool:  # each of the n frames was handed over, dropped, or is the one waiting
            with src._cond:
                return len(got) + src.dropped + (src._latest is not None) == n

        while len(got) < 15:
            for _ in range(3):
                camera.queue.put(n)
                n += 1
            wait_until(lambda n=n: handled(n), f"frames up to {n - 1} read")
            frame = next(frames)
            # Each frame handed over was the newest one the camera had delivered.
            assert frame.index == n - 1 and int(frame.image[0, 0, 0]) == (n - 1) % 256, (frame.index, n)
            got.append(frame.index)
        assert got == sorted(got) and got[-1] - got[0] > 30  # it skipped ahead
        assert src.dropped > 20 and src.dropped == n - len(got)  # every frame not handed over was dropped


class FrozenClock:
    """A clock that stands still (a frame is as old as the test says); ``on_look`` runs once, when the
    consumer's thread next reads it (the consumer holds the source's lock then: a frame the camera
    delivers meanwhile is stored only once the consumer waits, or has taken the frame it had)."""

    def __init__(self) -> None:
        self.now, self.on_look, self.consumer = 1000.0, None, threading.current_thread()

    def __call__(self) -> float:
        if self.on_look is not None and threading.current_thread() is self.consumer:
            look, self.on_look = self.on_look, None
            look()
        return self.now


class RecordingCondition:
    """The source's condition, recording the timeout of each wait for a newer frame."""

    def __init__(self, cond: threading.Condition) -> None:
        self.cond, self.timeouts = cond, []

    def __enter__(self):
        return self.cond.__enter__()

    def __exit__(self, *exc):
        return self.cond.__exit__(*exc)

    def wait(self, timeout=None):
        return self.cond.wait(timeout)

    def wait_for(self, predicate, timeout=None):
        self.timeouts.append(timeout)
        return self.cond.wait_for(predicate, timeout)

    def notify_all(self) -> None:
        self.cond.notify_all()


@pytest.mark.parametrize("fresh_wait,arrives,expect", [(0.25, True, 2), (0.0, True, 1), (0.25, False, 1)])
def test_live_source_waits_briefly_for_a_frame_due_now(monkeypatch, fresh_wait, arrives, expect):
    monkeypatch.setattr(LiveSource, "fresh_wait", fresh_wait)
    camera, clock = ManualCamera(), FrozenClock()
    with LiveSource(0, "manual camera", capture=camera, max_failures=10**9, clock=clock) as src:
        frames = iter(src)
        camera.queue.put(0)
        assert next(frames).index == 0
        camera.queue.put(1)
        wait_until(lambda: src._latest is not None, "frame 1 read")
        # Frame 1 is 85% of the interval old: the next is due within a quarter of the interval. When it
        # arrives, it comes as the consumer looks at the clock (the interval is long, so that the wait,
        # in real time, only bounds a hang); else the interval is 2 s (1.7 s old, due in 0.3 s).
        interval = 200.0 if arrives else 2.0
        src.interval, src._latest.read_at = interval, clock.now - 0.85 * interval
        src._cond = recording = RecordingCondition(src._cond)
        if arrives:
            clock.on_look = lambda: camera.queue.put(2)
        start = time.monotonic()
        assert next(frames).index == expect
        if fresh_wait == 0:  # it took the newest frame at once, not waiting for the one due
            assert recording.timeouts == []
        else:  # it waited for the frame due, up to the due time plus a tenth of the interval
            assert recording.timeouts == [pytest.approx(0.15 * interval + 0.1 * interval)]
        if not arrives:  # and gave up then
            assert time.monotonic() - start >= 0.25 * interval


def test_live_source_reports_a_lost_stream():
    with LiveSource(0, "fake camera", capture=FakeCamera(frames=3), max_failures=3) as src:
        with pytest.raises(RtsegError, match="no frame for 3 reads"):
            for _ in src:
                pass


def test_files_keep_every_frame_in_order():
    with open_source(str(SHOWCASE / "video.mp4")) as src:
        assert not src.live and src.size == (640, 480) and src.fps == pytest.approx(30)
        indexes = [f.index for f in src]
    assert indexes == list(range(300))


def test_image_folder_order(tmp_path):
    for name in ("b.png", "a.jpg", "c.bmp", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    img = np.zeros((5, 7, 3), np.uint8)
    for name in ("b.png", "a.jpg", "c.bmp"):
        cv2.imwrite(str(tmp_path / name), img)
    with open_source(str(tmp_path)) as src:
        frames = list(src)
    assert [f.index for f in frames] == [0, 1, 2] and src.size == (7, 5)
