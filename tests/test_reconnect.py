"""Live sources that drop and come back: reopened with backoff, ids kept, the gap recorded; a source
gone for good ends the run with exit 1 and complete outputs. The last test streams over HTTP from a
real ffmpeg server on localhost, killed and restarted mid-run (through a relay that holds the stream's
port). Time in the others is simulated: backoffs and windows are exact on a machine however busy."""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from rtseg.capture.live import LiveSource, StreamLost

import conftest
from conftest import DEMO_CONFIG, SHOWCASE


DEADLINE = 120.0  # seconds: only bounds a hang; no test decides on the clock


wait_until = functools.partial(conftest.wait_until, timeout=DEADLINE, poll=0.01)


class SimulatedClock:
    """Time for a LiveSource that passes only as it sleeps: its backoff and reconnect window are
    exact, however slowly this machine runs it (its waits in real time only bound a hang)."""

    def __init__(self) -> None:
        self.now, self.lock = 1000.0, threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        with self.lock:
            self.now += seconds
            assert self.now < 1e6, "still sleeping after 11 simulated days"  # a source that never gives up
        time.sleep(0)  # let the other threads run


class Camera:
    """A capture that gives ``frames`` frames, 10 ms apart, then nothing (a stream that dropped)."""

    def __init__(self, frames: int, opened: bool = True, clock: SimulatedClock | None = None) -> None:
        self.left, self.opened, self.clock = frames, opened, clock

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return self.opened

    def get(self, prop: int) -> float:
        return {cv2.CAP_PROP_FPS: 100.0, cv2.CAP_PROP_FRAME_WIDTH: 8, cv2.CAP_PROP_FRAME_HEIGHT: 6}.get(prop, 0.0)

    def read(self):
        if self.left <= 0:
            return False, None
        self.left -= 1
        (self.clock.sleep if self.clock else time.sleep)(0.01)
        return True, np.zeros((6, 8, 3), np.uint8)

    def release(self) -> None:
        pass


def test_a_dropped_source_is_reopened_and_the_gap_recorded():
    clock = SimulatedClock()
    reopened = iter([Camera(0, opened=False), Camera(0, opened=False), Camera(5, clock=clock)])  # down twice, then back
    src = LiveSource(0, "flaky", max_failures=3, capture=Camera(5, clock=clock), reconnect=3,
                     reopen=lambda: next(reopened, None) or Camera(0, opened=False), clock=clock, sleep=clock.sleep)
    with pytest.raises(StreamLost, match="flaky: no frame for 3 s"):
        with src:
            frames = []
            for f in src:
                frames.append(f)
    gaps = [f.gap for f in frames if f.gap]
    assert len(gaps) == 1 and gaps[0] >= 1.0  # backoff: 0.5 s, then 1 s, then it came back
    assert gaps[0] == pytest.approx(2 * 0.01 + 0.5 + 1.0)  # two failed reads 10 ms apart, then the backoff
    assert src.gaps[0][1] == gaps[0]
    # Every frame of both captures was handed over or dropped (a newer one came first), in order; the
    # last one is always handed over, and the gap is on a frame of the second capture.
    indexes = [f.index for f in frames]
    assert len(frames) + src.dropped == 10 and indexes == sorted(set(indexes)) and indexes[-1] == 9
    assert src.gaps[0][0] == 5 and min(f.index for f in frames if f.gap) >= 5


