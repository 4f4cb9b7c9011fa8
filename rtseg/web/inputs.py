"""What one browser session of ``rtseg web`` gives: its upload or webcam frame, and the prompts
clicked, drawn or typed on it.

A :class:`WebState` is one session's own: its upload, its first frame, its prompts and its results
folder. The functions here change it, and raise :class:`~rtseg.errors.RtsegError` with a message
for the page when the input is bad; none of them imports gradio, so they are tested without a
browser. What a session runs is in :mod:`rtseg.web.jobs`.

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

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np
import supervision as sv

from PIL import Image

from rtseg.capture.base import Source
from rtseg.capture.sources import ImageFolderSource, VideoFileSource
from rtseg.errors import RtsegError
from rtseg.prompt.prompts import BoxPrompt, ConceptPrompt, PointPrompt, Prompt, TextPrompt, validate, with_negative
from rtseg.web.models import Settings

if TYPE_CHECKING:
    from rtseg.runner import RateMeter
    from rtseg.session import Session

ClickMode = Literal["object", "negative", "box"]
CLICK_MODES: dict[str, ClickMode] = {"new object (point)": "object", "negative point (last object)": "negative",
                                     "box (two corners)": "box"}


@dataclass
class WebState:
    """One browser session's data: nothing here is shared with another session."""

    folder: Path | None = None  # this session's results, under the server's work folder
    source: Path | None = None
    kind: str = ""  # "image" or "video", by the upload's content (not its name)
    name: str = ""
    first: np.ndarray | None = None  # BGR (H, W, 3) uint8
    frames: int | None = None
    prompts: list[Prompt] = field(default_factory=list)
    everything: bool = False
    corner: tuple[float, float] | None = None  # the first corner of a box being drawn
    segments: tuple[Settings, sv.Detections] | None = None  # the first frame's, for the preview
    live: tuple[int, Settings, Session, RateMeter] | None = None  # the webcam's session, for a prompts version
    last_live: np.ndarray | None = None  # the webcam's latest frame, RGB
    version: int = 0  # counts prompt changes
    runs: int = 0
    cancelled: bool = False  # set by the Cancel button: the run stops after its current frame
    busy: bool = False  # a run of this session is queued or running (one at a time: jobs.claim_run)

    def changed(self) -> None:
        self.version += 1


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


MAX_PIXELS, MAX_MINUTES = 3840 * 2160, 30.0  # the defaults of --max-pixels and --max-minutes
LIMIT_FPS = 30  # --max-frames' default: --max-minutes at this rate (a file's own frame rate can lie)


def frame_cap(max_minutes: float = MAX_MINUTES) -> int:
    """The default of --max-frames: ``max_minutes`` of video at LIMIT_FPS.

    >>> frame_cap(30)
    54000
    """
    return max(1, int(max_minutes * 60 * LIMIT_FPS))


def pixels_line(w: int, h: int, max_pixels: int) -> str:
    """What is said of a frame of ``w`` x ``h`` over ``max_pixels``."""
    return f"{w}x{h}, larger than this server's limit of {max_pixels} pixels a frame (--max-pixels)"
# What OpenCV reads as an image, by the file's first bytes (PIL's names for the formats).
IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"BM", "BMP"), (b"II*\x00", "TIFF"),
               (b"MM\x00*", "TIFF"), (b"RIFF", "WEBP"))


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the header of a PNG, JPEG, BMP, TIFF or WebP file (nothing decoded), or
    None for any other content. (PIL's plugins directly: ultralytics patches ``Image.open`` to
    install a package on a file PIL does not know.)"""
    with open(path, "rb") as fp:
        head = fp.read(16)
        fmt = next((f for magic, f in IMAGE_MAGIC if head.startswith(magic)), None)
        if fmt is None or (fmt == "WEBP" and head[8:12] != b"WEBP"):
            return None
        Image.init()
        fp.seek(0)
        try:
            w, h = Image.OPEN[fmt][0](fp, path.name).size
        except (SyntaxError, OSError, ValueError, EOFError):
            return None
    return int(w), int(h)


def probe(path: Path, max_pixels: int = MAX_PIXELS, max_minutes: float = MAX_MINUTES,
          max_frames: int | None = None) -> str:
    """``"image"`` or ``"video"``, from the file's content (its header), whatever its name; raises
    RtsegError for a file that is neither, or whose frames are larger than ``max_pixels`` or whose
    length is over ``max_minutes`` or ``max_frames``, before any frame is decoded.

    A header can lie: this only refuses early what says it is too large. A run counts what it
    decodes (:class:`rtseg.web.jobs.JobLimits`)."""
    name = path.name
    size = image_size(path)
    if size is not None:
        kind, (w, h) = "image", size
    else:
        cap = cv2.VideoCapture(str(path))  # opens the container: its header, no frame decoded here
        try:
            if not cap.isOpened():
                raise RtsegError(f"cannot read {name}: not a video or an image file")
            kind, w, h = "video", int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
            frames, fps = cap.get(cv2.CAP_PROP_FRAME_COUNT), cap.get(cv2.CAP_PROP_FPS)
        finally:
            cap.release()
        if frames > 0 and fps > 0 and frames / fps > max_minutes * 60:
            raise RtsegError(f"{name} is {frames / fps / 60:.0f} minutes long, more than this server's limit of "
                             f"{max_minutes:g} minutes (--max-minutes)")
        if max_frames is not None and frames > max_frames:
            raise RtsegError(f"{name} has {frames:,.0f} frames, more than this server's limit of {max_frames:,} "
                             "frames (--max-frames)")
    if w * h > max_pixels:
        raise RtsegError(f"{name} is {pixels_line(w, h, max_pixels)}")
    return kind


def open_upload(state: WebState) -> Source:
    """The session's upload as a source, read as what its content is (not what its name says)."""
    if state.source is None:
        raise RtsegError("upload a video or an image first")
    if state.kind == "image":
        return ImageFolderSource([state.source], state.name)
    return VideoFileSource(state.source)


