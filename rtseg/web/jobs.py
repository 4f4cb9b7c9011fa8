"""What one browser session of ``rtseg web`` runs: the first-frame preview, a run over its upload
with ``rtseg track``'s own loop and sinks, and the webcam's live overlay. Nothing here imports
gradio. The session's inputs (upload, prompts) are in :mod:`rtseg.web.inputs`.

A run is held to the server's limits on what it decodes (:class:`JobLimits`: frames, pixels a
frame, wall time), whatever the upload's header claimed, and a session has one run queued or
running at a time (:func:`claim_run`).
"""

from __future__ import annotations

import functools
import shutil
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from rtseg.capture.base import Frame, Source
from rtseg.config import OutputConfig, override
from rtseg.detections import prompts_of
from rtseg.errors import RtsegError
from rtseg.output.render import Renderer
from rtseg.output.sinks import JsonlSink, MaskSink, Sink, VideoSink
from rtseg.prompt.prompts import BoxPrompt, PointPrompt, negatives_of, numbered
from rtseg.runner import RateMeter, run
from rtseg.session import FrameResult, Session
from rtseg.web.inputs import MAX_PIXELS, WebState, frame_cap, open_upload, pixels_line
from rtseg.web.models import ModelBank, Settings

VIDEO_CODEC, VIDEO_SUFFIX = "VP80", ".webm"  # what OpenCV writes and browsers play without a plug-in
MAX_JOB_MINUTES = 10.0  # the default of --max-job-minutes
BUSY = "a run of this session is already queued or running"


@dataclass
class JobResult:
    """What a run leaves for the page."""

    video: Path
    masks_zip: Path
    jsonl: Path
    table: list[list[object]]
    frames: int


@functools.lru_cache(maxsize=8)
def renderer(output: OutputConfig) -> Renderer:
    """One renderer per output config, made once (not for every webcam frame)."""
    return Renderer(output)


# -- first-frame preview -------------------------------------------------------------------------

