"""Sinks: where each frame's result goes. Every output is a :class:`Sink` with the same small
protocol, and the runner (:func:`rtseg.runner.run`) calls it behind the model, in frame order (on
its output thread; a ``parallel`` sink on a thread of its own, at the same time as the others)::

    sink.open(stream)      # once, before the first frame
    sink.write(result)     # per frame: a FrameResult (its overlay drawn when ``sink.overlay`` is set)
    sink.close()           # once, always: after the last frame, on Ctrl-C and on errors

and ``sink.pump(wait_ms)`` on the main thread after each frame (a window's events; False ends the run).

Each sink leaves what it wrote valid when the run stops early: the video is finalised on close,
each PNG and each JSON line is complete as soon as its frame is written. A sink's constructor
checks that its path can be written, so a bad path fails before any model is loaded; an output that
cannot be written later (a full disk) stops the run with an :class:`RtsegError` naming it, and what
was written before stays whole.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import supervision as sv

from rtseg.errors import RtsegError
from rtseg.output.png import write_index_png
from rtseg.output.records import frame_record, label_map
from rtseg.output.render import fit, shrink
from rtseg.session import FrameResult


@dataclass(frozen=True)
class StreamInfo:
    """What sinks are told of the source when they open: its name, frame rate (None when unknown)
    and whether it is live (a camera or stream, whose frames come in real time and may be skipped)."""

    name: str
    fps: float | None
    live: bool


class Sink:
    """The protocol every output follows (see the module docstring); the defaults do nothing."""

    overlay = False  # the runner draws ``result.overlay`` when any sink sets this
    overlay_fit: tuple[int, int] | None = None  # the largest overlay (width, height) it uses; None: the frame's size
    paused = False  # the runner stops taking frames while a sink (the window) is paused
    parallel = False  # True: writes files of its own, and may write at the same time as the other such sinks

    def open(self, stream: StreamInfo) -> None:
        pass

    def write(self, result: FrameResult) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def pump(self, wait_ms: int) -> bool:
        """The main thread's turn after each frame (``wait_ms`` milliseconds while paused); False stops the run."""
        return True


def write_error(exc: OSError, path: Path) -> RtsegError:
    """The one-line error for an output that could not be written, "disk full" when the disk (or quota) is.

    >>> str(write_error(OSError(errno.ENOSPC, "No space left on device"), Path("out/t.jsonl")))
    'disk full: cannot write out/t.jsonl'
    """
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return RtsegError(f"disk full: cannot write {path}")
    return RtsegError(f"cannot write {path}: {exc.strerror or exc}")


def check_writable(path: Path, is_dir: bool = False) -> None:
    """Raise RtsegError now, before any work, when ``path`` cannot be written."""
    target = path if is_dir else path.parent
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise write_error(exc, target) from exc
        raise RtsegError(f"cannot create folder {target}: {exc.strerror}") from exc
    if not os.access(target, os.W_OK):
        raise RtsegError(f"cannot write to {target}: permission denied")
    if not is_dir and path.is_dir():
        raise RtsegError(f"cannot write {path}: it is a folder")