def test_a_slow_consumer_still_hears_of_the_gap():
    """The first frame after the gap is replaced by newer ones before a busy loop takes it (a live
    source keeps the newest frame only): the gap passes to the frame that is taken."""
    clock = SimulatedClock()
    reopened = iter([Camera(20, clock=clock)])  # back once, then gone
    src = LiveSource(0, "flaky", max_failures=3, capture=Camera(3, clock=clock), reconnect=1,
                     reopen=lambda: next(reopened, None) or Camera(0, opened=False), clock=clock, sleep=clock.sleep)
    frames, first_after_gap = [], 3
    with pytest.raises(StreamLost), src:
        for f in src:
            frames.append(f)
            # Busy: back only once two newer frames were read (the one after this one is dropped) and
            # the one after the first after the gap (that one is dropped too), or the source ended.
            need = max(f.index + 2, first_after_gap + 1)
            wait_until(lambda need=need: (src._latest is not None and src._latest.index >= need)
                       or src._error is not None, f"frame {need} read")
    gaps = [f.gap for f in frames if f.gap]
    assert len(gaps) == 1 and gaps[0] > 0 and src.dropped > 0
    assert gaps[0] == pytest.approx(2 * 0.01)  # two failed reads 10 ms apart; the first reopen worked
    after = [f for f in frames if f.index >= first_after_gap]
    assert src.gaps == [(first_after_gap, gaps[0])] and after[0].index > first_after_gap and after[0].gap == gaps[0]
    assert len(frames) + src.dropped == 3 + 20


def test_a_source_gone_for_good_ends_with_exit_code_1():
    clock = SimulatedClock()
    src = LiveSource(0, "gone", max_failures=2, capture=Camera(3, clock=clock), reconnect=1.0,
                     reopen=lambda: Camera(0, opened=False), clock=clock, sleep=clock.sleep)
    start = clock()
    with pytest.raises(StreamLost) as err, src:
        list(src)
    assert err.value.exit_code == 1 and "no frame for 1 s" in str(err.value)
    # It gave up once the reconnect window had passed (simulated seconds: a loaded machine adds none).
    assert clock() - start < 5 and clock() - src.captured_at == pytest.approx(1.0)


