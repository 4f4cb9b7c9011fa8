"""The messages rtseg publishes for other processes (schema ``rtseg/1``), and the prompt messages it
takes while it runs. Plain JSON, documented in the README ("Robots: publishing results").

Field names follow ROS 2 ``vision_msgs/Detection2DArray`` where one exists (``header.stamp``,
``detections[].bbox.center.position`` / ``size_x`` / ``size_y``, ``results[].hypothesis.class_id`` /
``score``, ``id``), so a bridge to ROS 2 maps them one to one; the rest is rtseg's (``track_id``,
``prompt``, ``mask`` as COCO RLE, ``centroid``, ``xyz``...).

>>> import numpy as np, supervision as sv
>>> d = sv.Detections(xyxy=np.array([[10, 20, 30, 60]], float), mask=np.zeros((1, 80, 80), bool),
...                   tracker_id=np.array([2]), data={"prompt": np.array(["the red star"], object)})
>>> d.mask[0, 20:60, 10:30] = True
>>> m = objects_message(7, 0.25, 1700000000.5, "cam", d, (80, 80))
>>> m["header"]["stamp"], m["detections"][0]["bbox"]["size_x"], m["detections"][0]["track_id"]
({'sec': 1700000000, 'nanosec': 500000000}, 20.0, 2)
>>> parse_prompt('{"point": [5, 6]}').kind, str(parse_prompt('{"text": "the red cup"}').prompt)
('add', 'the red cup')
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import supervision as sv

from rtseg.errors import RtsegError
from rtseg.output.records import frame_record
from rtseg.prompt.prompts import BoxPrompt, ConceptPrompt, PointPrompt, Prompt, TextPrompt, parse_fix, parse_objects

SCHEMA = "rtseg/1"


def stamp(seconds: float) -> dict[str, int]:
    """A ROS ``builtin_interfaces/Time`` from Unix seconds."""
    sec = math.floor(seconds)
    return {"sec": sec, "nanosec": int(round((seconds - sec) * 1e9)) % 1_000_000_000}


def objects_message(index: int, time_s: float, captured: float, frame_id: str, dets: sv.Detections,
                    size: tuple[int, int]) -> dict[str, Any]:
    """One frame's objects: ``captured`` is the Unix time the frame was read, ``size`` its (H, W)."""
    record = frame_record(index, time_s, dets)  # the JSON lines' objects: box, score, area, centroid, RLE...
    detections = []
    for obj in record["objects"]:
        x1, y1, x2, y2 = obj["box"]
        detections.append({
            "id": str(obj["id"]),
            "track_id": obj["id"],
            "prompt": obj["prompt"],
            "bbox": {"center": {"position": {"x": round((x1 + x2) / 2, 1), "y": round((y1 + y2) / 2, 1)},
                                "theta": 0.0},
                     "size_x": round(x2 - x1, 1), "size_y": round(y2 - y1, 1)},
            "results": [{"hypothesis": {"class_id": obj["prompt"], "score": obj["score"]}}],
            **{k: v for k, v in obj.items() if k not in ("id", "prompt")},
        })
    return {"schema": SCHEMA, "header": {"stamp": stamp(captured), "frame_id": frame_id}, "index": int(index),
            "time": round(float(time_s), 4), "height": size[0], "width": size[1], "detections": detections}


@dataclass(frozen=True)
class Command:
    """A prompt message, parsed: ``kind`` add (``prompt``), correct (``oid`` and the ``prompt`` that
    fixes it: a point, a negative point (label 0) or a box), forget (``oid``) or reset; ``request``
    is the sender's ``request_id``, echoed in the answer."""

    kind: str
    prompt: Prompt | None = None
    oid: int | None = None
    request: str | None = None


class PromptError(RtsegError):
    """A prompt message refused, with the ``request_id`` it gave (None: none, or none readable)."""

    def __init__(self, message: str, request: str | None = None) -> None:
        super().__init__(message)
        self.request = request


# What one prompt message may hold (a message over them is answered with an error, unparsed beyond the check).
MAX_MESSAGE_BYTES = 16 * 1024  # the payload, checked before it is parsed
MAX_TEXT = 300  # characters of a text prompt (CLIP reads 77 tokens of it)
MAX_POINTS = 64  # points of one prompt, the positive one and the negatives
MAX_REQUEST_ID = 128  # characters of a request_id (echoed in the answer)
FIELDS = ("text", "concept", "point", "neg", "box", "forget", "reset", "id", "request_id")


