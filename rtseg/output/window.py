"""The live window, a sink: overlays as they happen, and prompts by mouse.

Left click: a new object at that point. Left drag: a new object in that box. Corrections to an object
that runs, keeping its id: right click a negative point for the object clicked on (else the last
one); Shift + click or Shift + drag a new point or box for the object the press began on (else the
last one); middle click forgets the object clicked on. Keys: space pauses, r resets, q or Esc quits.

A frame larger than ``output.window_size`` (default 1280x720) is shown scaled down to fit it, aspect
kept (never scaled up), by :func:`~rtseg.output.render.shrink` on the output thread. The window can be resized; the
next frames are scaled to the size it then has. Clicks are mapped back to the source frame's pixels
(:func:`to_source`), so prompts, masks and JSON stay at the source's resolution.

The title says what is on the screen once a frame is shown: ``rtseg - SOURCE (640x480)``, or
``(960x540 of 1920x1080)`` when scaled, and ``- paused after N frames`` while paused (N: the frames
taken so far, each of which is written to the outputs).
"""

from __future__ import annotations

import math
import sys
from typing import NamedTuple

import cv2
import numpy as np
import supervision as sv

from rtseg.errors import RtsegError
from rtseg.output.render import fit, shrink
from rtseg.output.sinks import Sink, StreamInfo
from rtseg.prompt.prompts import BoxPrompt, PointPrompt
from rtseg.session import FrameResult, Session

DRAG_PX = 6  # a press and release further apart than this (window pixels) is a box


def to_source(x: int, y: int, shown: tuple[int, int], source: tuple[int, int]) -> tuple[float, float]:
    """The source pixel under pixel (x, y) of a frame shown at ``shown`` (width, height): the one holding
    that pixel's centre. The identity when nothing is scaled; points off the frame stay off it.

    >>> to_source(100, 50, (1280, 720), (1920, 1080)), to_source(1279, 719, (1280, 720), (1920, 1080))
    ((150.0, 75.0), (1919.0, 1079.0))
    >>> to_source(7, 9, (640, 480), (640, 480)), to_source(-1, 9, (640, 480), (640, 480))
    ((7.0, 9.0), (-1.0, 9.0))
    """
    return (float(math.floor((x + 0.5) * source[0] / shown[0])),
            float(math.floor((y + 0.5) * source[1] / shown[1])))


class _Frame(NamedTuple):
    image: np.ndarray  # the overlay as shown, (h, w, 3) uint8
    source: tuple[int, int]  # the source frame's (width, height)
    objects: sv.Detections | None = None  # what it shows: a click on one corrects it

    def object_at(self, x: float, y: float) -> int | None:
        """The id of the smallest object whose mask holds source pixel (x, y), if any."""
        d = self.objects
        if d is None or d.tracker_id is None or d.mask is None:
            return None
        hits = [k for k, (x1, y1, x2, y2) in enumerate(d.xyxy) if x1 <= x <= x2 and y1 <= y <= y2
                and np.asarray(d.mask[k:k + 1])[0][int(y), int(x)]]
        return int(d.tracker_id[min(hits, key=lambda k: float(d.area[k]))]) if hits else None

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[1], self.image.shape[0]


