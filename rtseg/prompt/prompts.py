"""Prompts (points with labels, a box, a text, or everything): their types, parsing and checks.

SAM's vocabulary: points are (N, 2) pixel x y with labels 1 (positive) / 0 (negative); boxes XYXY.

>>> str(with_negative(parse_box("10,20,50,60"), (30, 40)))
'box 10,20,50,60 -30,40'
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Union

import yaml

from rtseg.errors import RtsegError


def _negatives_str(points: tuple[tuple[float, float], ...]) -> str:
    return "".join(f" -{x:g},{y:g}" for x, y in points)


@dataclass(frozen=True)
class PointPrompt:
    points: tuple[tuple[float, float], ...]
    labels: tuple[int, ...]

    def __str__(self) -> str:
        return "point " + " ".join(f"{'+' if lab else '-'}{x:g},{y:g}" for (x, y), lab in zip(self.points, self.labels))


@dataclass(frozen=True)
class BoxPrompt:
    box: tuple[float, float, float, float]
    negatives: tuple[tuple[float, float], ...] = ()

    def __str__(self) -> str:
        return "box " + ",".join(f"{v:g}" for v in self.box) + _negatives_str(self.negatives)


@dataclass(frozen=True)
class TextPrompt:
    text: str
    negatives: tuple[tuple[float, float], ...] = ()

    def __str__(self) -> str:
        return self.text + _negatives_str(self.negatives)


@dataclass(frozen=True)
class ConceptPrompt:
    """Every instance of a phrase, each an object with its own id, also those that appear later
    (:mod:`rtseg.track.concepts`); the phrase is the ``prompt`` (class) of each."""

    text: str

    def __str__(self) -> str:
        return self.text


Prompt = Union[PointPrompt, BoxPrompt, TextPrompt, ConceptPrompt]


@dataclass
class PromptSet:
    """The objects to follow, in id order (object k has track id k + 1), or everything."""

    objects: list[Prompt] = field(default_factory=list)
    everything: bool = False


def numbered(prompts: list[Prompt]) -> list[Prompt]:
    """The prompts that take an id each, in order (ids 1, 2, ...): all but the concepts, whose
    instances take ids as they are found."""
    return [p for p in prompts if not isinstance(p, ConceptPrompt)]


def negatives_of(prompt: Prompt) -> list[tuple[float, float]]:
    if isinstance(prompt, PointPrompt):
        return [p for p, lab in zip(prompt.points, prompt.labels) if not lab]
    return [] if isinstance(prompt, ConceptPrompt) else list(prompt.negatives)


def with_negative(prompt: Prompt, point: tuple[float, float]) -> Prompt:
    """The same prompt with one more negative point."""
    if isinstance(prompt, ConceptPrompt):
        raise RtsegError("a negative point corrects one object: give its id, not the concept's")
    if isinstance(prompt, PointPrompt):
        return PointPrompt(prompt.points + (point,), prompt.labels + (0,))
    return replace(prompt, negatives=prompt.negatives + (point,))


def parse_xy(text: str, n: int, what: str) -> tuple[float, ...]:
    """``"12,34"`` -> (12.0, 34.0), with ``n`` numbers required."""
    try:
        values = tuple(float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        values = ()
    if len(values) != n or not all(map(math.isfinite, values)):  # nan and inf pass float() but are no place
        raise RtsegError(f"bad {what} {text!r}: expected {n} comma-separated numbers")
    return values


def parse_box(text: str) -> BoxPrompt:
    """A typed box ``"x1,y1,x2,y2"``."""
    x1, y1, x2, y2 = parse_xy(text, 4, "box")
    return BoxPrompt((x1, y1, x2, y2))


@dataclass(frozen=True)
class Timed:
    """A prompts file entry for frame ``at`` of the run: a new object (``oid`` None), or a correction
    to object ``oid``: ``prompt`` a point, negative points (labels 0) or a box; None: forget it."""

    at: int
    prompt: Prompt | None
    oid: int | None = None


def load_prompts_file(path: str | Path) -> list[Prompt]:
    """Objects from a YAML file: a list under ``objects`` of ``{points, neg, box, text}`` or
    ``{concept}`` entries (entries for later frames are :func:`load_timeline`'s)."""
    start, later = load_timeline(path)
    if later:
        raise RtsegError(f"prompts file {path}: entries with at: or id: (corrections) are taken by rtseg track only")
    return start


def load_timeline(path: str | Path) -> tuple[list[Prompt], list[Timed]]:
    """A prompts file's objects, and its entries for later frames: new objects ``{at: N, ...}`` and
    corrections to an object by id ``{id: K, at: N, points | neg | box | forget: true}``."""
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError) as exc:  # ValueError: not UTF-8, or a date like 2001-13-01
        raise RtsegError(f"cannot read prompts file {path}: {exc}".splitlines()[0]) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("objects"), list):
        raise RtsegError(f"prompts file {path}: expected a mapping with a list under 'objects'")
    where = f"prompts file {path}"
    timed = [isinstance(e, dict) and ("at" in e or "id" in e) for e in doc["objects"]]
    start = parse_objects([e for e, t in zip(doc["objects"], timed) if not t], where)
    return start, [_timed(e, f"{where}, entry {k + 1}") for k, (e, t) in enumerate(zip(doc["objects"], timed)) if t]