def parse_prompt(payload: bytes | str) -> Command:
    """A message on ``KEY/prompts``: ``{"text": ...}``, ``{"concept": ...}`` (every instance),
    ``{"point": [x, y]}`` (``"neg": [[x, y], ...]`` optional), ``{"box": [x1, y1, x2, y2]}``,
    ``{"forget": id}`` or ``{"reset": true}``; a correction to object N: ``{"id": N, "point": [x, y]}``,
    ``{"id": N, "neg": [x, y]}`` or ``{"id": N, "box": [x1, y1, x2, y2]}``; each with an
    optional ``"request_id"``. RtsegError for anything else, or for a message over the limits above
    (its size is checked before it is parsed; nesting too deep for the parser is an error too).

    >>> parse_prompt(b"[" * 100_000)
    Traceback (most recent call last):
    ...
    rtseg.errors.RtsegError: message of 100000 bytes, more than the limit of 16384
    """
    if len(payload) > MAX_MESSAGE_BYTES:
        raise RtsegError(f"message of {len(payload)} bytes, more than the limit of {MAX_MESSAGE_BYTES}")
    try:
        msg = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RtsegError(f"not JSON: {exc}") from None
    except RecursionError:
        raise RtsegError("not JSON this server reads: nested too deeply") from None
    if not isinstance(msg, dict):
        raise RtsegError("expected a JSON object")
    request = msg.pop("request_id", None)
    if request is not None and (not isinstance(request, (str, int)) or isinstance(request, bool)
                                or len(str(request)) > MAX_REQUEST_ID):
        raise RtsegError(f"request_id: expected a string or an integer of at most {MAX_REQUEST_ID} characters")
    request = None if request is None else str(request)
    try:
        return _command(msg, request)
    except RtsegError as exc:
        raise PromptError(str(exc), request) from None


def _command(msg: dict[str, Any], request: str | None) -> Command:
    unknown = sorted(set(msg) - set(FIELDS))
    if unknown:
        raise RtsegError(f"unknown field {unknown[0][:40]!r} (known: {', '.join(FIELDS)})")
    if "id" in msg:
        return _correction(msg, request)
    kinds = [k for k in ("text", "concept", "point", "box", "forget", "reset") if k in msg]
    if len(kinds) != 1:
        raise RtsegError("give exactly one of text, concept, point, box, forget, reset")
    kind = kinds[0]
    if kind == "reset":
        if msg["reset"] is not True or len(msg) > 1:
            raise RtsegError('reset takes true alone: {"reset": true}')
        return Command("reset", request=request)
    if kind == "forget":
        if not isinstance(msg["forget"], int) or isinstance(msg["forget"], bool) or len(msg) > 1:
            raise RtsegError("forget takes an object id (an integer) alone")
        return Command("forget", oid=msg["forget"], request=request)
    if kind in ("text", "concept") and isinstance(msg[kind], str) and len(msg[kind]) > MAX_TEXT:
        raise RtsegError(f"{kind} of {len(msg[kind])} characters, more than the limit of {MAX_TEXT}")
    if isinstance(msg.get("neg"), list) and len(msg["neg"]) + (kind == "point") > MAX_POINTS:
        raise RtsegError(f"{len(msg['neg'])} negative points, more than the limit of {MAX_POINTS} points a prompt")
    entry: dict[str, Any] = {"points" if kind == "point" else kind: [msg["point"]] if kind == "point" else msg[kind]}
    if "neg" in msg:
        entry["neg"] = msg["neg"]
    prompt = parse_objects([entry], "prompt")[0]
    assert isinstance(prompt, (TextPrompt, ConceptPrompt, PointPrompt, BoxPrompt))
    return Command("add", prompt=prompt, request=request)


def _correction(msg: dict[str, Any], request: str | None) -> Command:
    """``{"id": N, "point" | "neg" | "box": ...}``: object N's segment picked again (one point, a
    negative point as ``[x, y]`` or ``[[x, y]]``, or a box)."""
    oid = msg.pop("id")
    if not isinstance(oid, int) or isinstance(oid, bool):
        raise RtsegError("id: expected an object id (an integer)")
    kinds = [k for k in ("point", "neg", "box") if k in msg]
    if len(kinds) != 1 or len(msg) > 1:
        raise RtsegError("a correction gives id and exactly one of point, neg, box")
    value = msg[kinds[0]]
    if kinds[0] == "neg" and isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        value = value[0]  # [[x, y]]: one negative point
    fix = parse_fix({"point": "points"}.get(kinds[0], kinds[0]), value if kinds[0] == "box" else [value],
                    f"correction to object {oid}")
    return Command("correct", prompt=fix, oid=oid, request=request)
