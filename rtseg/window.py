"""The live window: overlays as they happen, and prompts by mouse.

Left click: a new object at that point. Left drag: a new object in that box. Right click: a negative
point for the last object. Keys: space pauses, r resets, q or Esc quits.
"""

from __future__ import annotations

import cv2
import numpy as np

from rtseg.errors import RtsegError
from rtseg.pipeline import Session
from rtseg.prompts import BoxPrompt, PointPrompt

DRAG_PX = 6  # a press and release further apart than this is a box


class Window:
    def __init__(self, title: str, session: Session) -> None:
        self.title, self.session = title, session
        self.paused = False
        self.last: np.ndarray | None = None
        self._press: tuple[int, int] | None = None
        self._last_object: int | None = None
        self.messages: list[str] = []

    def __enter__(self) -> "Window":
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
        except cv2.error as exc:
            raise RtsegError(f"cannot open a window: {str(exc).splitlines()[0]}") from exc
        cv2.setMouseCallback(self.title, self._on_mouse)
        return self

    def __exit__(self, *exc: object) -> None:
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

    def show(self, image: np.ndarray) -> bool:
        """Draw a frame and handle input; False when the user quits."""
        self.last = image
        cv2.imshow(self.title, image)
        return self._keys(cv2.waitKey(1))

    def poll(self, ms: int) -> bool:
        """While paused: keep the window responsive; False when the user quits."""
        if self.last is not None:
            cv2.imshow(self.title, self.last)
        return self._keys(cv2.waitKey(ms))

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
