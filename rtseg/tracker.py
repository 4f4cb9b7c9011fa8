"""Follow prompted objects (or every segment) from frame to frame by mask IoU.

Every segment of every frame is tracked, one-to-one (Hungarian on the IoU between each track's
motion-predicted mask and the new masks, on a downscaled grid). A prompt binds a user id to one of
these tracks. Because the other segments hold their own tracks, an occluder or a crossing object
claims its own mask and the prompted track is marked lost instead of jumping to it. A lost prompted
object is re-acquired by its text (CLIP, scored once per new or grown candidate) or, for a point or
box prompt, by the colour appearance it had when it was acquired.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import supervision as sv

from rtseg.associate import centroids, downscale, iou_matrix, match, shift
from rtseg.prompts import BoxPrompt, PointPrompt, Prompt, TextPrompt, negatives_of, select_box, select_point
from rtseg.text import TextScorer


@dataclass(frozen=True)
class TrackerConfig:
    """Association settings.

    Attributes:
        match_iou: least IoU between a track's predicted mask and a segment to continue it.
        grid: long side of the grid that association works on (masks are downscaled to it).
        coast: frames a lost track keeps being matched by its motion-predicted mask.
        max_age: frames an unprompted segment track survives unseen.
        min_area: segments smaller than this fraction of the frame are ignored.
        text_keep: a lost text object is re-acquired when a candidate scores at least this fraction
            of the similarity it had when first acquired.
        appearance_min: least colour-histogram similarity (0..1) to re-acquire a point/box object.
        momentum: weight of the previous velocity in the velocity estimate.
    """

    match_iou: float = 0.25
    grid: int = 160
    coast: int = 8
    max_age: int = 5
    min_area: float = 0.0002
    text_keep: float = 0.8
    appearance_min: float = 0.6
    momentum: float = 0.5

    def __post_init__(self) -> None:
        for name in ("match_iou", "min_area", "text_keep", "appearance_min", "momentum"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"tracker.{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("grid", "coast", "max_age"):
            if getattr(self, name) < 1:
                raise ValueError(f"tracker.{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class Track:
    """One segment followed over time. ``id`` is the user-facing id (0 for hidden segment tracks)."""

    key: int
    mask: np.ndarray  # (h, w) bool on the association grid
    centroid: np.ndarray  # (2,) grid pixels
    area: int
    id: int = 0
    prompt: Prompt | None = None
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    lost: int = 0
    hits: int = 1
    score: float = 0.0  # similarity at acquisition (text) or 1.0
    appearance: np.ndarray | None = None
    text_scores: dict[str, tuple[float, int]] = field(default_factory=dict)  # text -> (score, area then)


def colour_histogram(hsv: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Normalised histogram (8 x 3 x 3 bins) of the HSV pixels under a full-size mask."""
    hist = cv2.calcHist([hsv], [0, 1, 2], mask.astype(np.uint8), [8, 3, 3], [0, 180, 0, 256, 0, 256])
    return (hist / max(float(hist.sum()), 1.0)).flatten().astype(np.float32)


