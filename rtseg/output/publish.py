"""Publishing results to other processes over Eclipse Zenoh, and taking prompts from them at run time.

:class:`Publisher` is a sink. Under a key ``KEY`` it publishes, for every frame:

- ``KEY/objects``: the objects message (:func:`~rtseg.output.messages.objects_message`, JSON);
- ``KEY/mask``: the frame's mask-ID image as an 8-bit PNG (pixel = track id, 0 = background: the
  same values as the PNGs ``--save-masks`` writes);
- ``KEY/overlay``: a JPEG of the overlay, at most ``overlay_hz`` times a second (0: never).

Each message carries the frame index and the capture time (attachment ``index;stamp``). It listens on
``KEY/prompts`` for prompt messages (:func:`~rtseg.output.messages.parse_prompt`): they are applied
on the main thread between frames (:meth:`Publisher.pump`), exactly as a click in the live window,
and answered on ``KEY/events``. A bad message is answered with an error and changes nothing; no
message ends the run. What the channel takes is bounded: a message's size (checked before it is
read, :data:`~rtseg.output.messages.MAX_MESSAGE_BYTES`), its text and points, the messages waiting
for the next frame (:data:`MAX_PENDING`: those past it are dropped, and counted in one error event)
and the objects followed (:data:`MAX_OBJECTS`).

Zenoh runs peer to peer on this machine by default (:func:`open_zenoh`: TCP on 127.0.0.1, scouting on
the loopback interface, no router, and an access control list that takes messages over the loopback
interface only); a Zenoh config file reaches a router or another network (SECURITY.md: its ACL, logins, TLS).
"""

from __future__ import annotations

import json
import queue
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import cv2

from rtseg.errors import RtsegError
from rtseg.output.messages import MAX_MESSAGE_BYTES, objects_message, parse_prompt
from rtseg.output.records import label_map
from rtseg.output.render import Renderer
from rtseg.output.sinks import Sink, StreamInfo
from rtseg.prompt.prompts import BoxPrompt, ConceptPrompt, PointPrompt
from rtseg.session import FrameResult, Session

MAX_PENDING = 64  # prompt messages waiting for the next frame; more are dropped (and counted)
MAX_OBJECTS = 64  # objects followed at once through the prompt channel
MAX_CONCEPTS = 16  # concept phrases, each a CLIP text of every segment's judgment
MAX_ERROR = 300  # characters of an error event's text


def import_zenoh() -> Any:
    try:
        import zenoh
    except ImportError:
        raise RtsegError("publishing needs Eclipse Zenoh: pip install -e '.[robot]' (or pip install eclipse-zenoh)") \
            from None
    return zenoh


def loopback_interfaces() -> list[str]:
    """This machine's loopback interfaces by name (``lo`` on Linux, ``lo0`` on macOS)."""
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        names = []
    return [n for n in names if n.startswith("lo")] or ["lo"]


def local_only_acl() -> dict[str, Any]:
    """A Zenoh access control list that lets messages in and out over the loopback interfaces only:
    a peer that reaches this session over any other link (a scouting answer from another machine
    that this session connects to, say) can neither send it prompts nor receive what it publishes."""
    messages = ["put", "delete", "declare_subscriber", "query", "reply", "declare_queryable", "liveliness_token",
                "declare_liveliness_subscriber", "liveliness_query"]
    return {"enabled": True, "default_permission": "deny",
            "rules": [{"id": "loopback", "messages": messages, "flows": ["ingress", "egress"],
                       "permission": "allow", "key_exprs": ["**"]}],
            "subjects": [{"id": "this-machine", "interfaces": loopback_interfaces()}],
            "policies": [{"rules": ["loopback"], "subjects": ["this-machine"]}]}


def open_zenoh(config_file: str | Path | None = None) -> Any:
    """A Zenoh session: from ``config_file``, or peer to peer on this machine only (TCP on 127.0.0.1,
    scouting on the loopback interface, :func:`local_only_acl`)."""
    zenoh = import_zenoh()
    try:
        if config_file is not None:
            config = zenoh.Config.from_file(str(config_file))
        else:
            config = zenoh.Config()
            config.insert_json5("listen/endpoints", '{"peer": ["tcp/127.0.0.1:0"]}')
            config.insert_json5("scouting/multicast/interface", json.dumps(loopback_interfaces()[0]))
            config.insert_json5("access_control", json.dumps(local_only_acl()))
        return zenoh.open(config)
    except Exception as exc:  # zenoh raises ZError, ValueError...
        where = f"with config {config_file}" if config_file else "on this machine"
        raise RtsegError(f"cannot open a Zenoh session {where}: {str(exc).splitlines()[0]}") from exc


