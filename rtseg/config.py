"""Typed configuration: frozen dataclasses per stage, loaded from YAML with unknown keys rejected.

>>> cfg = load_config(None)
>>> cfg.model.weights, cfg.tracker.match_iou
('fastsam-s', 0.25)
>>> override(cfg, model={"imgsz": 320}).model.imgsz
320
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from rtseg.errors import RtsegError
from rtseg.motion import KeyframeConfig
from rtseg.tracker import TrackerConfig


@dataclass(frozen=True)
class ModelConfig:
    """Which models run where.

    Attributes:
        weights: ``fastsam-s``, ``fastsam-x`` or a path to a FastSAM-format .pt or exported model.
        clip: open_clip ``NAME[:PRETRAINED]`` for text prompts (loaded only when a text prompt is used).
        device: ``auto`` (CUDA, then MPS, then CPU), ``cpu``, ``cuda``, ``cuda:N``, ``mps``.
        imgsz: inference size, a multiple of 32.
        conf: least confidence of a segment.
        iou: NMS IoU threshold between segments.
        half: fp16 inference (None: on CUDA only).
        max_det: most segments per frame.
        threads: torch CPU threads (None: ultralytics' default, cores - 1).
        retina_masks: full-size masks upsampled from the model's prototypes straight to the frame
            (True), or made at the inference size and resized to the frame (False: coarser edges).
            Either way only the reported objects' full-size masks are made.
    """

    weights: str = "fastsam-s"
    clip: str = "ViT-B-32:laion2b_s34b_b79k"
    device: str = "auto"
    imgsz: int = 640
    conf: float = 0.4
    iou: float = 0.9
    half: bool | None = None
    max_det: int = 100
    threads: int | None = None
    retina_masks: bool = True

    def __post_init__(self) -> None:
        if self.imgsz < 32 or self.imgsz % 32:
            raise ValueError(f"model.imgsz must be a positive multiple of 32, got {self.imgsz}")
        for name in ("conf", "iou"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"model.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.max_det < 1:
            raise ValueError(f"model.max_det must be >= 1, got {self.max_det}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"model.threads must be >= 1, got {self.threads}")


@dataclass(frozen=True)
class OutputConfig:
    """How results are drawn and written.

    Attributes:
        fps: frame rate of the overlay video when the source does not say (webcams, folders).
        codec: fourcc of the overlay video.
        opacity: mask opacity in the overlay.
        labels: draw "#id prompt" labels.
        boxes: draw boxes.
        stats: draw FPS and per-stage milliseconds.
    """

    fps: float = 30.0
    codec: str = "mp4v"
    opacity: float = 0.5
    labels: bool = True
    boxes: bool = False
    stats: bool = True

    def __post_init__(self) -> None:
        if self.fps <= 0:
            raise ValueError(f"output.fps must be > 0, got {self.fps}")
        if len(self.codec) != 4:
            raise ValueError(f"output.codec must be a four-letter fourcc, got {self.codec!r}")
        if not 0 <= self.opacity <= 1:
            raise ValueError(f"output.opacity must be in [0, 1], got {self.opacity}")


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    keyframes: KeyframeConfig = field(default_factory=KeyframeConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


def _build(cls: type, values: Any, where: str) -> Any:
    """An instance of dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types."""
    if not isinstance(values, dict):
        raise RtsegError(f"{where}: expected a mapping, got {type(values).__name__}")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise RtsegError(f"{where}: unknown key '{unknown[0]}' (known: {', '.join(sorted(names))})")
    kwargs = {}
    for key, value in values.items():
        hint = hints[key]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value or {}, f"{where}.{key}" if where else key)
            continue
        kwargs[key] = _coerce(value, hint, f"{where}.{key}")
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise RtsegError(f"{where}: {exc}") from exc


def _coerce(value: Any, hint: Any, where: str) -> Any:
    allowed = getattr(hint, "__args__", (hint,))
    if value is None and type(None) in allowed:
        return None
    for t in allowed:
        if t is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if t in (str, bool) and isinstance(value, t):
            return value
    names = "/".join("null" if t is type(None) else t.__name__ for t in allowed)
    raise RtsegError(f"{where}: expected {names}, got {value!r}")


def load_config(path: str | Path | None) -> Config:
    """Defaults, overlaid by the YAML file at ``path`` (sections: model, tracker, keyframes, output)."""
    if path is None:
        return Config()
    try:
        doc = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise RtsegError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise RtsegError(f"config {path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    config = _build(Config, doc, f"config {path}")
    return _relative_to(config, Path(path).parent)


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
