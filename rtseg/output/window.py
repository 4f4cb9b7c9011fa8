"""The live window, a sink: overlays as they happen, and prompts by mouse.

Left click: a new object at that point. Left drag: a new object in that box. Right click: a negative
point for the last object. Keys: space pauses, r resets, q or Esc quits.
"""

from __future__ import annotations

import cv2
import numpy as np

from rtseg.errors import RtsegError
from rtseg.output.sinks import Sink, StreamInfo
from rtseg.prompt.prompts import BoxPrompt, PointPrompt
from rtseg.session import FrameResult, Session

DRAG_PX = 6  # a press and release further apart than this is a box


class Window(Sink):
    """Shows each overlay (handed over by :meth:`write` on the output thread, drawn by :meth:`pump`
    on the main thread, as OpenCV's GUI wants) and turns mouse input into the session's prompts.
    ``title``: the window's title (None: ``rtseg - SOURCE``)."""

    overlay = True

    def __init__(self, session: Session, title: str | None = None) -> None:
        self.title, self.session = title or "", session
        self.paused = False
        self.last: np.ndarray | None = None  # the newest overlay
        self._press: tuple[int, int] | None = None
        self._last_object: int | None = None
        self.messages: list[str] = []

    def open(self, stream: StreamInfo) -> None:
        self.title = self.title or f"rtseg - {stream.name}"
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
        except cv2.error as exc:
            raise RtsegError(f"cannot open a window: {str(exc).splitlines()[0]}") from exc
        cv2.setMouseCallback(self.title, self._on_mouse)

    def close(self) -> None:
        cv2.destroyWindow(self.title)
        cv2.waitKey(1)

    def _on_mouse(self, event: int, x: int, y: int, flags: int, param: object) -> None:
        try:
            if event == cv2.EVENT_LBUTTONDOWN:
                self._press = (x, y)
            elif event == cv2.EVENT_LBUTTONUP and self._press is not None:
                (x0, y0), self._press = self._press, None
                if abs(x - x0) <= DRAG_PX and abs(y - y0) <= DRAG_PX:
                    self._last_object = self.session.add(PointPrompt(((float(x), float(y)),), (1,)))
                else:
                    box = (float(min(x, x0)), float(min(y, y0)), float(max(x, x0)), float(max(y, y0)))
                    self._last_object = self.session.add(BoxPrompt(box))
            elif event == cv2.EVENT_RBUTTONDOWN and self._last_object is not None:
                self.session.add_negative(self._last_object, (float(x), float(y)))
        except RtsegError as exc:  # e.g. a point outside the frame: say so, keep running
            self.messages.append(str(exc))

    def write(self, result: FrameResult) -> None:
        self.last = result.overlay

    def pump(self, wait_ms: int) -> bool:
        """Draw the newest overlay and handle input for ``wait_ms`` (at least 1 ms); False when the
        user quits. Nothing happens before the first overlay."""
        image = self.last
        if image is None:
            return True
        cv2.imshow(self.title, image)
        return self._keys(cv2.waitKey(max(wait_ms, 1)))

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