class VideoFile:
    """A video file (``mp4v`` by default) of frames of one size, finalised on exit whatever happened."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], codec: str = "mp4v") -> None:
        self.path = Path(path)
        check_writable(self.path)
        self.fps = max(int(round(fps)), 1)
        info = sv.VideoInfo(width=size[0], height=size[1], fps=self.fps)
        self.sink = sv.VideoSink(str(self.path), info, codec=codec)
        self.frames = 0

    def __enter__(self) -> "VideoFile":
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # OpenCV's lines: we say it in one
        try:
            self.sink.__enter__()
        except RuntimeError as exc:
            raise RtsegError(f"cannot write video {self.path} (codec or format not supported)") from exc
        finally:
            cv2.utils.logging.setLogLevel(level)
        return self

    def write(self, image: np.ndarray, at: float | None = None) -> None:
        """Append a frame. With ``at`` (seconds since the start, for live sources that skip frames),
        the frame is repeated until the video reaches that time, so the file plays in real time."""
        self.check_space(image.nbytes)
        copies = 1 if at is None or self.frames == 0 else max(int(round(at * self.fps)) + 1 - self.frames, 0)
        for _ in range(copies):
            self.sink.write_frame(image)
        self.frames += copies

    def check_space(self, frame_bytes: int) -> None:
        """Raise "disk full" while the disk still has room to finalise the video. OpenCV's writer drops
        frames on a full disk without a word, and an mp4 whose index (written last, about 16 bytes a
        frame) does not fit cannot be played at all; so stop while a frame, the writer's buffer and the
        index still fit."""
        try:
            free = shutil.disk_usage(self.path.parent).free
        except OSError:
            return
        if free < (1 << 20) + frame_bytes + 16 * self.frames:
            raise RtsegError(f"disk full: cannot write {self.path}")

    def __exit__(self, *exc: object) -> None:
        self.sink.__exit__(None, None, None)


class VideoSink(Sink):
    """The overlay video: opened on the first frame (when its size is known), at the source's frame
    rate (``fps`` when the source does not say). With ``fit`` (width, height), frames larger than
    that are written scaled down to fit it.

    A live source's video plays in real time: a frame is repeated until the next one's time. It is
    written at the rate the loop runs, measured over its first ``LIVE_PROBE_S`` seconds (at most the
    source's): a repeated frame costs a whole encode (10 ms at 1080p), and a loop at 3 FPS on a
    30 FPS camera would encode every frame ten times."""

    overlay = parallel = True
    LIVE_PROBE_S = 1.0

    def __init__(self, path: str | Path, fps: float = 30.0, codec: str = "mp4v",
                 fit: tuple[int, int] | None = None) -> None:
        self.path, self.default_fps, self.codec, self.overlay_fit = Path(path), fps, codec, fit
        check_writable(self.path)
        self.video: VideoFile | None = None
        self.pending: list[tuple[np.ndarray, float]] = []  # a live source's first overlays, and their times

    def open(self, stream: StreamInfo) -> None:
        self.fps, self.live = stream.fps or self.default_fps, stream.live

    def write(self, result: FrameResult) -> None:
        assert result.overlay is not None
        size = fit(result.image.shape[1::-1], self.overlay_fit)
        overlay = result.overlay
        if overlay.shape[1::-1] != size:  # drawn larger, for another sink
            overlay = shrink(overlay, size)
        if not self.live:
            if self.video is None:
                self.video = VideoFile(self.path, self.fps, size, self.codec).__enter__()
            self.video.write(overlay)
        elif self.video is None:
            self.pending.append((overlay, result.time))
            if result.time - self.pending[0][1] >= self.LIVE_PROBE_S:
                self._start_live()
        else:
            self.video.write(overlay, at=result.time)

    def _start_live(self) -> None:
        """Open the live video at the loop's rate over the pending overlays, and write them."""
        (first, t0), t1 = self.pending[0], self.pending[-1][1]
        rate = (len(self.pending) - 1) / (t1 - t0) if t1 > t0 else self.fps
        self.video = VideoFile(self.path, min(self.fps, max(math.ceil(rate), 1)), first.shape[1::-1],
                               self.codec).__enter__()
        for overlay, at in self.pending:
            self.video.write(overlay, at=at)
        self.pending = []

    def close(self) -> None:
        if self.video is None and self.pending:
            self._start_live()
        if self.video is not None:
            self.video.__exit__(None, None, None)


class MaskSink(Sink):
    """``DIR/%05d.png`` per frame: 8-bit palette PNG, pixel value = track id, 0 = background."""

    parallel = True

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        check_writable(self.folder, is_dir=True)

    def write(self, result: FrameResult) -> None:
        path = self.folder / f"{result.index:05d}.png"
        tmp = path.with_name(f".{path.name}.tmp")  # not *.png: a reader of the folder never takes it for a mask
        try:
            write_index_png(tmp, label_map(result.detections, result.image.shape[:2]))
            os.replace(tmp, path)  # a mask file is either whole or absent
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise write_error(exc, path) from exc


class JsonlSink(Sink):
    """One JSON object per frame and line (:func:`~rtseg.output.records.frame_record`), written as
    each frame is done; a write that fails (a full disk) is cut back to the last whole line."""

    parallel = True

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        check_writable(self.path)
        self.file: Any = None
        self.whole = 0  # bytes in the file up to the end of its last whole line

    def open(self, stream: StreamInfo) -> None:
        try:
            self.file = open(self.path, "wb", buffering=0)  # unbuffered: nothing is left to write on close
        except OSError as exc:
            raise write_error(exc, self.path) from exc

    def write(self, result: FrameResult) -> None:
        record = frame_record(result.index, result.time, result.detections)
        if result.gap:  # a live source dropped and came back: the seconds it gave nothing
            record["gap"] = round(result.gap, 2)
        line = memoryview((json.dumps(record, separators=(",", ":")) + "\n").encode())
        try:
            while line:
                line = line[self.file.write(line):]
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self.file.fileno(), self.whole)  # no half line: a reader parses every line
            raise write_error(exc, self.path) from exc
        self.whole = self.file.tell()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


class ProgressSink(Sink):
    """A progress line on stderr every ``every`` frames, when stderr is a terminal."""

    def __init__(self, every: int = 25) -> None:
        self.every, self.frames = every, 0

    def write(self, result: FrameResult) -> None:
        self.frames += 1
        if self.frames % self.every == 0 and sys.stderr.isatty():
            print(f"\rframe {result.index + 1}: {len(result.detections)} objects, {result.stats}",
                  end="", file=sys.stderr, flush=True)


@dataclass
class StatsSink(Sink):
    """What ``rtseg bench`` measures in a run: milliseconds per frame by stage (the result's
    ``timings``, and ``output``: the output stage up to this sink, so put it last), and the latency
    from reading a frame to its overlay drawn (to its outputs written when there is no overlay)."""

    stages: dict[str, list[float]] = field(default_factory=dict)
    latency: list[float] = field(default_factory=list)
    done: list[float] = field(default_factory=list)  # time.monotonic() each frame's outputs were written

    def add(self, stage: str, ms: float) -> None:
        self.stages.setdefault(stage, []).append(ms)

    def write(self, result: FrameResult) -> None:
        for stage, ms in result.timings.items():
            self.add(stage, ms)
        self.add("output", (time.perf_counter() - result.output_at) * 1000)
        self.done.append(time.monotonic())
        self.latency.append(((result.overlay_at or self.done[-1]) - result.read_at) * 1000)

    @property
    def frames(self) -> int:
        """Frames through the main loop."""
        return len(self.stages.get("frame", []))
