"""The stage threads (capture.prefetch, output.worker): order kept, nothing dropped, bounded, errors delivered."""

from __future__ import annotations

import functools
import queue
import sys
import threading

import pytest

from rtseg.capture.prefetch import prefetch
from rtseg.output.worker import Worker

import conftest

DEADLINE = 120.0  # seconds: only bounds a hang; no test decides on the clock


wait_until = functools.partial(conftest.wait_until, timeout=DEADLINE, poll=0.001)


def waiting_in_put(thread: threading.Thread) -> queue.Queue | None:
    """The queue whose ``put`` ``thread`` is waiting in for room, if it is."""
    frame, inner = sys._current_frames().get(thread.ident), []
    while frame is not None:
        where = (frame.f_code.co_filename.replace("\\", "/").rsplit("/", 1)[-1], frame.f_code.co_name)
        if where == ("queue.py", "put") and ("threading.py", "wait") in inner:
            return frame.f_locals.get("self")
        inner.append(where)
        frame = frame.f_back
    return None


def blocked(thread: threading.Thread, q: queue.Queue) -> bool:
    """``thread`` waits for room in ``q``, which was full just before: with nobody taking from ``q``,
    it stays so (read in this order, a wait that a take has just ended is not taken for one)."""
    return q.full() and waiting_in_put(thread) is q


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
    q, producer = gen.gi_frame.f_locals["q"], gen.gi_frame.f_locals["thread"]
    # It read ahead until the queue was full, and waits there for room: nothing more is read meanwhile.
    wait_until(lambda: blocked(producer, q) or not producer.is_alive(), "the producer to wait for room or end")
    assert producer.is_alive() and q.maxsize == 4
    assert produced == list(range(1 + 4 + 1))  # the one handed over, the queue, the one waiting to go in
    gen.close()
    producer.join(DEADLINE)
    assert not producer.is_alive()  # the consumer stopped: so did the thread
    assert produced == list(range(6))  # and it read nothing more


def test_worker_handles_every_item_in_order_with_back_pressure():
    seen, lock, go = [], threading.Lock(), threading.Event()

    def slow(i):
        assert go.wait(DEADLINE)
        with lock:
            seen.append(i)

    with Worker(slow, maxsize=2) as w:
        try:
            for i in range(3):  # item 0 is being handled (held), 1 and 2 wait in the queue
                w.put(i)
                assert w.q.qsize() <= 2
            putter = threading.Thread(target=w.put, args=(3,), name="putter")
            putter.start()
            wait_until(lambda: blocked(putter, w.q) or not putter.is_alive(), "the fourth put to block or return")
            assert putter.is_alive() and w.q.qsize() == 2  # back-pressure: it waits for room
        finally:
            go.set()
        putter.join(DEADLINE)
        assert not putter.is_alive()
        for i in range(4, 50):
            w.put(i)
            assert w.q.qsize() <= 2
    assert seen == list(range(50))


def test_worker_error_reaches_the_caller():
    def fail(i):
        if i == 3:
            raise OSError("disk full")

    w = Worker(fail, maxsize=1)
    put = []
    with pytest.raises(OSError, match="disk full"):
        for i in range(100):
            put.append(i)
            w.put(i)
    # At once: put(5) waits for the worker to take item 4, which it does after handling item 3.
    assert put[-1] <= 6, put[-1]
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
