"""The config sections: one frozen dataclass per stage, every value range-checked when it is made."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

_RULES: dict[str, Callable[[float], bool]] = {
    "[0, 1]": lambda v: 0 <= v <= 1,
    "(0, 1]": lambda v: 0 < v <= 1,
    ">= 1": lambda v: v >= 1,
    "> 0": lambda v: v > 0,
    ">= 0": lambda v: v >= 0,
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
        refine: full-size masks' edges moved to the frame's colour edges by a guided filter
            (:mod:`rtseg.segment.refine`) of this radius in prototype cells (a cell is 4 model-input
            pixels, at the frame's scale: 4 pixels at 640x480 and imgsz 640, 12 at 1920x1080); 0: the
            masks as the model gives them.
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
    refine: float = 1.0

    def __post_init__(self) -> None:
        if self.imgsz < 32 or self.imgsz % 32:
            raise ValueError(f"model.imgsz must be a positive multiple of 32, got {self.imgsz}")
        _check(self, "model", {"[0, 1]": ("conf", "iou"), ">= 1": ("max_det", "threads"), ">= 0": ("refine",)})


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
        memory: in everything mode, frames a lost track is remembered unseen: a new segment near
            where its motion puts it, that looks like it, is its object back with its id.
        young: a lost object is re-acquired only by segments tracked for at most this many frames
            (an established segment is another object).
        min_area: segments smaller than this fraction of the frame are ignored.
        text_keep: a lost text object is re-acquired when a segment scores at least this fraction of
            the similarity it had at acquisition.
        appearance_min: least appearance similarity (cosine, 0..1) to re-acquire a point/box object.
        reidentify_min: least appearance similarity to re-identify a lost track in everything mode
            (lower than ``appearance_min``: only segments near its path are compared; with the colour
            embedder, the objects coming back scored 0.66-1.0 on the synthetic samples, other objects
            near their paths at most 0.57).
        momentum: weight of the previous velocity in the velocity estimate.
    """

    match_iou: float = 0.25
    max_growth: float = 2.5
    duplicate_iou: float = 0.8
    grid: int = 160
    coast: int = 30
    max_age: int = 5
    memory: int = 60
    young: int = 45
    min_area: float = 0.0002
    text_keep: float = 0.8
    appearance_min: float = 0.75
    reidentify_min: float = 0.65
    momentum: float = 0.5

    def __post_init__(self) -> None:
        _check(self, "tracker", {"[0, 1]": ("match_iou", "duplicate_iou", "min_area", "text_keep", "appearance_min",
                                            "reidentify_min", "momentum"),
                                 ">= 1": ("max_growth", "grid", "coast", "max_age", "memory", "young")})


@dataclass(frozen=True)
class ConceptConfig:
    """How a concept prompt (``--concept``: every instance of a phrase) decides what is an instance.

    CLIP judges a segment against the concepts' phrases and ``contrast`` together: the softmax of its
    similarities to them at the model's own temperature (its logit scale) is the probability that it
    is each; the segment votes for a concept when that phrase is the likeliest and its probability is
    at least ``min_prob``. Defaults chosen on training seeds of the shapes world's concept scenario.

    Attributes:
        contrast: phrases judged beside the concepts that no object answers: the other things the
            scene holds (an instance must look more like its phrase than like any of them), and a
            neutral phrase or two. The shapes world's config lists its vocabulary.
        min_prob: least probability of a vote.
        accept: votes in a row, one a frame, before a segment becomes an instance.
        drop: votes against in a row, one a frame, before an instance is dropped.
        every: a settled verdict is judged again every this many frames (and when its segment's area
            has grown by a third since).
    """

    contrast: tuple[str, ...] = ("an object", "something", "the background")
    min_prob: float = 0.5
    accept: int = 2
    drop: int = 2
    every: int = 30

    def __post_init__(self) -> None:
        _check(self, "concepts", {"[0, 1]": ("min_prob",), ">= 1": ("accept", "drop", "every")})


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
    max_changed: float = 0.13
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
        video_size: the same for the overlay video (a 4K source: a 1080p video, a quarter of the pixels
            to draw and encode), ``""``: the frame's size; masks and JSON lines keep the frame's size.
    """

    fps: float = 30.0
    codec: str = "mp4v"
    opacity: float = 0.5
    labels: bool = True
    boxes: bool = False
    stats: bool = True
    window_size: str = "1280x720"
    video_size: str = "1920x1080"

    @property
    def window(self) -> tuple[int, int]:
        """``window_size`` as (width, height)."""
        return _wxh(self.window_size, "window_size")

    @property
    def video(self) -> tuple[int, int] | None:
        """``video_size`` as (width, height); None (``""``): the frame's size."""
        return _wxh(self.video_size, "video_size") if self.video_size else None

    def __post_init__(self) -> None:
        if len(self.codec) != 4:
            raise ValueError(f"output.codec must be a four-letter fourcc, got {self.codec!r}")
        _wxh(self.window_size, "window_size")  # WIDTHxHEIGHT, or a ValueError naming the key
        if self.video_size:  # empty: the frame's size
            _wxh(self.video_size, "video_size")
        _check(self, "output", {"> 0": ("fps",), "[0, 1]": ("opacity",)})


def _wxh(value: str, key: str) -> tuple[int, int]:
    """``"1920x1080"`` -> (1920, 1080), each side 32 to 65535.

    >>> _wxh("1920X1080", "window_size")
    (1920, 1080)
    """
    sides = value.lower().split("x")
    if len(sides) == 2 and all(v.isascii() and v.isdigit() and 32 <= int(v) <= 65535 for v in sides):
        return int(sides[0]), int(sides[1])
    raise ValueError(f"output.{key} must be WIDTHxHEIGHT, each 32 to 65535, e.g. 1280x720, got {value!r}")


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
    concepts: ConceptConfig = field(default_factory=ConceptConfig)
    keyframes: KeyframeConfig = field(default_factory=KeyframeConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
