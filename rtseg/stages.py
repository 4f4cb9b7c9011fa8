"""Overlapping stages: decoding ahead of the model, and writing outputs behind it, on threads joined by
bounded queues. Order is kept, nothing is dropped, memory is bounded by the queue sizes, and an
error on any thread reaches the caller.

>>> list(prefetch(iter(range(5)), maxsize=2))
[0, 1, 2, 3, 4]
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")
_END = object()


def prefetch(items: Iterator[T], maxsize: int = 4) -> Iterator[T]:
    """Yield ``items`` in order while a thread produces the next ones (at most ``maxsize`` ahead).

    An exception raised by ``items`` is raised here, after the items before it.
    """
    q: queue.Queue = queue.Queue(maxsize)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_END)
        except BaseException as exc:  # handed to the consumer
            q.put(exc)

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


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
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
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