def load_source(state: WebState, path: str | Path, max_bytes: int, max_pixels: int = MAX_PIXELS,
                max_minutes: float = MAX_MINUTES, max_frames: int | None = None) -> str:
    """Make the uploaded video or image this session's source (forgetting its prompts); returns a
    line about it. Raises RtsegError, naming the file but not the server's folders, for bad input:
    empty, over ``max_bytes``, neither a video nor an image, frames over ``max_pixels`` (as its
    header says, then as its first frame decodes), longer than ``max_minutes`` or ``max_frames``
    (as its header says)."""
    path = Path(path)
    check_upload(path, max_bytes)
    kind = probe(path, max_pixels, max_minutes, max_frames)
    upload = WebState(source=path, kind=kind, name=path.name)
    try:
        src = open_upload(upload)
        with src:
            first = next(iter(src)).image
    except RtsegError as exc:
        raise RtsegError(str(exc).replace(str(path), path.name)) from None
    except StopIteration:
        raise RtsegError(f"{path.name} has no frames") from None
    h, w = first.shape[:2]
    if w * h > max_pixels:  # the header said less
        raise RtsegError(f"{path.name}: its first frame decodes as {pixels_line(w, h, max_pixels)}")
    state.source, state.kind, state.name, state.first = path, kind, path.name, first
    state.frames = src.frame_count if isinstance(src, VideoFileSource) else 1
    state.segments = None
    reset_prompts(state)
    count = f"{state.frames} frames" if state.frames else "frames: unknown"
    return f"**{path.name}**: {w}x{h}, {count}. Click the first frame to add objects."


def forget_source(state: WebState) -> None:
    """No upload and no first frame any more (nor prompts, which were on it)."""
    state.source, state.kind, state.name, state.first, state.frames, state.segments = None, "", "", None, None, None
    reset_prompts(state)


def use_frame(state: WebState, rgb: np.ndarray) -> str:
    """Make a webcam frame (RGB) the first frame to click on (forgetting the prompts)."""
    state.source, state.kind, state.name, state.frames, state.segments = None, "", "webcam frame", None, None
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
    if isinstance(prompt, ConceptPrompt) and state.everything:
        raise RtsegError("every instance of a text, or everything: untick one")
    state.prompts.append(_checked(state, prompt))
    state.changed()
    return f"object {len(state.prompts)}: {prompt}" if not isinstance(prompt, ConceptPrompt) else f"every {prompt}"


def text_prompt(text: str, clip_error: str | None, every: bool = False) -> TextPrompt | ConceptPrompt:
    """A typed text prompt (with ``every``, a concept: every instance of it), refused when the
    server has no CLIP model."""
    if not text.strip():
        raise RtsegError("type a text first, e.g. \"the red circle\"")
    if clip_error:
        raise RtsegError(f"text prompts are not available: {clip_error}")
    return ConceptPrompt(text.strip()) if every else TextPrompt(text.strip())


def reset_prompts(state: WebState) -> None:
    state.prompts, state.everything, state.corner = [], False, None
    state.changed()


def describe(state: WebState) -> str:
    """The session's objects as a Markdown list."""
    lines = [f"{k}. {p}" if not isinstance(p, ConceptPrompt) else f"{k}. every {p} (each its own id)"
             for k, p in enumerate(state.prompts, start=1)]
    if state.everything:
        lines.append(f"{len(lines) + 1}. everything (each other segment gets its own id)")
    if state.corner is not None:
        lines.append(f"(box being drawn from {state.corner[0]:g},{state.corner[1]:g})")
    return "\n".join(lines) if lines else "No objects yet."
