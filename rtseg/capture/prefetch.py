"""Decoding ahead of the model: an offline source's next frames are read on a thread while the
current one is segmented. Order is kept, nothing is dropped, memory is bounded by the queue size,
and an error on the reading thread reaches the caller.

>>> list(prefetch(iter(range(5)), maxsize=2))
[0, 1, 2, 3, 4]
"""

from __future__ import annotations

import queue
import threading
from typing import Generator, Iterator, TypeVar

T = TypeVar("T")
_END = object()


def prefetch(items: Iterator[T], maxsize: int = 4) -> Generator[T, None, None]:
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
