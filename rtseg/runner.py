"""The one loop: frames from a source through a :class:`~rtseg.session.Session`, results to sinks.

::

    source ──frames──▶ session.step (segment, track) ──results──▶ output thread: draw overlay,
    (decoded ahead for files;        main thread                  sink.write for every sink
     newest frame for live)

The CLI, the web page, the benchmark and scripts all call :func:`run` with a session and a list of
sinks (:mod:`rtseg.output.sinks`); none of them has a loop of its own.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Sequence

from rtseg.capture.prefetch import prefetch
from rtseg.capture.sources import Source
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
    it), then every sink's ``write``."""

    def __init__(self, session: Session, sinks: Sequence[Sink]) -> None:
        self.sinks, self.meter = sinks, RateMeter()
        self.renderer = Renderer(session.config.output) if any(s.overlay for s in sinks) else None

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
        if self.renderer is not None:
            result.overlay = self.renderer.annotate(result.image, result.detections, result.stats, self.bound())
            result.overlay_at = time.monotonic()
        for sink in self.sinks:
            sink.write(result)
        self.meter.stages["output"] = (time.perf_counter() - t0) * 1000


@dataclass
class RunSummary:
    frames: int  # frames through the session
    meter: RateMeter  # the last FPS and stage times

    def line(self) -> str:
        return f"{self.frames} frames, {self.meter.line()}"


def run(source: Source, session: Session, sinks: Sequence[Sink] = (), max_frames: int | None = None) -> RunSummary:
    """Feed ``source`` (open; the caller closes it) to ``session`` and each result to every sink.

    Files are decoded ahead of the model and lose no frame; live sources hand over their newest
    frame. Outputs are written behind the model, in order, through a bounded queue (one result deep
    for live sources). Sinks are opened first and always closed, also on Ctrl-C and on errors (after
    what was queued is written), so what they wrote stays valid. Returns the frame count and the last
    rates.
    """
    stream = StreamInfo(source.name, source.fps, source.live)
    outputs = _Outputs(session, sinks)
    done = 0
    with contextlib.ExitStack() as stack:
        for sink in sinks:
            sink.open(stream)
            stack.callback(sink.close)
        frames = iter(source) if source.live else prefetch(iter(source), maxsize=4)
        stack.callback(getattr(frames, "close", lambda: None))
        # A live source's results wait for the outputs one at a time: when writing them is the slow
        # stage, the loop waits too and then takes the newest frame, instead of queueing stale ones.
        worker = stack.enter_context(Worker(outputs, maxsize=1 if source.live else 8, name="outputs"))
        while max_frames is None or done < max_frames:
            if any(s.paused for s in sinks):
                if not all(s.pump(30) for s in sinks):
                    break
                continue
            try:
                frame = next(frames)
            except StopIteration:
                break
            t0 = time.perf_counter()
            timings = {"wait": (time.monotonic() - frame.read_at) * 1000} if source.live else {}
            result = session.step(frame)
            result.timings = {**timings, **result.timings, "frame": (time.perf_counter() - t0) * 1000}
            worker.put(result)
            done += 1
            if not all(s.pump(1) for s in sinks):
                break
        worker.close()
    return RunSummary(done, outputs.meter)
