"""``rtseg track``: the capture -> segment -> track -> render -> outputs loop, with an optional window."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from rtseg.capture import Source, open_source
from rtseg.config import Config
from rtseg.errors import RtsegError
from rtseg.pipeline import FrameResult, Session
from rtseg.prompts import Prompt, TextPrompt, validate
from rtseg.render import Renderer
from rtseg.segment import Segmenter
from rtseg.sinks import JsonlWriter, MaskWriter, VideoOutput, check_writable, frame_record
from rtseg.stages import Worker, prefetch
from rtseg.text import TextScorer


class RateMeter:
    """Frames per second over a sliding window of recent frames, and smoothed stage times."""

    def __init__(self, window: int = 30) -> None:
        self.stamps: list[float] = []
        self.window = window
        self.stages: dict[str, float] = {}

    def tick(self, timings: dict[str, float]) -> None:
        self.stamps = (self.stamps + [time.perf_counter()])[-self.window:]
        for k, v in timings.items():
            self.stages[k] = v if k not in self.stages else 0.8 * self.stages[k] + 0.2 * v

    @property
    def fps(self) -> float:
        if len(self.stamps) < 2:
            return 0.0
        return (len(self.stamps) - 1) / max(self.stamps[-1] - self.stamps[0], 1e-9)

    def line(self) -> str:
        stages = " ".join(f"{k} {v:.0f}ms" for k, v in self.stages.items())
        return f"{self.fps:5.1f} FPS | {stages}"


@dataclass
class RunStats:
    """What ``rtseg bench`` measures in a run: milliseconds per frame by stage (``segment``,
    ``track``, ``carry``, ``output``, ``frame`` = all the main loop's work; for live sources
    ``wait``, the age of the newest frame when the loop took it), and the latency from reading a
    frame to its overlay drawn (to its outputs written when there is no overlay)."""

    stages: dict[str, list[float]] = field(default_factory=dict)
    latency: list[float] = field(default_factory=list)
    done: list[float] = field(default_factory=list)  # time.monotonic() each frame's outputs were written

    def add(self, stage: str, ms: float) -> None:
        self.stages.setdefault(stage, []).append(ms)

    @property
    def frames(self) -> int:
        """Frames through the main loop."""
        return len(self.stages.get("frame", []))


def display_available() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or sys.platform in ("win32", "darwin")


def run_track(source: str | Source, config: Config, objects: list[Prompt], everything: bool = False,
              output: str | None = None, masks: str | None = None, jsonl: str | None = None,
              show: bool | None = None, max_frames: int | None = None, quiet: bool = False,
              segmenter: Segmenter | None = None, text_scorer: TextScorer | None = None,
              on_result: Callable[[FrameResult], None] | None = None, stats: RunStats | None = None) -> int:
    """Run the whole app; returns the exit code. Raises RtsegError for bad input.

    ``segmenter`` and ``text_scorer`` are models already loaded (``rtseg web`` shares one of each
    between its browser sessions); ``on_result`` sees each frame's result as it is done; ``stats``,
    when given, collects per-frame timings (``rtseg bench``).
    """
    # Check everything that can be checked before loading a model or opening a camera.
    for path in (output, jsonl):
        if path:
            check_writable(Path(path))
    if masks:
        check_writable(Path(masks), is_dir=True)
    src = source if isinstance(source, Source) else open_source(source)
    with contextlib.ExitStack() as stack:
        stack.enter_context(src)
        if show is None:
            show = src.live and display_available()
        if show and not display_available():
            raise RtsegError("--show needs a display (DISPLAY is not set); use --output to save the overlay")
        if not objects and not everything and not show:
            raise RtsegError("nothing to track: give --point, --box, --text, --prompts or --everything "
                             "(or click objects in the --show window)")
        if src.size is not None:  # before loading any model
            for prompt in objects:
                validate(prompt, *src.size)
        # With a text prompt, CLIP is required: a missing model is an error, not a fallback.
        session = Session(config, everything=everything, segmenter=segmenter, text_scorer=text_scorer,
                          text_required=any(isinstance(p, TextPrompt) for p in objects))
        for prompt in objects:
            session.add(prompt)
        renderer = Renderer(config.output)
        mask_out = stack.enter_context(MaskWriter(masks)) if masks else None
        json_out = stack.enter_context(JsonlWriter(jsonl)) if jsonl else None
        video: list[VideoOutput] = []  # opened on the first frame, when its size is known

        def close_video() -> None:
            for v in video:
                v.__exit__(None, None, None)

        stack.callback(close_video)
        window = None
        if show:
            from rtseg.window import Window

            window = stack.enter_context(Window(f"rtseg - {src.name}", session))
        meter = RateMeter()
        shown: dict[str, np.ndarray] = {}

        def write(item: tuple[FrameResult, str]) -> None:
            """The output stage, on its own thread: render, encode, masks, JSON line."""
            result, line = item
            t0 = time.perf_counter()
            shown_at = None
            if output or window is not None:
                overlay = renderer.annotate(result.image, result.detections, line)
                shown_at = time.monotonic()
                if output:
                    if not video:
                        h, w = result.image.shape[:2]
                        video.append(VideoOutput(output, src.fps or config.output.fps, (w, h),
                                                 config.output.codec).__enter__())
                    video[0].write(overlay, at=result.time if src.live else None)
                shown["overlay"] = overlay
            _write_outputs(result, mask_out, json_out)
            meter.stages["output"] = (time.perf_counter() - t0) * 1000
            if stats is not None:
                stats.add("output", meter.stages["output"])
                stats.done.append(time.monotonic())
                stats.latency.append(((shown_at or stats.done[-1]) - result.read_at) * 1000)

        # Decoding runs ahead of the model (files keep every frame); live sources already hand over
        # only their newest frame. Outputs are written behind it, in order, through a bounded queue.
        frames = iter(src) if src.live else prefetch(iter(src), maxsize=4)
        stack.callback(getattr(frames, "close", lambda: None))
        outputs = stack.enter_context(Worker(write, maxsize=8, name="outputs"))
        done = 0
        while max_frames is None or done < max_frames:
            if window is not None and window.paused:
                if not window.poll(30):
                    break
                continue
            try:
                frame = next(frames)
            except StopIteration:
                break
            t0 = time.perf_counter()
            if stats is not None and src.live:  # how old the newest frame was when the loop took it
                stats.add("wait", (time.monotonic() - frame.read_at) * 1000)
            result = session.step(frame)
            meter.tick(result.timings)
            if stats is not None:
                for stage, ms in result.timings.items():
                    stats.add(stage, ms)
                stats.add("frame", (time.perf_counter() - t0) * 1000)
            outputs.put((result, meter.line()))
            if on_result is not None:
                on_result(result)
            done += 1
            if window is not None and "overlay" in shown and not window.show(shown["overlay"]):
                break
            if not quiet and done % 25 == 0 and sys.stderr.isatty():
                print(f"\rframe {result.index + 1}: {len(result.detections)} objects, {meter.line()}",
                      end="", file=sys.stderr, flush=True)
        outputs.close()
        if not quiet:
            start = "\r" if sys.stderr.isatty() else ""
            print(f"{start}done: {done} frames, {meter.line()}", file=sys.stderr)
    return 0


def _write_outputs(result: FrameResult, masks: MaskWriter | None, jsonl: JsonlWriter | None) -> None:
    if masks is not None:
        masks.write(result.index, result.detections, result.image.shape[:2])
    if jsonl is not None:
        jsonl.write(frame_record(result.index, result.time, result.detections))

