"""The one loop: frames from a source through a :class:`~rtseg.session.Session`, results to sinks.

::

    source ──frames──▶ segment ──────▶ session.step (track) ──results──▶ output thread: draw overlay,
    (decoded ahead for files;  (a frame ahead,   main thread                   sink.write for every sink
     newest frame for live)     own thread)                                  (file writers at once)

A frame is segmented while the one before it is tracked: on a GPU the forward is mostly waiting
for the device, and the CPU tracks meanwhile. (In keyframe mode, where tracking decides which
frames are segmented, ``session.step`` segments too.)

The CLI, the web page, the benchmark and scripts all call :func:`run` with a session and a list of
sinks (:mod:`rtseg.output.sinks`); none of them has a loop of its own.
"""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generator, Iterator, Sequence

import supervision as sv

from rtseg.capture.prefetch import prefetch
from rtseg.capture.sources import Frame, Source
from rtseg.output.render import Renderer
from rtseg.output.sinks import Sink, StreamInfo
from rtseg.output.worker import Worker
from rtseg.session import FrameResult, Session

HIDDEN_STAGES = ("frame", "wait")  # recorded for benchmarks, not drawn in the stats line


class RateMeter:
    """Frames per second over a sliding window of recent frames, and smoothed stage times.

    >>> meter = RateMeter()
    >>> meter.tick({"segment": 20.0, "frame": 25.0}); meter.tick({"segment": 30.0})
    >>> meter.line().split("|")[1].strip()
    'segment 22ms'
    """

    def __init__(self, window: int = 30) -> None:
        self.stamps: list[float] = []
        self.window = window
        self.stages: dict[str, float] = {}

    def tick(self, timings: dict[str, float]) -> None:
        self.stamps = (self.stamps + [time.perf_counter()])[-self.window:]
        for k, v in timings.items():
            if k not in HIDDEN_STAGES:
                self.stages[k] = v if k not in self.stages else 0.8 * self.stages[k] + 0.2 * v

    @property
    def fps(self) -> float:
        if len(self.stamps) < 2:
            return 0.0
        return (len(self.stamps) - 1) / max(self.stamps[-1] - self.stamps[0], 1e-9)

    def line(self) -> str:
        stages = " ".join(f"{k} {v:.0f}ms" for k, v in self.stages.items())
        return f"{self.fps:5.1f} FPS | {stages}"


class _Outputs:
    """The output stage, on its own thread: the stats line, the overlay (once, when a sink wants
    it), then every sink's ``write``.

    When the model runs on an accelerator, the sinks that write files of their own
    (``Sink.parallel``: the video, mask PNGs, JSON lines) write each frame at the same time, on
    threads of their own (encoding releases the GIL): those that do not need the overlay while it
    is drawn, the others once it is; the rest write after them, in order. (On the CPU the forward
    takes every core, and writing at the same time costs more than it saves.)"""

    def __init__(self, session: Session, sinks: Sequence[Sink]) -> None:
        self.sinks, self.meter = sinks, RateMeter()
        self.renderer = Renderer(session.config.output) if any(s.overlay for s in sinks) else None
        parallel = [s for s in sinks if s.parallel and session.on_accelerator]
        self.early = [s for s in parallel if not s.overlay]
        self.late = [s for s in parallel if s.overlay]
        self.inline = [s for s in sinks if s not in parallel]
        self.pool = ThreadPoolExecutor(len(parallel), "sink") if len(parallel) > 1 else None

    def bound(self) -> tuple[int, int] | None:
        """The overlay's largest size: what the sinks that show it use (a window's changes when it is
        resized); None when one wants the frame's size."""
        fits = [s.overlay_fit for s in self.sinks if s.overlay]
        if None in fits:
            return None
        return max(f[0] for f in fits), max(f[1] for f in fits)  # type: ignore[index]

    def __call__(self, result: FrameResult) -> None:
        result.output_at = t0 = time.perf_counter()
        self.meter.tick(result.timings)
        result.stats = self.meter.line()
        writes = self._start(self.early, result)
        if self.renderer is not None:
            result.overlay = self.renderer.annotate(result.image, result.detections, result.stats, self.bound())
            result.overlay_at = time.monotonic()
        writes += self._start(self.late, result)
        errors = [e for e in (w.exception() for w in writes) if e is not None]  # all done before one is raised
        if errors:
            raise errors[0]
        for sink in self.inline:
            sink.write(result)
        self.meter.stages["output"] = (time.perf_counter() - t0) * 1000

    def _start(self, sinks: list[Sink], result: FrameResult) -> list[Future]:
        if self.pool is not None:
            return [self.pool.submit(sink.write, result) for sink in sinks]
        for sink in sinks:  # one such sink: no thread to hand it to
            sink.write(result)
        return []

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


