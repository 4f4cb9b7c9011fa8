"""What one browser session of ``rtseg web`` holds and does, apart from the page itself.

A :class:`WebState` is one session's own: its upload, its first frame, its prompts and its results
folder. The functions here change it or work from it, and raise :class:`~rtseg.errors.RtsegError`
with a message for the page when the input is bad; none of them imports gradio, so they are tested
without a browser.

>>> state = WebState(first=np.zeros((48, 64, 3), np.uint8))
>>> click(state, 10, 20, "object")
'object 1: point +10,20'
>>> click(state, 30, 20, "negative")
'object 1: negative point 30,20'
>>> click(state, 5, 5, "box"), click(state, 40, 30, "box")
('box: first corner 5,5; click the opposite corner', 'object 2: box 5,5,40,30')
>>> [str(p) for p in state.prompts]
['point +10,20 -30,20', 'box 5,5,40,30']
"""

from __future__ import annotations

import functools
import shutil
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import cv2
import numpy as np
import supervision as sv

from rtseg.app import run_track
from rtseg.capture import VideoFileSource, open_source
from rtseg.config import OutputConfig, override
from rtseg.errors import RtsegError
from rtseg.pipeline import FrameResult, Session
from rtseg.prompts import BoxPrompt, PointPrompt, Prompt, TextPrompt, validate, with_negative
from rtseg.render import Renderer
from rtseg.web.models import ModelBank, Settings

ClickMode = Literal["object", "negative", "box"]
CLICK_MODES: dict[str, ClickMode] = {"new object (point)": "object", "negative point (last object)": "negative",
                                     "box (two corners)": "box"}
VIDEO_CODEC, VIDEO_SUFFIX = "VP80", ".webm"  # what OpenCV writes and browsers play without a plug-in


@dataclass
class WebState:
    """One browser session's data: nothing here is shared with another session."""

    folder: Path | None = None  # this session's results, under the server's work folder
    source: Path | None = None
    name: str = ""
    first: np.ndarray | None = None  # BGR (H, W, 3) uint8
    frames: int | None = None
    prompts: list[Prompt] = field(default_factory=list)
    everything: bool = False
    corner: tuple[float, float] | None = None  # the first corner of a box being drawn
    segments: tuple[Settings, sv.Detections] | None = None  # the first frame's, for the preview
    live: tuple[int, Settings, Session] | None = None  # the webcam's session, for a prompts version
    last_live: np.ndarray | None = None  # the webcam's latest frame, RGB
    version: int = 0  # counts prompt changes
    runs: int = 0

    def changed(self) -> None:
        self.version += 1


@dataclass
class JobResult:
    """What a run leaves for the page."""

    video: Path
    masks_zip: Path
    jsonl: Path
    table: list[list[object]]
    frames: int


# -- upload --------------------------------------------------------------------------------------

def check_upload(path: str | Path, max_bytes: int) -> None:
    """Raise RtsegError for an upload that is empty or larger than ``max_bytes``."""
    name = Path(path).name
    try:
        size = Path(path).stat().st_size
    except OSError as exc:
        raise RtsegError(f"cannot read the upload {name}: {exc.strerror}") from exc
    if size == 0:
        raise RtsegError(f"{name} is empty (0 bytes): upload a video or an image")
    if size > max_bytes:
        raise RtsegError(f"{name} is {size / 2**20:.1f} MB, more than this server's limit of "
                         f"{max_bytes / 2**20:.0f} MB")


def load_source(state: WebState, path: str | Path, max_bytes: int) -> str:
    """Make the uploaded video or image this session's source (forgetting its prompts); returns a
    line about it. Raises RtsegError, naming the file but not the server's folders, for bad input."""
    path = Path(path)
    check_upload(path, max_bytes)
    try:
        src = open_source(str(path))
        with src:
            first = next(iter(src)).image
    except RtsegError as exc:
        raise RtsegError(str(exc).replace(str(path), path.name)) from None
    except StopIteration:
        raise RtsegError(f"{path.name} has no frames") from None
    if src.live:
        raise RtsegError(f"{path.name} is not a video or an image file")
    state.source, state.name, state.first = path, path.name, first
    state.frames = src.frame_count if isinstance(src, VideoFileSource) else 1
    state.segments = None
    reset_prompts(state)
    h, w = first.shape[:2]
    count = f"{state.frames} frames" if state.frames else "frames: unknown"
    return f"**{path.name}**: {w}x{h}, {count}. Click the first frame to add objects."


