"""The one loop: a source through a Session to sinks, in order, each sink opened and always closed."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from rtseg.capture.replay import Replay
from rtseg.output.png import read_index_png
from rtseg.output.sinks import MaskSink, Sink, StatsSink
from rtseg.prompt.prompts import PointPrompt
from rtseg.runner import run
from rtseg.session import Session

from test_api import MovingSquare


class Recorder(Sink):
    def __init__(self, overlay: bool = False, fail_at: int | None = None) -> None:
        self.overlay, self.fail_at = overlay, fail_at
        self.calls: list[str] = []
        self.results: list = []

    def open(self, stream) -> None:
        self.calls.append(f"open {stream.name} live={stream.live}")

    def write(self, result) -> None:
        if result.index == self.fail_at:
            raise OSError("disk full")
        self.calls.append("write")
        self.results.append(result)

    def close(self) -> None:
        self.calls.append("close")


def square_session(demo_config) -> Session:
    return Session.for_prompts(demo_config, [PointPrompt(((20, 50),), (1,))], size=(200, 100),
                               segmenter=MovingSquare(), text_scorer=None)


def frames(n: int) -> Replay:
    return Replay([np.zeros((100, 200, 3), np.uint8)], fps=10, frames=n, name="zeros")


def test_every_frame_reaches_every_sink_in_order(demo_config):
    plain, drawn, stats = Recorder(), Recorder(overlay=True), StatsSink()
    summary = run(frames(12), square_session(demo_config), [plain, drawn, stats])
    assert summary.frames == 12 and "FPS" in summary.line()
    for sink in (plain, drawn):
        assert sink.calls == ["open zeros live=False"] + ["write"] * 12 + ["close"]
        assert [r.index for r in sink.results] == list(range(12))
    r = drawn.results[5]
    assert r.overlay is not None and r.overlay.shape == (100, 200, 3) and r.overlay.any()  # the mask is drawn
    assert r.detections.tracker_id.tolist() == [1] and r.detections.mask[0][50, 20 + 5 * 5]
    assert set(stats.stages) == {"segment", "track", "frame", "output"} and stats.frames == 12
    assert len(stats.latency) == len(stats.done) == 12


def test_no_overlay_is_drawn_when_no_sink_wants_one(demo_config):
    plain = Recorder()
    run(frames(3), square_session(demo_config), [plain])
    assert all(r.overlay is None for r in plain.results)


def test_a_failing_sink_stops_the_run_and_every_sink_is_closed(demo_config, tmp_path):
    failing, other = Recorder(fail_at=4), Recorder()
    masks = MaskSink(tmp_path / "masks")
    with pytest.raises(OSError, match="disk full"):
        run(frames(50), square_session(demo_config), [masks, failing, other], max_frames=None)
    assert failing.calls[-1] == "close" and other.calls[-1] == "close"
    written = sorted(p.name for p in (tmp_path / "masks").glob("*.png"))
    assert written[:5] == [f"{i:05d}.png" for i in range(5)] and len(written) < 50
    assert all(read_index_png(tmp_path / "masks" / name).max() == 1 for name in written)  # each whole


def test_max_frames_and_a_sink_that_quits(demo_config):
    class Quitter(Recorder):
        def pump(self, wait_ms: int) -> bool:
            return len(self.calls) < 4  # open + 3 writes, give or take the output thread's lag

    assert run(frames(30), square_session(demo_config), [Recorder()], max_frames=7).frames == 7
    quitter = Quitter()
    assert run(frames(30), square_session(demo_config), [quitter]).frames < 30
    assert quitter.calls[-1] == "close"


def test_a_frame_is_segmented_while_the_one_before_is_tracked(demo_config):
    session = square_session(demo_config)
    segmenter, update = session.segmenter, session.tracker.update
    segmenting = [threading.Event() for _ in range(8)]
    threads = set()

    def segment(image):
        segmenting[segmenter.t].set()
        threads.add(threading.current_thread().name)
        return segmenter(image)

    def track(image, segments):
        frame = len(tracked)
        if frame + 1 < len(segmenting):  # the next frame's forward runs during this frame's tracking
            assert segmenting[frame + 1].wait(timeout=20), f"frame {frame + 1} was not segmented meanwhile"
        tracked.append(frame)
        return update(image, segments)

    tracked: list[int] = []
    session.segmenter, session.tracker.update = segment, track
    plain = Recorder()
    assert run(frames(8), session, [plain]).frames == 8
    assert tracked == list(range(8)) and threading.main_thread().name not in threads
    assert [r.detections.mask[0][50, 20 + 5 * r.index] for r in plain.results] == [True] * 8  # each its own segments


def test_the_tracking_thread_takes_the_segmenters_torch_threads(demo_config):
    """The tracker decodes masks with torch while the next frame is segmented: run() first gives its
    own thread the segmenter's CPU thread count (a thread that ran torch before keeps every core)."""
    session = square_session(demo_config)
    calls = []
    session.segmenter.share_threads = lambda: calls.append(threading.current_thread().name)
    run(frames(3), session, [Recorder()])
    assert calls == [threading.current_thread().name]


def test_keyframe_mode_segments_on_the_main_thread(demo_config):
    from rtseg.config import override

    session = square_session(override(demo_config, keyframes={"every": 3}))
    assert not session.segments_every_frame
    threads = set()
    segmenter = session.segmenter

    def segment(image):
        threads.add(threading.current_thread().name)
        return segmenter(image)

    session.segmenter = segment
    run(frames(6), session, [Recorder()])
    assert threads == {threading.main_thread().name}


def test_file_writers_write_a_frame_at_the_same_time_and_the_rest_after_them_beside_a_gpu(demo_config):
    class Meeting(Recorder):
        parallel = True

        def __init__(self, meet: threading.Barrier, overlay: bool = False) -> None:
            super().__init__(overlay)
            self.meet = meet

        def write(self, result) -> None:
            self.meet.wait()  # the other writer must be writing this frame too, or this times out
            super().write(result)

    class After(Recorder):
        def write(self, result) -> None:
            assert [len(m.results) for m in meetings] == [result.index + 1] * 2
            super().write(result)

    meet = threading.Barrier(2, timeout=20)
    meetings = [Meeting(meet), Meeting(meet, overlay=True)]
    after = After()
    session = square_session(demo_config)
    session.segmenter.device = "cuda"  # the forward leaves the CPU's cores free
    assert session.on_accelerator
    run(frames(10), session, [*meetings, after])
    assert len(after.results) == 10 and all(r.overlay is not None for r in meetings[1].results)
    for sink in (*meetings, after):
        assert sink.calls == ["open zeros live=False"] + ["write"] * 10 + ["close"]


def test_with_the_model_on_the_cpu_the_file_writers_take_turns(demo_config):
    class Writer(Recorder):
        parallel = True

        def write(self, result) -> None:
            threads.add(threading.current_thread().name)
            super().write(result)

    threads: set[str] = set()
    writers = [Writer(), Writer(overlay=True)]
    run(frames(5), square_session(demo_config), writers)
    assert threads == {"outputs"} and [len(w.results) for w in writers] == [5, 5]
