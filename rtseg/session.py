"""The Session: segmenter + prompts + tracker, fed one frame at a time. Every consumer (the CLI,
the web page, the benchmark, a script) runs one; :func:`rtseg.runner.run` feeds it from a source and
hands its results to sinks.

>>> from rtseg import Session, TextPrompt                                   # doctest: +SKIP
>>> session = Session(load_config("configs/demo.yaml"))                      # doctest: +SKIP
>>> session.add(TextPrompt("the red circle"))                                # doctest: +SKIP
>>> for result in session.run("samples/showcase/video.mp4"):                  # doctest: +SKIP
...     print(result.index, result.detections.tracker_id, result.detections.xyxy)

No window, no file: a robot or a script consumes ``result.detections`` directly (dense
``sv.Detections``: ``mask``, ``xyxy``, ``tracker_id`` and ``data[PROMPT]``; see :mod:`rtseg.detections`).
Frames that come with a depth image (:mod:`rtseg.capture.depth`) also get each object's 3D centroid
(``data[XYZ]``), with ``camera`` intrinsics in the config.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
import supervision as sv

from rtseg.capture.sources import Frame, Source, open_source
from rtseg.config import Config
from rtseg.detections import DEPTH_PIXELS, EXTENT, XYZ, compact_of, masks_of, take
from rtseg.errors import RtsegError, warn
from rtseg.geometry import objects_3d
from rtseg.prompt.clip import TextScorer
from rtseg.prompt.prompts import BoxPrompt, ConceptPrompt, PointPrompt, Prompt, TextPrompt, validate
from rtseg.segment.fastsam import FastSAMSegmenter, Segmenter
from rtseg.track.appearance import TextEmbedder
from rtseg.track.keyframes import MaskCarrier
from rtseg.track.tracker import PromptTracker


@dataclass
class FrameResult:
    """What one frame gave: the source frame, the tracked objects (dense Detections), and per-stage
    milliseconds (``segment`` and ``track`` on segmented frames, ``carry`` on frames carried from a
    keyframe; the runner adds ``frame``, the frame's whole work (segmenting it, also when that was
    done ahead on another thread, and tracking it), and ``wait`` for live sources,
    how old the frame was when the loop took it).

    The runner's output stage fills in the last four fields before the sinks see the result."""

    index: int
    time: float
    image: np.ndarray
    detections: sv.Detections
    timings: dict[str, float] = field(default_factory=dict)
    read_at: float = 0.0  # time.monotonic() when the source frame was read
    gap: float = 0.0  # seconds a live source delivered nothing before this frame (it dropped, came back)
    stats: str = ""  # the FPS and stage-times line
    overlay: np.ndarray | None = None  # ``image`` with the objects and the stats line drawn, when a sink wants it
    overlay_at: float | None = None  # time.monotonic() when the overlay was drawn
    output_at: float = 0.0  # time.perf_counter() when the output stage took the frame


