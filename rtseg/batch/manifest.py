"""A batch's videos: one :class:`Job` per row of a manifest (CSV or JSON Lines), or per source given
on the command line with shared prompts.

A row has ``source`` (a path or URL that ``rtseg track`` accepts), its prompts, and optionally ``gt``
(a folder of DAVIS masks to score against) and ``id`` (its output folder's name; default: the
source's file name without suffix, made unique). Prompts take the prompts-file form:

- JSON Lines: ``objects`` (a list of ``{points, neg, box, text}``), or ``prompts`` (a prompts YAML
  file), or ``"everything": true``;
- CSV: a ``prompts`` column holding a prompts YAML file, an inline YAML/JSON list of objects, or
  the word ``everything``; and/or a ``text`` column (several texts separated by ``;``).

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "videos.csv"
>>> _ = path.write_text('source,text,id\\na.mp4,the red star;the blue circle,first\\nb.mp4,the cross,\\n')
>>> [(j.id, j.source.endswith("a.mp4"), [str(p) for p in j.prompts]) for j in read_manifest(path)]
[('first', True, ['the red star', 'the blue circle']), ('b', False, ['the cross'])]
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rtseg.capture.sources import STREAM_PREFIXES
from rtseg.errors import RtsegError
from rtseg.prompt.prompts import Prompt, TextPrompt, load_prompts_file, parse_objects

COLUMNS = ("source", "id", "gt", "prompts", "text", "objects", "everything")


@dataclass(frozen=True)
class Job:
    """One video of a batch: where it is, what to follow in it, and where its results go."""

    id: str
    source: str
    prompts: tuple[Prompt, ...] = ()
    everything: bool = False
    gt: str | None = None
    row: int = 0  # the manifest row (1 = the first video), for messages

    def describe(self) -> list[dict[str, Any]]:
        """The prompts as text, for the resume hash and the summary."""
        return [{"prompt": str(p), "kind": type(p).__name__} for p in self.prompts] + (
            [{"prompt": "everything"}] if self.everything else [])


@dataclass
class _Row:
    values: dict[str, Any]
    where: str
    base: Path
    ids: set[str] = field(default_factory=set)


def _is_url(text: str) -> bool:
    return text.lower().startswith(STREAM_PREFIXES)


def _path(value: str, base: Path) -> str:
    """A manifest's relative paths are relative to the manifest's folder."""
    if _is_url(value) or value.isdigit():
        return value
    return os.path.abspath(base / value)


def _prompts(row: _Row) -> tuple[list[Prompt], bool]:
    v, where = row.values, row.where
    prompts: list[Prompt] = []
    everything = v.get("everything") in (True, "true", "yes", "1")
    spec = v.get("prompts")
    if isinstance(spec, str) and spec.strip():
        spec = spec.strip()
        if spec == "everything":
            everything = True
        elif spec[0] in "[{":
            try:
                entries = yaml.safe_load(spec)
            except yaml.YAMLError as exc:
                raise RtsegError(f"{where}, column prompts: not valid YAML/JSON ({str(exc).splitlines()[0]})") from None
            if not isinstance(entries, list):
                raise RtsegError(f"{where}, column prompts: expected a list of objects")
            prompts += parse_objects(entries, f"{where}, column prompts")
        else:
            try:
                prompts += load_prompts_file(_path(spec, row.base))
            except RtsegError as exc:
                raise RtsegError(f"{where}, column prompts: {exc}") from None
    elif spec not in (None, ""):
        raise RtsegError(f"{where}, column prompts: expected a file, a list of objects or 'everything'")
    objects = v.get("objects")
    if objects not in (None, ""):
        if not isinstance(objects, list):
            raise RtsegError(f"{where}, column objects: expected a list of {{points, neg, box, text}} objects")
        prompts += parse_objects(objects, f"{where}, column objects")
    text = v.get("text")
    if isinstance(text, str) and text.strip():
        prompts += [TextPrompt(t.strip()) for t in text.split(";") if t.strip()]
    elif isinstance(text, list):
        prompts += [TextPrompt(str(t).strip()) for t in text if str(t).strip()]
    if not prompts and not everything:
        raise RtsegError(f"{where}: no prompts (give objects, prompts, text or everything)")
    return prompts, everything


def _job(row: _Row, k: int) -> Job:
    v, where = row.values, row.where
    unknown = sorted(set(v) - set(COLUMNS))
    if unknown:
        raise RtsegError(f"{where}: unknown column {unknown[0]!r} (known: {', '.join(COLUMNS)})")
    source = str(v.get("source") or "").strip()
    if not source:
        raise RtsegError(f"{where}, column source: missing")
    prompts, everything = _prompts(row)
    gt = str(v.get("gt") or "").strip() or None
    return Job(_unique_id(str(v.get("id") or "").strip(), source, k, row.ids, where), _path(source, row.base),
               tuple(prompts), everything, _path(gt, row.base) if gt else None, k)


def _unique_id(given: str, source: str, k: int, ids: set[str], where: str) -> str:
    """The output folder's name: ``given``, or the source's file name; ``-2``, ``-3``... when taken."""
    name = given or (Path(source).stem if not _is_url(source) and not source.isdigit() else f"video-{k}")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise RtsegError(f"{where}, column id: {name!r} is not a folder name (letters, digits, . _ -)")
    unique, n = name, 1
    while unique in ids:
        n += 1
        unique = f"{name}-{n}"
    ids.add(unique)
    return unique


def read_manifest(path: str | Path) -> list[Job]:
    """The jobs of a ``.csv`` or ``.jsonl`` manifest; RtsegError naming the row and column for a bad one."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RtsegError(f"cannot read manifest {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    rows: list[tuple[int, dict[str, Any]]] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or "source" not in reader.fieldnames:
            raise RtsegError(f"manifest {path}: the first line must name the columns, 'source' among them")
        for k, record in enumerate(reader, start=1):
            if None in record:
                raise RtsegError(f"manifest {path}, row {k}: more values than columns")
            rows.append((k, {key: value for key, value in record.items() if value not in (None, "")}))
    elif path.suffix.lower() in (".jsonl", ".ndjson"):
        lines = [line for line in text.splitlines() if line.strip()]
        for k, line in enumerate(lines, start=1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RtsegError(f"manifest {path}, row {k}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise RtsegError(f"manifest {path}, row {k}: expected a JSON object")
            rows.append((k, record))
    else:
        raise RtsegError(f"manifest {path}: expected a .csv or .jsonl file")
    if not rows:
        raise RtsegError(f"manifest {path} has no videos")
    ids: set[str] = set()
    return [_job(_Row(values, f"manifest {path}, row {k}", path.parent, ids), k) for k, values in rows]


def jobs_from_sources(sources: list[str], prompts: list[Prompt], everything: bool) -> list[Job]:
    """One job per source given on the command line, all with the same prompts."""
    if not prompts and not everything:
        raise RtsegError("nothing to track: give --point, --box, --text, --prompts or --everything for the videos")
    ids: set[str] = set()
    return [Job(_unique_id("", s, k, ids, f"source {k} ({s})"), s, tuple(prompts), everything, None, k)
            for k, s in enumerate(sources, start=1)]