def prompt_publisher(session: Any, key: str) -> Any:
    """A publisher of prompt messages to ``key`` (``KEY/prompts``), reliable and blocking when the
    link is congested: a prompt is an instruction and is never dropped (Zenoh's default drops)."""
    zenoh = import_zenoh()
    return session.declare_publisher(f"{key}/prompts", congestion_control=zenoh.CongestionControl.BLOCK,
                                     reliability=zenoh.Reliability.RELIABLE)


def wall_time(monotonic_at: float) -> float:
    """The Unix time of a ``time.monotonic()`` reading."""
    return time.time() - (time.monotonic() - monotonic_at)


class Publisher(Sink):
    """Publishes each frame under ``key`` and takes prompts for ``session`` (see the module docstring).

    Args:
        key: the key expression prefix, e.g. ``robot1/rtseg``.
        session: the tracking session that prompts are added to.
        config_file: a Zenoh config (JSON5) file; None: peer to peer on this machine.
        overlay_hz: most overlay JPEGs a second (0: none).
        renderer: draws the overlay when no other sink has (None: from the session's config).
    """

    def __init__(self, key: str, session: Session, config_file: str | Path | None = None,
                 overlay_hz: float = 5.0, renderer: Renderer | None = None) -> None:
        self.key, self.session, self.config_file = key.strip("/"), session, config_file
        if not self.key or any(c in self.key for c in "*?$#"):
            raise RtsegError(f"bad publish key {key!r}: a path like robot1/rtseg, without wildcards")
        import_zenoh()  # fail before any model is loaded
        self.overlay_every = 1.0 / overlay_hz if overlay_hz > 0 else None
        self.renderer = renderer or Renderer(session.config.output)
        self.requests: queue.Queue = queue.Queue(MAX_PENDING)  # payloads (bytes), or errors to answer
        self.dropped = 0  # messages that found the queue full since the last pump
        self.dropped_lock = threading.Lock()
        self.last_overlay = -float("inf")
        self.zenoh: Any = None
        self.published = 0
        self.discovery = 1.0  # seconds open() waits for a subscriber to be found, at most

    def open(self, stream: StreamInfo) -> None:
        self.frame_id = stream.name
        self.zenoh = open_zenoh(self.config_file)
        zenoh = import_zenoh()
        # Objects, masks and events block rather than drop when a subscriber is slow (like a full disk
        # for the files: the queue to the output thread then holds the main loop); overlays are dropped.
        block, drop = zenoh.CongestionControl.BLOCK, zenoh.CongestionControl.DROP
        self.pub = {name: self.zenoh.declare_publisher(f"{self.key}/{name}",
                                                       congestion_control=drop if name == "overlay" else block)
                    for name in ("objects", "mask", "overlay", "events")}
        self.sub = self.zenoh.declare_subscriber(f"{self.key}/prompts", self._receive)
        end = time.monotonic() + self.discovery
        while not self.pub["objects"].matching_status.matching and time.monotonic() < end:
            time.sleep(0.01)  # a subscriber started before the tracker gets the first frame too

    def write(self, result: FrameResult) -> None:
        captured = wall_time(result.read_at)
        shape = result.image.shape[:2]
        attachment = f"{result.index};{captured:.6f}".encode()
        message = objects_message(result.index, result.time, captured, self.frame_id, result.detections, shape)
        message["sent"] = round(time.time(), 6)
        self.pub["objects"].put(json.dumps(message, separators=(",", ":")).encode(), attachment=attachment)
        ok, png = cv2.imencode(".png", label_map(result.detections, shape), [cv2.IMWRITE_PNG_COMPRESSION, 1])
        self.pub["mask"].put(png.tobytes(), attachment=attachment)
        now = time.monotonic()
        if self.overlay_every is not None and now - self.last_overlay >= self.overlay_every:
            self.last_overlay = now
            overlay = result.overlay if result.overlay is not None else self.renderer.annotate(
                result.image, result.detections, result.stats)
            ok, jpeg = cv2.imencode(".jpg", overlay, [cv2.IMWRITE_JPEG_QUALITY, 80])
            self.pub["overlay"].put(jpeg.tobytes(), attachment=attachment)
        self.published += 1

    def _receive(self, sample: Any) -> None:
        """Zenoh's thread: queue a prompt message for the main thread; one over the size limit is not
        even copied (its error is queued instead), and one that finds the queue full is counted."""
        size = len(sample.payload)
        self._queue(sample.payload.to_bytes() if size <= MAX_MESSAGE_BYTES else RtsegError(
            f"message of {size} bytes, more than the limit of {MAX_MESSAGE_BYTES}"))

    def _queue(self, item: bytes | RtsegError) -> None:
        """A prompt message (its JSON) or the error to answer it with, for the next :meth:`pump`."""
        try:
            self.requests.put_nowait(item)
        except queue.Full:
            with self.dropped_lock:
                self.dropped += 1

    def pump(self, wait_ms: int) -> bool:
        """Apply the prompts that came in, on the main thread (the session is not used elsewhere now)."""
        with self.dropped_lock:
            dropped, self.dropped = self.dropped, 0
        if dropped:
            self._answer({"event": "error", "dropped": dropped,
                          "error": f"{dropped} prompt messages dropped: more than {MAX_PENDING} waited for a frame"})
        for _ in range(MAX_PENDING):  # those that came in by now; more wait for the next frame
            try:
                payload = self.requests.get_nowait()
            except queue.Empty:
                break
            self._apply(payload)
        return True

    def _apply(self, payload: bytes | RtsegError) -> None:
        """Answer one message on ``KEY/events``: what it did, or why it did nothing. Nothing it holds
        ends the run: an error rtseg did not foresee is answered (and logged) like the others."""
        request = None
        event: dict[str, Any]
        try:
            if isinstance(payload, RtsegError):
                raise payload
            command = parse_prompt(payload)
            request = command.request
            if command.kind == "add":
                assert command.prompt is not None
                if len(self.session.tracker.prompts) >= MAX_OBJECTS:
                    raise RtsegError(f"{MAX_OBJECTS} objects are followed already, the most the prompt channel "
                                     "adds: forget one first")
                if isinstance(command.prompt, ConceptPrompt):
                    if len(self.session.tracker.concepts) >= MAX_CONCEPTS:
                        raise RtsegError(f"{MAX_CONCEPTS} concepts are followed already, the most the prompt "
                                         "channel adds")
                    self.session.add(command.prompt)
                    event = {"event": "added", "concept": str(command.prompt)}
                else:
                    event = {"event": "added", "id": self.session.add(command.prompt), "prompt": str(command.prompt)}
            elif command.kind == "correct":
                assert command.oid is not None and isinstance(command.prompt, (PointPrompt, BoxPrompt))
                self.session.correct(command.oid, command.prompt)
                event = {"event": "corrected", "id": command.oid, "prompt": str(command.prompt)}
            elif command.kind == "forget":
                assert command.oid is not None
                try:
                    self.session.forget(command.oid)
                except KeyError:
                    raise RtsegError(f"no object {command.oid}") from None
                event = {"event": "forgotten", "id": command.oid}
            else:
                self.session.reset()
                event = {"event": "reset"}
        except RtsegError as exc:
            request = getattr(exc, "request", request)  # a PromptError says the request_id it could read
            event = {"event": "error", "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 (a message must not end the run)
            print(f"rtseg: prompt message: internal error: {type(exc).__name__}: {exc}"[:1000], file=sys.stderr)
            event = {"event": "error", "error": f"internal error: {type(exc).__name__}: {exc}"}
        event.update(request_id=request, frame=self.published)
        self._answer(event)

    def _answer(self, event: dict[str, Any]) -> None:
        if "error" in event:
            event["error"] = " ".join(str(event["error"]).split())[:MAX_ERROR]  # one line, bounded
        self._send_event(json.dumps(event))

    def _send_event(self, text: str) -> None:
        self.pub["events"].put(text.encode())

    def close(self) -> None:
        if self.zenoh is not None:
            self.pump(0)
            self.sub.undeclare()
            self.zenoh.close()
            self.zenoh = None
