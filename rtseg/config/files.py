"""Configs from YAML: unknown keys rejected, types checked, model paths relative to the file."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from rtseg.config.sections import Config
from rtseg.errors import RtsegError


def _build(cls: type, values: Any, where: str) -> Any:
    """An instance of dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types."""
    if not isinstance(values, dict):
        raise RtsegError(f"{where}: expected a mapping, got {type(values).__name__}")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(map(repr, set(values) - names))  # repr: keys may be numbers, null, or hold a newline
    if unknown:
        raise RtsegError(f"{where}: unknown key {unknown[0]} (known: {', '.join(sorted(names))})")
    kwargs = {}
    for key, value in values.items():
        hint = hints[key]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, {} if value is None else value, f"{where}.{key}" if where else key)
            continue
        kwargs[key] = _coerce(value, hint, f"{where}.{key}")
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise RtsegError(f"{where}: {exc}") from exc


def _coerce(value: Any, hint: Any, where: str) -> Any:
    if getattr(hint, "__origin__", None) is tuple:  # tuple[str, ...]: a list of strings
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise RtsegError(f"{where}: expected a list of strings, got {value!r:.80}")
    allowed = getattr(hint, "__args__", (hint,))
    if value is None and type(None) in allowed:
        return None
    # NaN, infinities and numbers past 2**31 are no setting: they overflow OpenCV's and torch's C ints.
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 2**31
    for t in allowed:
        if t is float and number:
            return float(value)
        if t is int and number and isinstance(value, int):
            return value
        if t in (str, bool) and isinstance(value, t):
            return value
    names = "/".join("null" if t is type(None) else t.__name__ for t in allowed)
    raise RtsegError(f"{where}: expected {names}, got {value!r:.80}")


def load_config(path: str | Path | None) -> Config:
    """Defaults, overlaid by the YAML file at ``path`` (sections: model, tracker, concepts, keyframes,
    output, camera)."""
    if path is None:
        return Config()
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise RtsegError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: not UTF-8, or a date like 2001-13-01
        raise RtsegError(f"config {path} is not valid YAML: {str(exc).partition(chr(10))[0]}") from exc
    config = _build(Config, {} if doc is None else doc, f"config {path}")
    try:
        return _relative_to(config, Path(path).parent)
    except (OSError, ValueError) as exc:  # a model path too long for a file name, or with a NUL byte
        raise RtsegError(f"config {path}: bad model path: {exc}") from exc


def _relative_to(config: Config, folder: Path) -> Config:
    """Model paths in a config file are relative to the file's folder (when they exist there)."""

    def resolve(value: str) -> str:
        candidate = folder / value
        return os.path.normpath(candidate) if not Path(value).is_absolute() and candidate.exists() else value

    name, sep, pretrained = config.model.clip.partition(":")
    model = dataclasses.replace(config.model, weights=resolve(config.model.weights),
                                clip=name + sep + (resolve(pretrained) if pretrained else ""))
    return dataclasses.replace(config, model=model)


def override(config: Config, **sections: dict[str, Any]) -> Config:
    """A copy of ``config`` with some keys of some sections replaced (None values ignored)."""
    changes = {}
    for name, values in sections.items():
        values = {k: v for k, v in values.items() if v is not None}
        if values:
            current = dataclasses.asdict(getattr(config, name))
            changes[name] = _build(type(getattr(config, name)), {**current, **values}, name)
    return dataclasses.replace(config, **changes)