def test_without_reconnect_a_drop_ends_at_once():
    from rtseg.errors import RtsegError

    src = LiveSource(0, "cam", max_failures=2, capture=Camera(2), reconnect=0)
    with pytest.raises(RtsegError, match="no frame for 2 reads"), src:
        list(src)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int, pid: int) -> bool:
    """Whether process ``pid`` listens on 127.0.0.1:port (read from /proc: connecting would take ffmpeg's
    one client slot)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").glob("*"):
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[len("socket:["):-1])
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if int(f[1].split(":")[1], 16) == port and f[3] == "0A" and f[9] in inodes:
                return True
    return False


def serve(video: Path) -> tuple[subprocess.Popen, int]:
    """An ffmpeg HTTP server streaming ``video`` in real time, once it listens; and its port (from the
    OS: should another process take it before ffmpeg does, ffmpeg exits and another port is tried)."""
    end = time.monotonic() + DEADLINE
    while True:
        port = free_port()
        proc = subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1",
                                 "-i", str(video), "-c:v", "mpeg2video", "-q:v", "4", "-f", "mpegts", "-listen", "1",
                                 f"http://127.0.0.1:{port}/live.ts"], stdin=subprocess.DEVNULL)
        while not listening(port, proc.pid) and proc.poll() is None:
            assert time.monotonic() < end, "ffmpeg did not start listening"
            time.sleep(0.05)
        if proc.poll() is None:
            return proc, port
        assert time.monotonic() < end, "ffmpeg did not start listening"


class Relay:
    """The stream's address for the tracker, on a port the OS gave it and held for the whole test: each
    connection is relayed to the ffmpeg server now routed to. While there is none (it was killed), a
    connection is closed at once, as a dead server's is, and counted in ``refused``."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.upstream: int | None = None
        self.refused = 0
        threading.Thread(target=self._accept, name="relay", daemon=True).start()

    def route(self, port: int | None) -> None:
        with self.lock:
            self.upstream, self.refused = port, 0

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                port = self.upstream
            server = None
            if port is not None:
                try:
                    server = socket.create_connection(("127.0.0.1", port))
                except OSError:
                    server = None
            if server is None:
                client.close()
                with self.lock:
                    self.refused += 1
                continue
            done = threading.Barrier(2, action=lambda c=client, s=server: (c.close(), s.close()))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b, done), name="relay pump", daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, done: threading.Barrier) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):  # one side ended: so does the other (the other pump returns too)
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        done.wait()  # both pumps out: the sockets are closed

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def whole_lines(path: Path) -> list[dict]:
    """The JSON lines written whole so far (the last one may be half written)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.split("\n")[:-1]]


def after_the_gap(path: Path) -> int:
    """Records from the first with a gap on (0: none yet)."""
    records = whole_lines(path)
    gaps = [k for k, r in enumerate(records) if r.get("gap")]
    return len(records) - gaps[0] if gaps else 0


RECONNECT = 30  # s: the tracker's reopen attempts come 0, 0.5, 1.5, 3.5, 7.5, 12.5 ... 27.5 s after the drop


@pytest.mark.skipif(shutil.which("ffmpeg") is None and not os.environ.get("RTSEG_REQUIRE_FFMPEG"),
                    reason="ffmpeg not installed (apt-get install ffmpeg)")
def test_a_real_stream_killed_and_restarted(tmp_path):
    relay = Relay()
    server, port = serve(SHOWCASE / "video.mp4")
    spare = None
    relay.route(port)
    out, log = tmp_path / "tracks.jsonl", tmp_path / "stderr.txt"
    with log.open("w") as stderr_file:
        track = subprocess.Popen(
            [sys.executable, "-m", "rtseg.cli", "track", f"http://127.0.0.1:{relay.port}/live.ts", "--config",
             str(DEMO_CONFIG), "--text", "the purple square", "--save-json", str(out), "--save-masks",
             str(tmp_path / "masks"), "--output", str(tmp_path / "overlay.mp4"), "--reconnect", str(RECONNECT),
             "--no-show", "--quiet"], stderr=stderr_file, text=True)
    try:
        wait_until(lambda: len(whole_lines(out)) >= 15, "15 frames tracked", timeout=3 * DEADLINE)  # models load first
        spare, spare_port = serve(SHOWCASE / "video.mp4")  # the restarted server, ready before the drop
        relay.route(None)
        server.send_signal(signal.SIGKILL)
        server.wait()
        # Down for three reopen attempts (0.5 s, 1 s and 2 s of backoff after them), then back: a new
        # server, streaming from the start of the video.
        wait_until(lambda: relay.refused >= 3, "three reopen attempts")
        relay.route(spare_port)
        server, spare = spare, None
        wait_until(lambda: after_the_gap(out) >= 15, "15 frames tracked after the gap")
        relay.route(None)
        server.send_signal(signal.SIGKILL)  # gone for good
        server.wait()
        track.wait(timeout=RECONNECT + DEADLINE)
    finally:
        for proc in (track, server, spare):
            if proc is not None:
                proc.kill()
                proc.wait()
        relay.close()
    stderr = log.read_text()
    assert track.returncode == 1, stderr
    assert f"reconnecting for up to {RECONNECT} s" in stderr and "reconnected after" in stderr, stderr
    assert "stream lost" in stderr, stderr
    text = out.read_text()
    assert text.endswith("\n")  # every line whole
    records = [json.loads(line) for line in text.splitlines()]
    gaps = [r for r in records if r.get("gap")]
    assert len(gaps) == 1 and gaps[0]["gap"] >= 2.0
    assert gaps[0]["gap"] >= 0.5 + 1 + 2  # at least three attempts refused, the backoff after each
    after = records.index(gaps[0])
    print(f"gap {gaps[0]['gap']} s; {after} records before it, {len(records) - after} from it")
    assert after >= 15 and len(records) - after >= 15
    ids_before = {o["id"] for r in records[:after] for o in r["objects"]}
    ids_after = {o["id"] for r in records[after:] for o in r["objects"]}
    assert ids_before == ids_after == {1}  # the object kept its id across the gap
    pngs = sorted((tmp_path / "masks").glob("*.png"))
    assert [p.name for p in pngs] == sorted(f"{r['index']:05d}.png" for r in records)  # a mask per record
    for png in pngs:
        assert cv2.imread(str(png), cv2.IMREAD_UNCHANGED) is not None
    video = cv2.VideoCapture(str(tmp_path / "overlay.mp4"))
    assert video.isOpened() and video.read()[0]  # finalised: it plays