def _timed(entry: dict, where: str) -> Timed:
    entry = dict(entry)
    at, oid = entry.pop("at", 0), entry.pop("id", None)
    if not isinstance(at, int) or isinstance(at, bool) or at < 0:
        raise RtsegError(f"{where}: at is a frame index (an integer >= 0)")
    if oid is None:
        return Timed(at, parse_objects([entry], where)[0])
    if not isinstance(oid, int) or isinstance(oid, bool):
        raise RtsegError(f"{where}: id is an object id (an integer)")
    kinds = [k for k in ("points", "neg", "box", "forget") if k in entry]
    if len(kinds) != 1 or len(entry) > 1 or entry.get("forget", True) is not True:
        raise RtsegError(f"{where}: a correction to object {oid} gives exactly one of points, neg, box, forget: true")
    if kinds[0] == "forget":
        return Timed(at, None, oid)
    return Timed(at, parse_fix(kinds[0], entry[kinds[0]], where), oid)


def parse_fix(kind: str, value: object, where: str) -> PointPrompt | BoxPrompt:
    """A correction to an object: ``points`` or ``neg`` (a list of ``[x, y]``, positive or negative:
    labels 0) or a ``box``; errors name ``where``."""
    fix = parse_objects([{"box" if kind == "box" else "points": value}], where)[0]
    assert isinstance(fix, (PointPrompt, BoxPrompt))
    return PointPrompt(fix.points, (0,) * len(fix.points)) if kind == "neg" and isinstance(fix, PointPrompt) else fix


def parse_objects(entries: list, where: str) -> list[Prompt]:
    """Prompts from ``{points, neg, box, text}`` and ``{concept}`` entries (a prompts file's
    ``objects``, a batch manifest's); errors name ``where`` and the object.

    >>> [str(p) for p in parse_objects([{"text": "the red star"}, {"points": [[5, 6]], "neg": [[7, 8]]}], "x")]
    ['the red star', 'point +5,6 -7,8']
    """
    out: list[Prompt] = []
    for k, entry in enumerate(entries):
        where_k = f"{where}, object {k + 1}"
        if not isinstance(entry, dict) or set(entry) - {"points", "neg", "box", "text", "concept"}:
            raise RtsegError(f"{where_k}: expected keys among points, neg, box, text, concept")
        kinds = [key for key in ("points", "box", "text", "concept") if key in entry]
        if len(kinds) != 1:
            raise RtsegError(f"{where_k}: give exactly one of points, box, text, concept")
        if "concept" in entry:
            if not isinstance(entry["concept"], str) or not entry["concept"].strip() or "neg" in entry:
                raise RtsegError(f"{where_k}: concept takes a phrase alone (a non-empty string)")
            out.append(ConceptPrompt(entry["concept"].strip()))
            continue
        try:
            neg = _points(entry.get("neg", []))
        except ValueError:
            raise RtsegError(f"{where_k}: malformed neg") from None
        try:
            if "points" in entry:
                pos = _points(entry["points"])
                if not pos:
                    raise ValueError
                out.append(PointPrompt(pos + neg, (1,) * len(pos) + (0,) * len(neg)))
            elif "box" in entry:
                x1, y1, x2, y2 = _numbers(entry["box"], 4)
                out.append(BoxPrompt((x1, y1, x2, y2), neg))
            else:
                if not isinstance(entry["text"], str) or not entry["text"].strip():
                    raise ValueError
                out.append(TextPrompt(entry["text"].strip(), neg))
        except ValueError:
            raise RtsegError(f"{where_k}: malformed {kinds[0]}") from None
    return out


def _numbers(values: object, n: int) -> tuple[float, ...]:
    """``n`` finite numbers from a list, or ValueError (a string or a mapping is no list of numbers).

    >>> _numbers([1, 2.5], 2)
    (1.0, 2.5)
    """
    if not isinstance(values, (list, tuple)) or len(values) != n:
        raise ValueError(values)
    # abs(v) <= the largest float: finite, and an int float() can take (math.isfinite(10**400) overflows)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) <= sys.float_info.max
               for v in values):
        raise ValueError(values)
    return tuple(float(v) for v in values)


def _points(values: object) -> tuple[tuple[float, float], ...]:
    """A list of ``[x, y]`` pairs, or ValueError."""
    if not isinstance(values, (list, tuple)):
        raise ValueError(values)
    return tuple(_numbers(v, 2) for v in values)  # type: ignore[misc]


def validate(prompt: Prompt, width: int, height: int) -> None:
    """Raise RtsegError when a prompt's coordinates fall outside a (width, height) frame."""
    prompt_line = " ".join(str(prompt).split())  # the error is one line, whatever a text prompt holds
    points = list(prompt.points) if isinstance(prompt, PointPrompt) else negatives_of(prompt)
    for x, y in points:
        if not (0 <= x < width and 0 <= y < height):
            raise RtsegError(f"prompt '{prompt_line}': point {x:g},{y:g} is outside the {width}x{height} frame")
    if isinstance(prompt, BoxPrompt):
        x1, y1, x2, y2 = prompt.box
        if not (x2 > x1 and y2 > y1):
            raise RtsegError(f"prompt '{prompt_line}': a box is X1,Y1,X2,Y2 with X2 > X1 and Y2 > Y1")
        if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
            raise RtsegError(f"prompt '{prompt_line}': the box is outside the {width}x{height} frame")