class Window(Sink):
    """Shows each overlay (handed over by :meth:`write` on the output thread, drawn by :meth:`pump`
    on the main thread, as OpenCV's GUI wants) and turns mouse input into the session's prompts.
    ``title``: the window's title (None: ``rtseg - SOURCE``). ``max_size``: (width, height) that
    larger frames are scaled down to fit when the window opens (None: the session's
    ``output.window_size``)."""

    overlay = True

    def __init__(self, session: Session, title: str | None = None, max_size: tuple[int, int] | None = None) -> None:
        self.title, self.session = title or "", session
        self.paused = False
        # Frames are shown scaled to fit this (the runner may draw the overlay no larger than it).
        self.overlay_fit: tuple[int, int] = max_size or session.config.output.window
        self.last: _Frame | None = None  # the newest overlay, scaled
        self.shown: _Frame | None = None  # the one on the screen, that clicks refer to
        self._press: tuple[int, int] | None = None
        self._last_object: int | None = None
        self.messages: list[str] = []  # what gestures could not do: printed (stderr) at the next pump
        self.taken = 0  # frames taken by the run: the runner pumps once after each (and while paused)
        self._shown_title = ""  # the title on the screen, with its state (see state_title)

    def open(self, stream: StreamInfo) -> None:
        self.title = self.title or f"rtseg - {stream.name}"
        self._shown_title = self.title
        try:  # NORMAL: the user may resize it (OpenCV then maps the mouse to the shown image's pixels)
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
        except cv2.error as exc:
            raise RtsegError(f"cannot open a window: {str(exc).splitlines()[0]}") from exc
        cv2.setMouseCallback(self.title, self._on_mouse)

    def close(self) -> None:
        cv2.destroyWindow(self.title)
        cv2.waitKey(1)

    def _on_mouse(self, event: int, x: int, y: int, flags: int, param: object) -> None:
        if self.shown is None:
            return
        shown, source = self.shown.size, self.shown.source
        try:
            if event == cv2.EVENT_LBUTTONDOWN:
                self._press = (x, y)
            elif event == cv2.EVENT_LBUTTONUP and self._press is not None:
                (x0, y0), self._press = self._press, None
                start = to_source(x0, y0, shown, source)
                # with Shift, a correction to the object the press began on (else to the last one)
                fix = (self.shown.object_at(*start) or self._last_object) if flags & cv2.EVENT_FLAG_SHIFTKEY else None
                if abs(x - x0) <= DRAG_PX and abs(y - y0) <= DRAG_PX:
                    prompt: PointPrompt | BoxPrompt = PointPrompt((to_source(x, y, shown, source),), (1,))
                else:
                    (ax, ay), (bx, by) = start, to_source(x, y, shown, source)
                    prompt = BoxPrompt((min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)))
                if fix is not None:
                    self.session.correct(fix, prompt)
                    self._last_object = fix
                elif not flags & cv2.EVENT_FLAG_SHIFTKEY:
                    self._last_object = self.session.add(prompt)
            elif event == cv2.EVENT_RBUTTONDOWN:  # a negative point for the object clicked on, else the last one
                point = to_source(x, y, shown, source)
                target = self.shown.object_at(*point) or self._last_object
                if target is not None:
                    self.session.add_negative(target, point)
            elif event == cv2.EVENT_MBUTTONDOWN:  # forget the object clicked on
                target = self.shown.object_at(*to_source(x, y, shown, source))
                if target is not None:
                    self.session.forget(target)
                    self._last_object = None if target == self._last_object else self._last_object
        except RtsegError as exc:  # e.g. a point outside the frame: say so, keep running
            self.messages.append(str(exc))

    def write(self, result: FrameResult) -> None:
        overlay = result.overlay
        if overlay is None:  # drawn by the runner for every frame, as this sink asks (overlay = True)
            return
        source = (result.image.shape[1], result.image.shape[0])  # clicks map to these pixels
        drawn = (overlay.shape[1], overlay.shape[0])  # the source's size, or smaller when the runner drew it so
        size = fit(source, self.overlay_fit)
        if drawn[0] < size[0] or drawn[1] < size[1]:
            size = drawn  # never scaled up: OpenCV stretches it to the window
        self.last = _Frame(overlay if size == drawn else shrink(overlay, size), source, result.detections)

    def pump(self, wait_ms: int) -> bool:
        """Draw the newest overlay and handle input for ``wait_ms`` (at least 1 ms); False when the
        user quits. Nothing happens before the first overlay."""
        if not self.paused:
            self.taken += 1
        frame = self.last
        if frame is None:
            return True
        if frame is not self.shown:
            if self.shown is None:  # the window opens at the first frame's (scaled) size
                cv2.resizeWindow(self.title, *frame.size)
            cv2.imshow(self.title, frame.image)
            self.shown = frame
        if not self._keys(cv2.waitKey(max(wait_ms, 1))):
            return False
        for message in self.messages:  # what a gesture could not do (e.g. a click outside the frame)
            print(f"rtseg: {message}", file=sys.stderr)
        self.messages.clear()
        self._follow_resize()
        title = self.state_title()
        if title != self._shown_title:
            try:
                cv2.setWindowTitle(self.title, title)
            except cv2.error:  # closed meanwhile: the next pump says so
                return True
            self._shown_title = title
        return True

    def state_title(self) -> str:
        """The title with what is on the screen: the shown frame's size (and the source's, when
        scaled), and whether the run is paused, after how many frames."""
        title = self.title
        if self.shown is not None:
            size, source = self.shown.size, self.shown.source
            title += f" ({size[0]}x{size[1]}" + (f" of {source[0]}x{source[1]})" if size != source else ")")
        if self.paused:
            title += f" - paused after {self.taken} frames"
        return title

    def _follow_resize(self) -> None:
        """When the image area differs from the shown frame (the user or the window manager resized
        the window), scale the next frames to it."""
        try:
            _, _, w, h = cv2.getWindowImageRect(self.title)
        except cv2.error:
            return
        if w > 0 and h > 0 and self.shown is not None and (w, h) != self.shown.size:
            self.overlay_fit = (w, h)

    def _keys(self, key: int) -> bool:
        key &= 0xFF
        if key in (ord("q"), 27):
            return False
        if key == ord(" "):
            self.paused = not self.paused
        elif key == ord("r"):
            self.session.reset()
            self._last_object = None
        try:
            if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                return False  # closed with the window manager
        except cv2.error:
            return False
        return True
