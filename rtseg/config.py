"""Typed configuration: one frozen dataclass per stage (model, tracker, keyframes, output, camera), loaded
from YAML with unknown keys rejected and every value range-checked when it is made.

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
from typing import Any, Callable, get_type_hints

import yaml

from rtseg.errors import RtsegError

_RULES: dict[str, Callable[[float], bool]] = {
    "[0, 1]": lambda v: 0 <= v <= 1,
    "(0, 1]": lambda v: 0 < v <= 1,
    ">= 1": lambda v: v >= 1,
    "> 0": lambda v: v > 0,
}


def _check(section: Any, name: str, rules: dict[str, tuple[str, ...]]) -> None:
    """The one range check: raise ValueError naming ``name.key`` for a value outside its rule (None passes).

    >>> _check(OutputConfig(), "output", {"> 0": ("fps",)})
    >>> _check(OutputConfig(opacity=0.5), "output", {"(0, 1]": ("opacity",), ">= 1": ("opacity",)})
    Traceback (most recent call last):
    ValueError: output.opacity must be >= 1, got 0.5
    """
    for rule, keys in rules.items():
        for key in keys:
            value = getattr(section, key)
            if value is not None and not _RULES[rule](value):
                where = "in " if rule[0] in "[(" else ""
                raise ValueError(f"{name}.{key} must be {where}{rule}, got {value}")



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
        _check(self, "model", {"[0, 1]": ("conf", "iou"), ">= 1": ("max_det", "threads")})


@dataclass(frozen=True)
class TrackerConfig:
    """Association settings.

    Attributes:
        match_iou: least IoU between a track's predicted mask and a segment to continue it.
        max_growth: a segment more than this many times larger than a track (of 50 grid cells or more)
            does not continue it.
        duplicate_iou: segments overlapping a more confident one by this IoU are dropped as duplicates.
        grid: long side of the grid that association works on (masks are downscaled to it).
        coast: frames a lost object keeps being matched by its motion-predicted mask.
        max_age: frames an unprompted segment track survives (and is matched) unseen.
        young: a lost object is re-acquired only by segments tracked for at most this many frames
            (an established segment is another object).
        min_area: segments smaller than this fraction of the frame are ignored.
        text_keep: a lost text object is re-acquired when a segment scores at least this fraction of
            the similarity it had at acquisition.
        appearance_min: least appearance similarity (cosine, 0..1) to re-acquire a point/box object.
        momentum: weight of the previous velocity in the velocity estimate.
    """

    match_iou: float = 0.25
    max_growth: float = 2.5
    duplicate_iou: float = 0.8
    grid: int = 160
    coast: int = 30
    max_age: int = 5
    young: int = 45
    min_area: float = 0.0002
    text_keep: float = 0.8
    appearance_min: float = 0.75
    momentum: float = 0.5

    def __post_init__(self) -> None:
        _check(self, "tracker", {"[0, 1]": ("match_iou", "duplicate_iou", "min_area", "text_keep", "appearance_min",
                                            "momentum"),
                                 ">= 1": ("max_growth", "grid", "coast", "max_age", "young")})


@dataclass(frozen=True)
class KeyframeConfig:
    """When to segment, and when a carried mask still fits.

    Attributes:
        every: segment every this many frames at most (1: every frame, nothing carried).
        scale: resolution the objects are matched at, as a fraction of the frame's.
        search: how far (frame pixels) from its predicted place an object is looked for.
        max_changed: most fraction of the keyframe object's pixels that may have changed colour under
            its carried mask (by more than 40 of 255 in a channel).
        min_inside: least fraction of a carried mask that stays inside the frame.
    """

    every: int = 1
    scale: float = 0.5
    search: int = 32
    max_changed: float = 0.1
    min_inside: float = 0.95

    def __post_init__(self) -> None:
        _check(self, "keyframes", {">= 1": ("every", "search"), "(0, 1]": ("scale",),
                                   "[0, 1]": ("max_changed", "min_inside")})


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
        window_size: ``WIDTHxHEIGHT`` that the live window scales larger frames down to fit, aspect
            kept (never up); clicks are mapped back to the frame's pixels.
    """

    fps: float = 30.0
    codec: str = "mp4v"
    opacity: float = 0.5
    labels: bool = True
    boxes: bool = False
    stats: bool = True
    window_size: str = "1280x720"

    @property
    def window(self) -> tuple[int, int]:
        """``window_size`` as (width, height).

        >>> OutputConfig(window_size="1920X1080").window
        (1920, 1080)
        """
        w, _, h = self.window_size.lower().partition("x")
        return int(w), int(h)

    def __post_init__(self) -> None:
        if len(self.codec) != 4:
            raise ValueError(f"output.codec must be a four-letter fourcc, got {self.codec!r}")
        sides = self.window_size.lower().split("x")
        if not (len(sides) == 2 and all(v.isascii() and v.isdigit() and 32 <= int(v) <= 65535 for v in sides)):
            raise ValueError(f"output.window_size must be WIDTHxHEIGHT, each 32 to 65535, e.g. 1280x720, "
                             f"got {self.window_size!r}")
        _check(self, "output", {"> 0": ("fps",), "[0, 1]": ("opacity",)})


@dataclass(frozen=True)
class CameraConfig:
    """Pinhole intrinsics of the colour camera, for objects' 3D positions from a depth image that is
    registered to it (same size, pixel for pixel).

    Attributes:
        fx: focal length along x, in pixels (None: not set, no 3D positions).
        fy: focal length along y, in pixels.
        cx: principal point x, in pixels (pixel centres at integer coordinates).
        cy: principal point y, in pixels.
        depth_scale: metres per depth unit (0.001: depth in millimetres).

    >>> CameraConfig(fx=600.0, fy=600.0, cx=319.5, cy=239.5).intrinsics_set
    True
    >>> CameraConfig(fx=600.0)
    Traceback (most recent call last):
    ValueError: camera.fx, fy, cx and cy must be set together (missing: fy, cx, cy)
    """

    fx: float | None = None
    fy: float | None = None
    cx: float | None = None
    cy: float | None = None
    depth_scale: float = 0.001

    @property
    def intrinsics_set(self) -> bool:
        return None not in (self.fx, self.fy, self.cx, self.cy)

    def __post_init__(self) -> None:
        missing = [k for k in ("fx", "fy", "cx", "cy") if getattr(self, k) is None]
        if 0 < len(missing) < 4:
            raise ValueError(f"camera.fx, fy, cx and cy must be set together (missing: {', '.join(missing)})")
        _check(self, "camera", {"> 0": ("fx", "fy", "depth_scale")})


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    keyframes: KeyframeConfig = field(default_factory=KeyframeConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)


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
    """Defaults, overlaid by the YAML file at ``path`` (sections: model, tracker, keyframes, output, camera)."""
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