@dataclass
class RunSummary:
    frames: int  # frames through the session
    meter: RateMeter  # the last FPS and stage times

    def line(self) -> str:
        return f"{self.frames} frames, {self.meter.line()}"


Segmented = tuple[Frame, sv.Detections | None, dict[str, float]]  # a frame, its segments (None: not made yet), timings


def _taken(frames: Iterator[Frame], live: bool) -> Generator[Segmented, None, None]:
    """Each frame as the loop takes it (with how old it is, for a live source); not segmented yet."""
    for frame in frames:
        yield frame, None, {"wait": (time.monotonic() - frame.read_at) * 1000} if live else {}


def _segmented(frames: Iterator[Frame], session: Session, live: bool) -> Generator[Segmented, None, None]:
    """Each frame with its segments and what they cost, made as the frame is taken (on the thread
    that iterates this: :func:`run` runs it a frame ahead of the tracker)."""
    for frame, _, timings in _taken(frames, live):
        t0 = time.perf_counter()
        segments = session.segmenter(frame.image)
        yield frame, segments, {**timings, "segment": (time.perf_counter() - t0) * 1000}


def run(source: Source, session: Session, sinks: Sequence[Sink] = (), max_frames: int | None = None) -> RunSummary:
    """Feed ``source`` (open; the caller closes it) to ``session`` and each result to every sink.

    Files are decoded ahead of the model and lose no frame; live sources hand over their newest
    frame. Each frame is segmented on a thread of its own while the frame before it is tracked
    (unless ``session`` is in keyframe mode). Outputs are written behind the model, in order,
    through a bounded queue (one result deep for live sources). Sinks are opened first and always
    closed, also on Ctrl-C and on errors (after what was queued is written), so what they wrote
    stays valid. Returns the frame count and the last rates.
    """
    stream = StreamInfo(source.name, source.fps, source.live)
    outputs = _Outputs(session, sinks)
    done = 0
    with contextlib.ExitStack() as stack:
        stack.callback(outputs.close)
        for sink in sinks:
            sink.open(stream)
            stack.callback(sink.close)
        frames = iter(source) if source.live else prefetch(iter(source), maxsize=4)
        stack.callback(getattr(frames, "close", lambda: None))
        if session.segments_every_frame:
            getattr(session.segmenter, "share_threads", lambda: None)()  # this thread decodes masks meanwhile
            items = prefetch(_segmented(frames, session, source.live), maxsize=1)
        else:
            items = _taken(frames, source.live)
        stack.callback(items.close)
        resumed = 0.0  # time.monotonic() when the window's pause ended
        # A live source's results wait for the outputs one at a time: when writing them is the slow
        # stage, the loop waits too and then takes the newest frame, instead of queueing stale ones.
        worker = stack.enter_context(Worker(outputs, maxsize=1 if source.live else 8, name="outputs"))
        while max_frames is None or done < max_frames:
            if any(s.paused for s in sinks):
                if not all(s.pump(30) for s in sinks):
                    break
                resumed = time.monotonic()
                continue
            try:
                frame, segments, timings = next(items)
            except StopIteration:
                break
            if source.live and frame.read_at < resumed:  # read before a pause: the next one is fresh
                continue
            t0 = time.perf_counter()
            result = session.step(frame, segments, timings)
            # a frame's whole work: tracking here, and segmenting, also when it was done ahead
            ahead = timings.get("segment", 0.0) if segments is not None else 0.0
            result.timings["frame"] = ahead + (time.perf_counter() - t0) * 1000
            worker.put(result)
            done += 1
            if not all(s.pump(1) for s in sinks):
                break
        worker.close()
    return RunSummary(done, outputs.meter)
