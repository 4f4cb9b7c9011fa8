"""The stage threads (capture.prefetch, output.worker): order kept, nothing dropped, bounded, errors delivered."""

from __future__ import annotations

import threading
import time

import pytest

from rtseg.capture.prefetch import prefetch
from rtseg.output.worker import Worker


def test_prefetch_keeps_order_and_raises_after_the_good_items():
    def items():
        yield from range(10)
        raise ValueError("frame 10 is damaged")

    got = []
    with pytest.raises(ValueError, match="damaged"):
        for x in prefetch(items(), maxsize=3):
            got.append(x)
    assert got == list(range(10))


def test_prefetch_is_bounded_and_stops_when_the_consumer_does():
    produced = []

    def items():
        for i in range(1000):
            produced.append(i)
            yield i

    gen = prefetch(items(), maxsize=4)
    assert next(gen) == 0
    time.sleep(0.2)
    assert len(produced) <= 1 + 4 + 1  # the one handed over, the queue, the one waiting to go in
    gen.close()
    time.sleep(0.3)
    assert len(produced) < 10


def test_worker_handles_every_item_in_order_with_back_pressure():
    seen, lock = [], threading.Lock()

    def slow(i):
        time.sleep(0.002)
        with lock:
            seen.append(i)

    with Worker(slow, maxsize=2) as w:
        for i in range(50):
            w.put(i)
            assert w.q.qsize() <= 2
    assert seen == list(range(50))


def test_worker_error_reaches_the_caller():
    def fail(i):
        if i == 3:
            raise OSError("disk full")

    w = Worker(fail, maxsize=1)
    with pytest.raises(OSError, match="disk full"):
        for i in range(100):
            w.put(i)
            time.sleep(0.001)
    with pytest.raises(OSError):
        w.close()


def test_worker_runs_in_the_callers_context():
    """A web request's progress bar lives in a context variable: the output thread must see it."""
    import contextvars

    request = contextvars.ContextVar("request", default=None)
    request.set("request 7")
    seen = []
    with Worker(lambda item: seen.append((item, request.get()))) as w:
        w.put(1)
    assert seen == [(1, "request 7")]