def draw_prompts(image: np.ndarray, state: WebState) -> np.ndarray:
    """A copy of BGR ``image`` with the prompts' points (green +, red -) and boxes drawn."""
    out = image.copy()
    for k, p in enumerate(state.prompts, start=1):
        if isinstance(p, BoxPrompt):
            x1, y1, x2, y2 = (int(round(v)) for v in p.box)
            cv2.rectangle(out, (x1, y1), (x2, y2), (255, 255, 255), 2)
            cv2.putText(out, str(k), (x1 + 3, y1 + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
        points = list(zip(p.points, p.labels)) if isinstance(p, PointPrompt) else [(q, 0) for q in negatives_of(p)]
        for (x, y), label in points:
            colour = (0, 200, 0) if label else (0, 0, 230)
            cv2.circle(out, (int(round(x)), int(round(y))), 6, colour, -1)
            cv2.circle(out, (int(round(x)), int(round(y))), 6, (255, 255, 255), 1)
    if state.corner is not None:
        x, y = (int(round(v)) for v in state.corner)
        cv2.drawMarker(out, (x, y), (255, 255, 255), cv2.MARKER_CROSS, 16, 2)
    return out


def preview(state: WebState, bank: ModelBank, settings: Settings) -> np.ndarray | None:
    """The first frame (RGB) with what the prompts pick on it, as the run will, and the prompts."""
    if state.first is None:
        return None
    image = state.first
    if state.prompts or state.everything:
        loaded = bank.get(settings.config)
        config, segmenter = loaded.for_settings(settings)
        if state.segments is None or state.segments[0] != settings:
            state.segments = (settings, segmenter(image))  # once per upload and settings
        segments = state.segments[1]
        session = Session.for_prompts(config, state.prompts, everything=state.everything, segmenter=segmenter,
                                      text_scorer=loaded.text_scorer)
        dets, _ = session.process(image, segments)
        image = renderer(config.output).annotate(image, dets)
    return cv2.cvtColor(draw_prompts(image, state), cv2.COLOR_BGR2RGB)


# -- a run ---------------------------------------------------------------------------------------

def session_folder(state: WebState, workdir: Path) -> Path:
    """This session's own results folder (made on first use, with a name nobody can guess)."""
    if state.folder is None:
        state.folder = workdir / uuid.uuid4().hex
    state.folder.mkdir(parents=True, exist_ok=True)  # again, if pruned while the session was idle
    return state.folder


def prune_results(workdir: Path, max_age_s: float, keep: Path | None = None) -> list[Path]:
    """Remove the sessions' results folders under ``workdir`` last changed more than ``max_age_s``
    seconds ago (but not ``keep``); returns those removed."""
    cutoff, removed = time.time() - max_age_s, []
    for folder in sorted(workdir.glob("*")) if workdir.is_dir() else []:
        try:
            old = folder.is_dir() and folder != keep and folder.stat().st_mtime < cutoff
        except OSError:  # removed meanwhile
            continue
        if old:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def remove_folder(state: WebState | None) -> None:
    """Delete a session's results (when the session ends)."""
    if state is not None and state.folder is not None:
        shutil.rmtree(state.folder, ignore_errors=True)


@dataclass(frozen=True)
class JobLimits:
    """What one run may take, counted on what it decodes (not on what the upload's header claims):
    ``frames`` frames, ``pixels`` (width x height) a frame, ``seconds`` of wall time from its start.
    ``clock`` is called when the run starts and once for each frame decoded (tests pass a simulated
    one)."""

    frames: int = frame_cap()
    pixels: int = MAX_PIXELS
    seconds: float = MAX_JOB_MINUTES * 60
    clock: Callable[[], float] = time.monotonic


class LimitedSource(Source):
    """``inner``'s frames, ending the run with an RtsegError at the first frame past ``limits``
    (from the decoding thread: the frames before it go through the run first). Costs a count, a
    product and a clock read a frame."""

    def __init__(self, inner: Source, limits: JobLimits, started: float) -> None:
        self.inner, self.limits, self.started = inner, limits, started
        self.live, self.fps, self.name, self.size = inner.live, inner.fps, inner.name, inner.size

    def __iter__(self) -> Iterator[Frame]:
        lim = self.limits
        for done, frame in enumerate(self.inner):  # done: the frames before this one
            stopped = f"stopped at frame {done:,}"
            if done >= lim.frames:
                raise RtsegError(f"{stopped}: this server's limit is {lim.frames:,} frames (--max-frames)")
            h, w = frame.image.shape[:2]
            if w * h > lim.pixels:
                raise RtsegError(f"{stopped}: frame {done + 1:,} is {pixels_line(w, h, lim.pixels)}")
            elapsed = lim.clock() - self.started
            if elapsed > lim.seconds:
                raise RtsegError(f"{stopped} after {elapsed / 60:.1f} minutes: this server's limit is "
                                 f"{lim.seconds / 60:g} minutes a run (--max-job-minutes)")
            yield frame

    def close(self) -> None:
        self.inner.close()


_claims = threading.Lock()


def claim_run(state: WebState) -> None:
    """Mark the session's run as queued (Run was pressed); raises RtsegError (BUSY) when one already
    is queued or running: a session has one job at a time. :func:`release_run` when it ends."""
    with _claims:  # two presses at once: one gets the run
        if state.busy:
            raise RtsegError(BUSY)
        state.busy = True


def release_run(state: WebState) -> None:
    """The session's run ended (done, failed or cancelled): Run starts another."""
    state.busy = False


def end_session(state: WebState | None) -> None:
    """A session ended (its tab closed): its run, if any, stops after its current frame (and keeps
    nothing), and its results are deleted."""
    if state is not None:
        state.cancelled, state.busy = True, False
    remove_folder(state)


def zip_masks(folder: Path, out: Path) -> Path:
    """``out``: the PNGs of ``folder`` as ``masks/NAME.png`` entries."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for png in sorted(folder.glob("*.png")):
            z.write(png, f"masks/{png.name}")
    return out


class ObjectCounter(Sink):
    """A sink for the page: the frames each object was seen in, and the run's progress."""

    def __init__(self, progress: Callable[[int, int | None], None] | None, total: int | None,
                 state: WebState | None = None) -> None:
        self.progress, self.total, self.state = progress, total, state
        self.seen: dict[int, int] = {}
        self.prompts: dict[int, str] = {}
        self.frames = 0

    def write(self, result: FrameResult) -> None:
        dets = result.detections
        ids = dets.tracker_id if dets.tracker_id is not None else np.zeros(0, int)
        for oid, prompt in zip((int(v) for v in ids), prompts_of(dets)):
            self.seen[oid] = self.seen.get(oid, 0) + 1
            self.prompts.setdefault(oid, prompt)
        self.frames += 1
        if self.progress is not None:  # no total once the header's frame count is passed: it was wrong
            self.progress(self.frames, self.total if self.total and self.frames <= self.total else None)

    def pump(self, wait_ms: int) -> bool:
        """False (the run stops) once the session's Cancel button was pressed."""
        return self.state is None or not self.state.cancelled


def object_table(state: WebState, seen: dict[int, int], prompts: dict[int, str]) -> list[list[object]]:
    """Rows ``[id, prompt, frames seen]``: every prompted object (seen or not), then the others."""
    rows: dict[int, list[object]] = {k: [k, str(p), 0] for k, p in enumerate(numbered(state.prompts), start=1)}
    for oid, n in seen.items():
        rows[oid] = [oid, prompts.get(oid, ""), n]
    return [rows[k] for k in sorted(rows)]


def run_job(state: WebState, bank: ModelBank, settings: Settings, workdir: Path,
            progress: Callable[[int, int | None], None] | None = None, limits: JobLimits = JobLimits()) -> JobResult:
    """Track the session's objects through its upload with ``rtseg track``'s own loop and outputs:
    the overlay video (WebM, for the page), indexed PNG masks (zipped) and JSON lines. A run that
    is cancelled, fails, or passes ``limits`` raises RtsegError and keeps nothing."""
    started = limits.clock()
    if state.source is None or state.first is None:
        raise RtsegError("upload a video or an image first")
    if not state.prompts and not state.everything:
        raise RtsegError("nothing to track: click the first frame, draw or type a box, type a text, "
                         "or tick 'everything'")
    loaded = bank.get(settings.config)
    config, segmenter = loaded.for_settings(settings)
    config = override(config, output={"codec": VIDEO_CODEC})
    folder = session_folder(state, workdir)
    for old in folder.glob("run-*"):  # a session keeps its latest results only
        shutil.rmtree(old, ignore_errors=True)
    state.runs += 1
    out = folder / f"run-{state.runs}"
    video, jsonl = out / f"overlay{VIDEO_SUFFIX}", out / "tracks.jsonl"
    counter = ObjectCounter(progress, state.frames, state)
    sinks = [VideoSink(video, config.output.fps, config.output.codec, config.output.video), MaskSink(out / "masks"),
             JsonlSink(jsonl), counter]
    try:
        with open_upload(state) as src:
            session = Session.for_prompts(config, state.prompts, everything=state.everything, size=src.size,
                                          segmenter=segmenter, text_scorer=loaded.text_scorer)
            if not state.cancelled:
                run(LimitedSource(src, limits, started), session, sinks)
    except BaseException:  # a limit passed, a frame that does not decode, Ctrl-C: nothing partial kept
        shutil.rmtree(out, ignore_errors=True)
        raise
    if state.cancelled:
        shutil.rmtree(out, ignore_errors=True)
        raise RtsegError(f"cancelled after {counter.frames} of {state.frames or '?'} frames; nothing kept")
    masks_zip = zip_masks(out / "masks", out / "masks.zip")
    return JobResult(video, masks_zip, jsonl, object_table(state, counter.seen, counter.prompts), counter.frames)


# -- webcam --------------------------------------------------------------------------------------


def live_frame(state: WebState, bank: ModelBank, settings: Settings, rgb: np.ndarray,
               max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """One webcam frame (RGB) through this session's live Session: the frame with its overlay; a
    frame over ``max_pixels`` (what a browser sends is its own choice) is refused and not kept.

    The live Session is made again when the prompts or the settings change. Point and box prompts
    are in the pixels of the first frame (a capture from the camera, say)."""
    if rgb.shape[0] * rgb.shape[1] > max_pixels:
        raise RtsegError(f"the webcam frame is {pixels_line(rgb.shape[1], rgb.shape[0], max_pixels)}")
    state.last_live = rgb
    if not state.prompts and not state.everything:
        return rgb
    loaded = bank.get(settings.config)
    if state.live is None or state.live[:2] != (state.version, settings):
        config, segmenter = loaded.for_settings(settings)
        session = Session.for_prompts(config, state.prompts, everything=state.everything, segmenter=segmenter,
                                      text_scorer=loaded.text_scorer)
        state.live = (state.version, settings, session, RateMeter())
    session, meter = state.live[2:]
    image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    dets, timings = session.process(image)
    meter.tick(timings)
    return cv2.cvtColor(renderer(session.config.output).annotate(image, dets, meter.line()), cv2.COLOR_BGR2RGB)
