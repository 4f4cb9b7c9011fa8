"""Writing outputs behind the model: each frame's outputs are handled on one thread, in order,
through a bounded queue (back-pressure instead of growing memory), and an error there reaches the
caller.

>>> seen = []
>>> with Worker(seen.append, maxsize=2) as w:
...     for i in range(5):
...         w.put(i)
>>> seen
[0, 1, 2, 3, 4]
"""

from __future__ import annotations

import contextvars
import queue
import threading
from typing import Callable, Generic, TypeVar

T = TypeVar("T")
_END = object()


class Worker(Generic[T]):
    """Runs ``handle(item)`` on its own thread for each item ``put``, in order.

    ``put`` blocks while ``maxsize`` items wait (back-pressure instead of growing memory) and raises
    the worker's error, if it failed. ``close`` handles what is queued, stops the thread and raises
    its error; as a context manager it closes on exit, also after an exception.
    """

    def __init__(self, handle: Callable[[T], None], maxsize: int = 8, name: str = "worker") -> None:
        self.handle = handle
        self.q: queue.Queue = queue.Queue(maxsize)
        self.error: BaseException | None = None
        # The thread runs in a copy of the caller's context: context variables set for the caller (a
        # web request's progress bar, say) are seen by ``handle`` too.
        self.thread = threading.Thread(target=contextvars.copy_context().run, args=(self._run,), name=name,
                                       daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.q.get()
            if item is _END:
                return
            if self.error is None:
                try:
                    self.handle(item)
                except BaseException as exc:
                    self.error = exc

    def put(self, item: T) -> None:
        if self.error is not None:
            raise self.error
        self.q.put(item)

    def close(self) -> None:
        if self.thread.is_alive():
            self.q.put(_END)
            self.thread.join()
        if self.error is not None:
            raise self.error

    def __enter__(self) -> "Worker[T]":
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        try:
            self.close()
        except BaseException:
            if exc_type is None:  # do not hide the error that is already on its way out
                raise
