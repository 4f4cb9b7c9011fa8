"""Live sources that drop and come back: reopened with backoff, ids kept, the gap recorded; a source
gone for good ends the run with exit 1 and complete outputs. The last test streams over HTTP from a
real ffmpeg server on localhost, killed and restarted mid-run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from rtseg.capture.live import LiveSource, StreamLost

from conftest import DEMO_CONFIG, SHOWCASE


class Camera:
    """A capture that gives ``frames`` frames, then nothing (a stream that dropped)."""

    def __init__(self, frames: int, opened: bool = True) -> None:
        self.left, self.opened = frames, opened

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return self.opened

    def get(self, prop: int) -> float:
        return {cv2.CAP_PROP_FPS: 100.0, cv2.CAP_PROP_FRAME_WIDTH: 8, cv2.CAP_PROP_FRAME_HEIGHT: 6}.get(prop, 0.0)

    def read(self):
        if self.left <= 0:
            return False, None
        self.left -= 1
        time.sleep(0.01)
        return True, np.zeros((6, 8, 3), np.uint8)

    def release(self) -> None:
        pass


def test_a_dropped_source_is_reopened_and_the_gap_recorded():
    reopened = iter([Camera(0, opened=False), Camera(0, opened=False), Camera(5)])  # down twice, then back
    src = LiveSource(0, "flaky", max_failures=3, capture=Camera(5), reconnect=3,
                     reopen=lambda: next(reopened, None) or Camera(0, opened=False))
    with pytest.raises(StreamLost, match="flaky: no frame for 3 s"):
        with src:
            frames = []
            for f in src:
                frames.append(f)
    gaps = [f.gap for f in frames if f.gap]
    assert len(gaps) == 1 and gaps[0] >= 1.0  # backoff: 0.5 s, then 1 s, then it came back
    assert src.gaps[0][1] == gaps[0] and len(frames) >= 6


def test_a_slow_consumer_still_hears_of_the_gap():
    """The first frame after the gap is replaced by newer ones before a busy loop takes it (a live
    source keeps the newest frame only): the gap passes to the frame that is taken."""
    reopened = iter([Camera(20)])  # back once, then gone
    src = LiveSource(0, "flaky", max_failures=3, capture=Camera(3), reconnect=1,
                     reopen=lambda: next(reopened, None) or Camera(0, opened=False))
    frames = []
    with pytest.raises(StreamLost), src:
        for f in src:
            frames.append(f)
            time.sleep(0.08)  # 8 frames' time: several frames after the gap are dropped
    gaps = [f.gap for f in frames if f.gap]
    assert len(gaps) == 1 and gaps[0] > 0 and src.dropped > 0


def test_a_source_gone_for_good_ends_with_exit_code_1():
    src = LiveSource(0, "gone", max_failures=2, capture=Camera(3), reconnect=1.0,
                     reopen=lambda: Camera(0, opened=False))
    start = time.monotonic()
    with pytest.raises(StreamLost) as err, src:
        list(src)
    assert err.value.exit_code == 1 and "no frame for 1 s" in str(err.value)
    assert time.monotonic() - start < 5


def test_without_reconnect_a_drop_ends_at_once():
    from rtseg.errors import RtsegError

    src = LiveSource(0, "cam", max_failures=2, capture=Camera(2), reconnect=0)
    with pytest.raises(RtsegError, match="no frame for 2 reads"), src:
        list(src)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port (read from /proc: connecting would take ffmpeg's
    one client slot)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        if any(int(line.split()[1].split(":")[1], 16) == port and line.split()[3] == "0A" for line in lines):
            return True
    return False


def serve(video: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1",
                             "-i", str(video), "-c:v", "mpeg2video", "-q:v", "4", "-f", "mpegts", "-listen", "1",
                             f"http://127.0.0.1:{port}/live.ts"], stdin=subprocess.DEVNULL)
    end = time.monotonic() + 20
    while not listening(port):
        assert time.monotonic() < end and proc.poll() is None, "ffmpeg did not start listening"
        time.sleep(0.05)
    return proc


def lines_of(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines()]
    except FileNotFoundError:
        return []


def wait_for(predicate, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.1)


@pytest.mark.skipif(shutil.which("ffmpeg") is None and not os.environ.get("RTSEG_REQUIRE_FFMPEG"),
                    reason="ffmpeg not installed (apt-get install ffmpeg)")
def test_a_real_stream_killed_and_restarted(tmp_path):
    port = free_port()
    server = serve(SHOWCASE / "video.mp4", port)
    out = tmp_path / "tracks.jsonl"
    track = subprocess.Popen(
        [sys.executable, "-m", "rtseg.cli", "track", f"http://127.0.0.1:{port}/live.ts", "--config", str(DEMO_CONFIG),
         "--text", "the purple square", "--save-json", str(out), "--save-masks", str(tmp_path / "masks"),
         "--output", str(tmp_path / "overlay.mp4"), "--reconnect", "10", "--no-show", "--quiet"],
        stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(lines_of(out)) >= 15, 90)
        server.send_signal(signal.SIGKILL)
        server.wait()
        time.sleep(2)
        before = len(lines_of(out))
        server = serve(SHOWCASE / "video.mp4", port)
        wait_for(lambda: len(lines_of(out)) >= before + 15, 90)
        server.send_signal(signal.SIGKILL)  # gone for good
        server.wait()
        _, stderr = track.communicate(timeout=90)
    finally:
        track.kill()
        server.kill()
    assert track.returncode == 1, stderr
    assert "reconnecting for up to 10 s" in stderr and "reconnected after" in stderr and "stream lost" in stderr
    records = lines_of(out)  # every line whole
    gaps = [r for r in records if r.get("gap")]
    assert len(gaps) == 1 and gaps[0]["gap"] >= 2.0
    after = records.index(gaps[0])
    ids_before = {o["id"] for r in records[:after] for o in r["objects"]}
    ids_after = {o["id"] for r in records[after:] for o in r["objects"]}
    assert ids_before == ids_after == {1}  # the object kept its id across the gap
    for png in (tmp_path / "masks").glob("*.png"):
        assert cv2.imread(str(png), cv2.IMREAD_UNCHANGED) is not None
    video = cv2.VideoCapture(str(tmp_path / "overlay.mp4"))
    assert video.isOpened() and video.read()[0]  # finalised: it plays
