"""The other end of ``rtseg track --publish KEY``: ``rtseg listen`` prints what arrives, ``rtseg
prompt`` sends a prompt to the running tracker and waits for its answer. Both are also a short
example of a subscriber (see the README, "Robots")."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, TextIO

from rtseg.errors import RtsegError
from rtseg.output.publish import open_zenoh, prompt_publisher


def describe(message: dict[str, Any], received: float) -> str:
    """One line for a frame's objects message: index, latency from capture, then each object."""
    stamp = message["header"]["stamp"]
    latency = (received - (stamp["sec"] + stamp["nanosec"] / 1e9)) * 1000
    parts = [f"frame {message['index']:>5} ({latency:5.1f} ms)"]
    for d in message["detections"]:
        c = d["bbox"]["center"]["position"]
        text = f"#{d['track_id']} {d['prompt']!r} at {c['x']:.0f},{c['y']:.0f} {d['bbox']['size_x']:.0f}x" \
               f"{d['bbox']['size_y']:.0f}"
        if d.get("xyz"):
            text += " xyz " + ",".join(f"{v:.2f}" for v in d["xyz"]) + " m"
        parts.append(text)
    return " | ".join(parts) if message["detections"] else parts[0] + " | no objects"


def listen(key: str, config_file: str | Path | None = None, count: int | None = None, timeout: float | None = None,
           out: TextIO | None = None, on_message: Callable[[dict[str, Any], float], None] | None = None) -> int:
    """Print a line per frame published under ``key`` until ``count`` frames or ``timeout`` seconds
    (None: until Ctrl-C); returns the frames received."""
    import sys

    out = out or sys.stdout
    session = open_zenoh(config_file)
    got = [0]
    done = threading.Event()
    lock = threading.Lock()

    def handle(sample: Any) -> None:
        received = time.time()
        try:
            message = json.loads(sample.payload.to_bytes())
        except ValueError:
            return
        with lock:  # exactly ``count``: frames that come before the subscriber is undeclared are not printed
            if count is not None and got[0] >= count:
                return
            got[0] += 1
            if on_message is not None:
                on_message(message, received)
            print(describe(message, received), file=out, flush=True)
            if count is not None and got[0] >= count:
                done.set()

    sub = session.declare_subscriber(f"{key.strip('/')}/objects", handle)
    try:
        done.wait(timeout)
    finally:
        sub.undeclare()
        session.close()
    return got[0]


def send_prompt(key: str, message: dict[str, Any], config_file: str | Path | None = None,
                wait: float = 5.0) -> dict[str, Any]:
    """Send ``message`` to ``KEY/prompts`` and return the tracker's answer from ``KEY/events``;
    RtsegError when none comes within ``wait`` seconds (no tracker publishing under ``key``)."""
    key = key.strip("/")
    request = uuid.uuid4().hex[:12]
    session = open_zenoh(config_file)
    answer: list[dict[str, Any]] = []
    done = threading.Event()

    def handle(sample: Any) -> None:
        try:
            event = json.loads(sample.payload.to_bytes())
        except ValueError:
            return
        if event.get("request_id") == request:
            answer.append(event)
            done.set()

    sub = session.declare_subscriber(f"{key}/events", handle)
    try:
        pub = prompt_publisher(session, key)
        end = time.monotonic() + wait
        while not pub.matching_status.matching and time.monotonic() < end:  # the tracker found
            time.sleep(0.01)
        if pub.matching_status.matching:
            time.sleep(0.1)  # and our events subscriber known to it: the answer must not be lost
            pub.put(json.dumps({**message, "request_id": request}).encode())  # once: a prompt adds an object
            done.wait(max(end - time.monotonic(), 0))
    finally:
        sub.undeclare()
        session.close()
    if not answer:
        raise RtsegError(f"no answer on {key}/events within {wait:g} s: is rtseg track --publish {key} running?")
    return answer[0]