def histogram_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya coefficient of two normalised histograms: 1 same, 0 disjoint."""
    return float(np.sum(np.sqrt(a * b)))


class PromptTracker:
    """Associates segments over frames; reports the prompted objects (or, with ``everything``, all).

    Usage: ``add(prompt)`` any time (acquired on the next ``update``), then ``update(image, dets)`` per
    frame, which returns the visible objects as Detections with ``tracker_id`` and ``data["prompt"]``.
    """

    def __init__(self, config: TrackerConfig = TrackerConfig(), text_scorer: TextScorer | None = None,
                 everything: bool = False) -> None:
        self.config = config
        self.text_scorer = text_scorer
        self.everything = everything
        self.reset()

    def reset(self) -> None:
        """Forget every track and prompt."""
        self.tracks: list[Track] = []
        self.pending: list[tuple[int, Prompt]] = []
        self.prompts: dict[int, Prompt] = {}
        self._next_key = 1
        self._next_id = 1

    def add(self, prompt: Prompt) -> int:
        """Queue a prompt; returns the id its object will carry."""
        oid = self._next_id
        self._next_id += 1
        self.pending.append((oid, prompt))
        self.prompts[oid] = prompt
        return oid

    def add_negative(self, oid: int, point: tuple[float, float]) -> None:
        """Add a negative point to object ``oid`` and acquire it again with it."""
        from rtseg.prompts import with_negative

        prompt = with_negative(self.prompts[oid], point)
        self.prompts[oid] = prompt
        for t in self.tracks:
            if t.id == oid and not self.everything:
                t.id, t.prompt = 0, None
        self.pending = [(i, p) for i, p in self.pending if i != oid] + [(oid, prompt)]

    # -- per frame -------------------------------------------------------------------------------
    def update(self, image: np.ndarray, dets: sv.Detections) -> sv.Detections:
        h, w = image.shape[:2]
        masks = dets.mask if dets.mask is not None else np.zeros((0, h, w), bool)
        keep = masks.sum(axis=(1, 2)) >= self.config.min_area * h * w
        dets = dets[keep]
        frame = _Frame(image, masks[keep], self.config.grid)
        small, cents, areas = frame.small, frame.cents, frame.areas

        # 1. Continue tracks: IoU between motion-predicted masks and the new ones, one-to-one.
        live = [t for t in self.tracks if t.lost <= self.config.coast]
        if live:
            steps = np.array([t.lost + 1 for t in live], float)
            vel = np.array([t.velocity for t in live])
            predicted = shift(np.stack([t.mask for t in live]), vel[:, 0] * steps, vel[:, 1] * steps)
        else:
            predicted = np.zeros((0, *small.shape[1:]), bool)
        rows, cols = match(iou_matrix(predicted, small), self.config.match_iou)
        owner: dict[int, Track] = {}
        for r, c in zip(rows, cols):
            t = live[r]
            motion = (cents[c] - t.centroid) / (t.lost + 1)
            t.velocity = self.config.momentum * t.velocity + (1 - self.config.momentum) * motion
            t.mask, t.centroid, t.area, t.lost, t.hits = small[c], cents[c], int(areas[c]), 0, t.hits + 1
            owner[int(c)] = t
        matched = {id(t) for t in owner.values()}
        for t in self.tracks:
            if id(t) not in matched:
                t.lost += 1

        # 2. Bind pending prompts, then re-acquire lost prompted objects, among all segments.
        for oid, prompt in list(self.pending):
            c, score = self._select(prompt, frame, owner)
            if c is not None:
                self.pending.remove((oid, prompt))
                self._bind(oid, prompt, c, score, frame, owner)
        for t in [t for t in self.tracks if t.prompt is not None and t.lost > 0]:
            c, score = self._reacquire(t, frame, owner)
            if c is not None:
                self._bind(t.id, t.prompt, c, score, frame, owner, appearance=t.appearance)
                t.id, t.prompt, t.lost = 0, None, self.config.max_age + 1  # identity handed over

        # 3. New segment tracks for what nobody claimed; drop stale unprompted tracks.
        for c in range(len(frame.masks)):
            if c not in owner:
                owner[c] = self._new_track(small[c], cents[c], int(areas[c]))
        self.tracks = [t for t in self.tracks
                       if (t.prompt is not None and t.id) or t.lost <= self.config.max_age]

        # 4. Report.
        report = [(c, t) for c, t in sorted(owner.items()) if t.id and (self.everything or t.prompt is not None)]
        out = dets[[c for c, _ in report]] if report else dets[np.zeros(0, int)]
        out.tracker_id = np.array([t.id for _, t in report], dtype=int)
        out.data["prompt"] = np.array([str(t.prompt) if t.prompt is not None else "everything" for _, t in report],
                                      dtype=object)
        out.data["score"] = np.array([t.score for _, t in report], dtype=float)
        return out

    # -- helpers ---------------------------------------------------------------------------------
    def _new_track(self, mask: np.ndarray, cent: np.ndarray, area: int) -> Track:
        t = Track(key=self._next_key, mask=mask, centroid=cent, area=area)
        self._next_key += 1
        if self.everything:
            t.id = self._next_id
            self._next_id += 1
        self.tracks.append(t)
        return t

    def _claimable(self, owner: dict[int, Track], n: int) -> np.ndarray:
        """(n,) bool: segments not held by another prompted object."""
        ok = np.ones(n, bool)
        for c, t in owner.items():
            if t.prompt is not None:
                ok[c] = False
        return ok

    def _select(self, prompt: Prompt, frame: _Frame, owner: dict[int, Track]) -> tuple[int | None, float]:
        """The segment a prompt picks among those no other object holds, and its score."""
        idx = np.nonzero(self._claimable(owner, len(frame.masks)))[0]
        if len(idx) == 0:
            return None, 0.0
        if isinstance(prompt, TextPrompt):
            sims = self._text_similarity(prompt, frame, idx, owner)
            k = int(np.argmax(sims))
            return (int(idx[k]), float(sims[k])) if np.isfinite(sims[k]) else (None, 0.0)
        pick = select_point if isinstance(prompt, PointPrompt) else select_box
        k = pick(frame.masks[idx], prompt)  # type: ignore[arg-type]
        return (None, 0.0) if k is None else (int(idx[k]), 1.0)

    def _text_similarity(self, prompt: TextPrompt, frame: _Frame, idx: np.ndarray,
                         owner: dict[int, Track]) -> np.ndarray:
        """Similarity of ``prompt`` to segments ``idx``; reuses a segment track's cached score until its
        area grows by a third (an object coming into view)."""
        if self.text_scorer is None:
            raise RuntimeError("a text prompt needs a TextScorer (a CLIP model)")
        sims = np.zeros(len(idx))
        todo = []
        for k, c in enumerate(idx):
            t = owner.get(int(c))
            cached = t.text_scores.get(prompt.text) if t is not None else None
            if cached is not None and t is not None and t.area <= cached[1] * 4 / 3:
                sims[k] = cached[0]
            else:
                todo.append(k)
        if todo:
            fresh = self.text_scorer.similarity(prompt.text, frame.image, frame.masks[idx[todo]])
            for k, s in zip(todo, fresh):
                sims[k] = s
                t = owner.get(int(idx[k]))
                if t is not None:
                    t.text_scores[prompt.text] = (float(s), t.area)
        excluded = np.zeros(len(idx), bool)
        for x, y in negatives_of(prompt):
            excluded |= frame.masks[idx, int(y), int(x)]
        sims[excluded] = -np.inf
        return sims

    def _reacquire(self, track: Track, frame: _Frame, owner: dict[int, Track]) -> tuple[int | None, float]:
        """A segment that looks like lost ``track``'s object: by its text, or by its colours."""
        ok = self._claimable(owner, len(frame.masks))
        prompt = track.prompt
        if isinstance(prompt, TextPrompt):
            idx = np.nonzero(ok)[0]
            if len(idx) == 0:
                return None, 0.0
            sims = self._text_similarity(prompt, frame, idx, owner)
            k = int(np.argmax(sims))
            return (int(idx[k]), track.score) if sims[k] >= self.config.text_keep * track.score else (None, 0.0)
        # Colours alone are weaker evidence: only new or young segments, never an established one.
        for c, t in owner.items():
            if t.hits > 3 * (self.config.max_age + 1):
                ok[c] = False
        idx = np.nonzero(ok)[0]
        if len(idx) == 0 or track.appearance is None:
            return None, 0.0
        sims = np.array([histogram_similarity(track.appearance, frame.histogram(c)) for c in idx])
        k = int(np.argmax(sims))
        return (int(idx[k]), track.score) if sims[k] >= self.config.appearance_min else (None, 0.0)

    def _bind(self, oid: int, prompt: Prompt, c: int, score: float, frame: _Frame, owner: dict[int, Track],
              appearance: np.ndarray | None = None) -> None:
        """Give segment ``c`` the identity ``oid``, taking over its segment track if it has one."""
        t = owner.get(c)
        if t is None:
            t = self._new_track(frame.small[c], frame.cents[c], int(frame.areas[c]))
            owner[c] = t
        t.id, t.prompt, t.score = oid, prompt, score
        t.appearance = frame.histogram(c) if appearance is None else appearance


class _Frame:
    """One frame's segments, on the full and the association grid, with lazily computed colours."""

    def __init__(self, image: np.ndarray, masks: np.ndarray, grid: int) -> None:
        h, w = image.shape[:2]
        self.image, self.masks = image, masks
        factor = max(1, int(np.ceil(max(h, w) / grid)))
        self.small = downscale(masks, factor)
        self.cents = centroids(self.small)
        self.areas = self.small.sum(axis=(1, 2))
        self._hsv: np.ndarray | None = None

    def histogram(self, c: int) -> np.ndarray:
        if self._hsv is None:
            self._hsv = cv2.cvtColor(self.image, cv2.COLOR_BGR2HSV)
        return colour_histogram(self._hsv, self.masks[c])