def forget_source(state: WebState) -> None:
    """No upload and no first frame any more (nor prompts, which were on it)."""
    state.source, state.name, state.first, state.frames, state.segments = None, "", None, None, None
    reset_prompts(state)


def use_frame(state: WebState, rgb: np.ndarray) -> str:
    """Make a webcam frame (RGB) the first frame to click on (forgetting the prompts)."""
    state.source, state.name, state.frames, state.segments = None, "webcam frame", None, None
    state.first = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    reset_prompts(state)
    h, w = state.first.shape[:2]
    return f"**Webcam frame**: {w}x{h}. Click it to add objects; the live overlay follows them."


# -- prompts -------------------------------------------------------------------------------------

def _checked(state: WebState, prompt: Prompt) -> Prompt:
    if state.first is None:
        raise RtsegError("upload a video or an image first")
    h, w = state.first.shape[:2]
    validate(prompt, w, h)
    return prompt


def click(state: WebState, x: float, y: float, mode: ClickMode) -> str:
    """A click on the first frame at pixel (x, y): a new object, a negative point for the last
    object, or a corner of a box. Returns what it did."""
    if mode == "negative":
        if not state.prompts:
            raise RtsegError("a negative point belongs to an object: add one first")
        state.prompts[-1] = _checked(state, with_negative(state.prompts[-1], (x, y)))
        state.changed()
        return f"object {len(state.prompts)}: negative point {x:g},{y:g}"
    if mode == "box":
        if state.corner is None:
            _checked(state, PointPrompt(((x, y),), (1,)))
            state.corner = (x, y)
            return f"box: first corner {x:g},{y:g}; click the opposite corner"
        (x0, y0), state.corner = state.corner, None
        if x == x0 or y == y0:
            raise RtsegError("a box needs two corners that differ in x and in y")
        return add(state, BoxPrompt((min(x0, x), min(y0, y), max(x0, x), max(y0, y))))
    return add(state, PointPrompt(((x, y),), (1,)))


def add(state: WebState, prompt: Prompt) -> str:
    """Add a new object; returns what was added."""
    state.prompts.append(_checked(state, prompt))
    state.changed()
    return f"object {len(state.prompts)}: {prompt}"


def text_prompt(text: str, clip_error: str | None) -> TextPrompt:
    """A typed text prompt, refused when the server has no CLIP model."""
    if not text.strip():
        raise RtsegError("type a text first, e.g. \"the red circle\"")
    if clip_error:
        raise RtsegError(f"text prompts are not available: {clip_error}")
    return TextPrompt(text.strip())


def reset_prompts(state: WebState) -> None:
    state.prompts, state.everything, state.corner = [], False, None
    state.changed()


def describe(state: WebState) -> str:
    """The session's objects as a Markdown list."""
    lines = [f"{k}. {p}" for k, p in enumerate(state.prompts, start=1)]
    if state.everything:
        lines.append(f"{len(lines) + 1}. everything (each other segment gets its own id)")
    if state.corner is not None:
        lines.append(f"(box being drawn from {state.corner[0]:g},{state.corner[1]:g})")
    return "\n".join(lines) if lines else "No objects yet."


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
        points = (list(zip(p.points, p.labels)) if isinstance(p, PointPrompt)
                  else [(q, 0) for q in p.negatives])
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
        session = Session(config, everything=state.everything, segmenter=lambda _: segments,
                          text_scorer=loaded.text_scorer)
        for p in state.prompts:
            session.add(p)
        dets, _ = session.process(image)
        image = renderer(config.output).annotate(image, dets)
    return cv2.cvtColor(draw_prompts(image, state), cv2.COLOR_BGR2RGB)