class Session:
    """Segmenter + prompts + tracker, fed one frame at a time.

    Args:
        config: models and tracker settings.
        everything: follow every segment instead of prompted objects.
        segmenter: any :class:`~rtseg.segment.fastsam.Segmenter` (default: FastSAM from ``config.model``).
        text_scorer: a :class:`~rtseg.prompt.clip.TextScorer` (default: built from ``config.model.clip``),
            for text prompts and for re-acquiring lost objects by appearance.
        text_required: a CLIP model that cannot be loaded is an error (text prompts will follow),
            instead of a warning and colour-only appearance.
        trust_weights: the default segmenter may load a ``.pt`` that runs code (``--trust-weights``).
    """

    def __init__(self, config: Config = Config(), everything: bool = False, segmenter: Segmenter | None = None,
                 text_scorer: TextScorer | None = None, text_required: bool = False,
                 trust_weights: bool = False) -> None:
        self.config = config
        m = config.model
        self.segmenter = segmenter or FastSAMSegmenter.from_config(m, trust_weights=trust_weights)
        self.clip_error: RtsegError | None = None
        if text_scorer is None and not everything and m.clip:
            try:
                text_scorer = TextScorer(m.clip, device=getattr(self.segmenter, "device", "cpu"))
            except RtsegError as exc:  # clicks and boxes still work; text prompts will say why not
                if text_required:
                    raise
                self.clip_error = exc
                warn(f"{exc}; lost click/box objects will be re-acquired by colour only")
        self.tracker = PromptTracker(config.tracker, text_scorer, everything=everything, concepts=config.concepts)
        self.size: tuple[int, int] | None = None  # (width, height) once a frame has been seen
        # Keyframe mode: segment every k-th frame at most, carry the objects in between (rtseg/track/keyframes.py).
        self.carrier = MaskCarrier(config.keyframes) if config.keyframes.every > 1 else None
        self.keyframe: sv.Detections | None = None  # what the last keyframe reported
        self.carried = 0  # frames carried since it

    @classmethod
    def for_prompts(cls, config: Config, prompts: Sequence[Prompt], everything: bool = False,
                    size: tuple[int, int] | None = None, segmenter: Segmenter | None = None,
                    text_scorer: TextScorer | None = None, trust_weights: bool = False) -> "Session":
        """A session following ``prompts`` (ids 1, 2, ... in order). With a frame ``size`` (width,
        height), the prompts are checked against it before any model is loaded; with a text prompt,
        a CLIP model that cannot be loaded is an error."""
        if size is not None:
            for prompt in prompts:
                validate(prompt, *size)
        session = cls(config, everything=everything, segmenter=segmenter, text_scorer=text_scorer,
                      text_required=any(isinstance(p, (TextPrompt, ConceptPrompt)) for p in prompts),
                      trust_weights=trust_weights)
        for prompt in prompts:
            session.add(prompt)
        return session

    @property
    def everything(self) -> bool:
        return self.tracker.everything

    def add(self, prompt: Prompt) -> int:
        """Start following a new object; returns its id (1, 2, ... in the order added). A
        :class:`~rtseg.prompt.prompts.ConceptPrompt` follows every instance of its phrase, each with
        an id of its own as it is found: it returns 0."""
        if self.size is not None:
            validate(prompt, *self.size)
        if isinstance(prompt, (TextPrompt, ConceptPrompt)) and not isinstance(self.tracker.embedder, TextEmbedder):
            kind = "concept" if isinstance(prompt, ConceptPrompt) else "text"
            raise self.clip_error or RtsegError(f"a {kind} prompt needs a CLIP model (model.clip / --clip-model)")
        if isinstance(prompt, ConceptPrompt) and self.everything:
            raise RtsegError("--concept follows the phrase's instances and --everything every segment: give one")
        return self.tracker.add(prompt)

    def add_negative(self, oid: int, point: tuple[float, float]) -> None:
        self.correct(oid, PointPrompt((point,), (0,)))

    def correct(self, oid: int, fix: PointPrompt | BoxPrompt) -> None:
        """Correct object ``oid`` while it runs, keeping its id, from the next frame on: a positive
        point or a box picks its segment again (a point or box object becomes ``fix``; a text object
        and a concept's instance stay what they are), a point with label 0 excludes the segments that
        hold it. RtsegError for an object that does not exist or a point outside the frame."""
        if oid not in self.tracker.prompts:
            raise RtsegError(f"no object {oid}")
        if self.size is not None:
            validate(fix, *self.size)
        if isinstance(fix, PointPrompt) and not any(fix.labels):
            for point in fix.points:
                self.tracker.add_negative(oid, point)
        else:
            self.tracker.correct(oid, fix)

    def forget(self, oid: int) -> None:
        """Stop following object ``oid`` (KeyError when there is none)."""
        self.tracker.forget(oid)

    def reset(self) -> None:
        """Forget all objects and tracks."""
        self.tracker.reset()
        self.keyframe = None

    def process(self, image: np.ndarray, segments: sv.Detections | None = None, segment_ms: float = 0.0
                ) -> tuple[sv.Detections, dict[str, float]]:
        """Segment and track one BGR frame; returns the objects and per-stage milliseconds.

        ``segments``: the frame's segments, when the segmenter's answer for it is at hand already
        (the web page's preview reuses its first frame's; the runner segments ahead, see
        :attr:`segments_every_frame`), and ``segment_ms`` what they cost; the frame is not carried then."""
        h, w = image.shape[:2]
        if self.size is None:
            self.size = (w, h)
            for _, prompt in self.tracker.pending:
                validate(prompt, w, h)
        timings: dict[str, float] = {}
        if segments is None and self._may_carry():
            assert self.carrier is not None and self.keyframe is not None
            t0 = time.perf_counter()
            masks, fits = self.carrier.step(image)
            if fits:  # else: segment this frame after all
                moved = take(self.keyframe, np.arange(len(self.keyframe)))  # a copy
                moved.mask, moved.xyxy = masks, masks.bbox_xyxy.astype(float)
                dets = self.tracker.carry(image, moved)
                self.carried += 1
                return dets, {"carry": (time.perf_counter() - t0) * 1000}
            timings["carry"] = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        if segments is None:
            segments = self.segmenter(image)
            segment_ms = (time.perf_counter() - t0) * 1000
        t1 = time.perf_counter()
        dets = self.tracker.update(image, segments)
        t2 = time.perf_counter()
        if self.carrier is not None:
            self.carrier.start(image, compact_of(dets, (h, w)))
            self.keyframe, self.carried = dets, 0
        return dets, {**timings, "segment": segment_ms, "track": (t2 - t1) * 1000}

    @property
    def on_accelerator(self) -> bool:
        """Whether the model runs off the CPU (a GPU): its forward then leaves the CPU's cores free
        (the runner writes outputs on several of them); on the CPU it takes them all."""
        return getattr(self.segmenter, "device", "cpu") != "cpu"

    @property
    def segments_every_frame(self) -> bool:
        """Whether every frame is segmented, whatever was tracked before (not keyframe mode, where
        tracking decides which frames are): then a frame's segments can be made while the one
        before it is tracked (:func:`rtseg.runner.run` does)."""
        return self.carrier is None

    def _may_carry(self) -> bool:
        """Whether this frame may be carried from the keyframe instead of segmented: keyframe mode,
        within the interval, and no prompt waiting for segments. (New segments, and lost objects
        coming back, are found on keyframes.)"""
        return (self.carrier is not None and self.keyframe is not None and not self.tracker.pending
                and self.carried < self.config.keyframes.every - 1)

    def run(self, source: str | int | Source) -> Iterator[FrameResult]:
        """Results for every frame of ``source`` (a spec for :func:`~rtseg.capture.sources.open_source` or an
        open Source); live sources skip stale frames."""
        src = source if isinstance(source, Source) else open_source(source)
        with src:
            for frame in src:
                yield self.step(frame)

    def step(self, frame: Frame, segments: sv.Detections | None = None,
             timings: dict[str, float] | None = None) -> FrameResult:
        """Segment and track one source frame (or track its ``segments``, made already: ``timings``
        has their ``segment`` milliseconds); with its depth image, place the objects in 3D too."""
        before = timings or {}
        dets, timings = self.process(frame.image, segments, before.get("segment", 0.0))
        timings = {**before, **timings}
        if frame.depth is not None:
            t0 = time.perf_counter()
            self.locate(dets, frame.depth)
            timings["3d"] = (time.perf_counter() - t0) * 1000
        return FrameResult(frame.index, frame.time, frame.image, dets, timings, frame.read_at, gap=frame.gap)

    def locate(self, dets: sv.Detections, depth: np.ndarray) -> None:
        """Add each object's 3D centroid, extent and depth pixel count to ``dets.data`` (``XYZ``,
        ``EXTENT``, ``DEPTH_PIXELS``: see :mod:`rtseg.detections`) from (H, W) uint16 ``depth``."""
        camera = self.config.camera
        if not camera.intrinsics_set:
            raise RtsegError("frames come with depth but the camera's intrinsics are not known: "
                             "set camera.fx, camera.fy, camera.cx and camera.cy in the config")
        if self.size is not None and depth.shape != self.size[::-1]:
            w, h = self.size
            raise RtsegError(f"the depth image is {depth.shape[1]}x{depth.shape[0]}, the frame {w}x{h}")
        dets.data[XYZ], dets.data[EXTENT], dets.data[DEPTH_PIXELS] = objects_3d(masks_of(dets, depth.shape),
                                                                                 depth, camera)
