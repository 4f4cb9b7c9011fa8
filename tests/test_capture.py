"""Sources: files keep every frame in order; live sources keep only the newest frame."""

from __future__ import annotations

import queue
import threading
import time

import cv2
import numpy as np
import pytest

from rtseg.capture.live import LiveSource
from rtseg.capture.sources import open_source
from rtseg.errors import RtsegError

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


def test_live_source_drops_stale_frames_instead_of_queueing():
    camera = FakeCamera(fps=60)
    with LiveSource(0, "fake camera", capture=camera) as src:
        assert src.size == (8, 4) and src.live
        got, ages = [], []
        for frame in src:
            ages.append(time.monotonic() - src.captured_at)
            got.append(frame.index)
            time.sleep(0.05)  # a consumer three times slower than the camera
            if len(got) == 15:
                break
        assert got == sorted(got) and got[-1] - got[0] > 30  # it skipped ahead
        assert src.dropped > 20
        # Each frame handed over was the newest one: never older than one camera period.
        assert np.median(ages) < camera.period * 1.5


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


@pytest.mark.parametrize("fresh_wait,arrives,expect", [(0.25, True, 2), (0.0, True, 1), (0.25, False, 1)])
def test_live_source_waits_briefly_for_a_frame_due_now(monkeypatch, fresh_wait, arrives, expect):
    monkeypatch.setattr(LiveSource, "fresh_wait", fresh_wait)
    camera = ManualCamera()
    with LiveSource(0, "manual camera", capture=camera) as src:
        frames = iter(src)
        camera.queue.put(0)
        assert next(frames).index == 0
        camera.queue.put(1)
        while src.captured_at == 0 or src._latest is None:
            time.sleep(0.005)
        # Frame 1 is 1.7 s old and frames come every 2 s: the next is due in 0.3 s, within a quarter
        # of the interval. Frame 2 comes 0.05 s later (or not at all).
        src.interval, src._latest.read_at = 2.0, time.monotonic() - 1.7
        if arrives:
            threading.Timer(0.05, camera.queue.put, (2,)).start()
        start = time.monotonic()
        assert next(frames).index == expect
        if not arrives:  # it gave up at the due time plus a tenth of the interval
            assert 0.3 < time.monotonic() - start < 1.5


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