# -- a run ---------------------------------------------------------------------------------------

def session_folder(state: WebState, workdir: Path) -> Path:
    """This session's own results folder (made on first use, with a name nobody can guess)."""
    if state.folder is None:
        state.folder = workdir / uuid.uuid4().hex
        state.folder.mkdir(parents=True)
    return state.folder


def remove_folder(state: WebState | None) -> None:
    """Delete a session's results (when the session ends)."""
    if state is not None and state.folder is not None:
        shutil.rmtree(state.folder, ignore_errors=True)


def zip_masks(folder: Path, out: Path) -> Path:
    """``out``: the PNGs of ``folder`` as ``masks/NAME.png`` entries."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for png in sorted(folder.glob("*.png")):
            z.write(png, f"masks/{png.name}")
    return out


def object_table(state: WebState, seen: dict[int, int], prompts: dict[int, str]) -> list[list[object]]:
    """Rows ``[id, prompt, frames seen]``: every prompted object (seen or not), then the others."""
    rows: dict[int, list[object]] = {k: [k, str(p), 0] for k, p in enumerate(state.prompts, start=1)}
    for oid, n in seen.items():
        rows[oid] = [oid, prompts.get(oid, ""), n]
    return [rows[k] for k in sorted(rows)]


def run_job(state: WebState, bank: ModelBank, settings: Settings, workdir: Path,
            progress: Callable[[int, int | None], None] | None = None) -> JobResult:
    """Track the session's objects through its upload with ``rtseg track``'s own loop and outputs:
    the overlay video (WebM, for the page), indexed PNG masks (zipped) and JSON lines."""
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
    seen: dict[int, int] = {}
    names: dict[int, str] = {}
    done = [0]

    def on_result(result: FrameResult) -> None:
        dets = result.detections
        ids = dets.tracker_id if dets.tracker_id is not None else np.zeros(0, int)
        for i, oid in enumerate(int(v) for v in ids):
            seen[oid] = seen.get(oid, 0) + 1
            names.setdefault(oid, str(dets.data["prompt"][i]) if "prompt" in dets.data else "")
        done[0] += 1
        if progress is not None:
            progress(done[0], state.frames)

    video, jsonl = out / f"overlay{VIDEO_SUFFIX}", out / "tracks.jsonl"
    run_track(str(state.source), config, list(state.prompts), everything=state.everything, output=str(video),
              masks=str(out / "masks"), jsonl=str(jsonl), show=False, quiet=True, segmenter=segmenter,
              text_scorer=loaded.text_scorer, on_result=on_result)
    masks_zip = zip_masks(out / "masks", out / "masks.zip")
    return JobResult(video, masks_zip, jsonl, object_table(state, seen, names), done[0])


# -- webcam --------------------------------------------------------------------------------------


def live_frame(state: WebState, bank: ModelBank, settings: Settings, rgb: np.ndarray) -> np.ndarray:
    """One webcam frame (RGB) through this session's live Session: the frame with its overlay.

    The live Session is made again when the prompts or the settings change. Point and box prompts
    are in the pixels of the first frame (a capture from the camera, say).
    """
    state.last_live = rgb
    if not state.prompts and not state.everything:
        return rgb
    loaded = bank.get(settings.config)
    if state.live is None or state.live[:2] != (state.version, settings):
        config, segmenter = loaded.for_settings(settings)
        session = Session(config, everything=state.everything, segmenter=segmenter, text_scorer=loaded.text_scorer)
        for p in state.prompts:
            session.add(p)
        state.live = (state.version, settings, session)
    session = state.live[2]
    image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    dets, timings = session.process(image)
    stats = " ".join(f"{k} {v:.0f}ms" for k, v in timings.items())
    return cv2.cvtColor(renderer(session.config.output).annotate(image, dets, stats), cv2.COLOR_BGR2RGB)
