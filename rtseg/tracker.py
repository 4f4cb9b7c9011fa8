"""Follow prompted objects (or every segment) from frame to frame by mask IoU.

Every segment of every frame is tracked, one-to-one (Hungarian on the IoU between each track's
motion-predicted mask and the new masks, on a downscaled grid; near-duplicate segments merged
first). Full-size masks are made only for the objects reported and for the segments a new prompt or
a re-acquisition looks at (see :mod:`rtseg.segment`): the rest of the scene costs only its grid.

A prompt binds a user id to one of these tracks. Because the other segments hold tracks of their
own, an occluder or a crossing object claims its own mask, and the prompted track is marked lost
instead of jumping to it.

A lost object is re-acquired among new segments that overlap no other object: a text object when a
segment's CLIP similarity to the text comes back near what it was at acquisition; a point or box
object when a segment's appearance embedding (CLIP image embedding, or a colour histogram without
CLIP) is close to the object's and closer to it than to any other object. Embeddings are computed
once per segment track (again only when the segment grows by a third), never for every mask of
every frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import cv2
import numpy as np
import supervision as sv

from rtseg.associate import centroids, dedupe, downscale, iou_matrix, match, shift
from rtseg.prompts import PointPrompt, Prompt, TextPrompt, negatives_of, select_box, select_point
from rtseg.segment import dense, grid_masks, masks_of, take


class Embedder(Protocol):
    """Unit-norm appearance embeddings (N, D) of the segments ``masks`` (N, H, W) of a BGR image."""

    def encode_crops(self, image: np.ndarray, masks: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class TextEmbedder(Embedder, Protocol):
    """An embedder that also embeds texts in the same space (CLIP): what text prompts need."""

    def encode_text(self, text: str) -> np.ndarray: ...


class ColourEmbedder:
    """Square roots of normalised HSV histograms (8 x 3 x 3 bins): unit vectors whose dot product is
    the Bhattacharyya coefficient (1 same colours, 0 disjoint). The fallback without CLIP."""

    def encode_crops(self, image: np.ndarray, masks: np.ndarray) -> np.ndarray:
        hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
        out = np.zeros((len(masks), 72), np.float32)
        for i, m in enumerate(masks):
            hist = cv2.calcHist([hsv], [0, 1, 2], m.astype(np.uint8), [8, 3, 3], [0, 180, 0, 256, 0, 256])
            out[i] = np.sqrt(hist.flatten() / max(float(hist.sum()), 1.0))
        return out


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
        for name in ("match_iou", "duplicate_iou", "min_area", "text_keep", "appearance_min", "momentum"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"tracker.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.max_growth < 1:
            raise ValueError(f"tracker.max_growth must be >= 1, got {self.max_growth}")
        for name in ("grid", "coast", "max_age", "young"):
            if getattr(self, name) < 1:
                raise ValueError(f"tracker.{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class Track:
    """One segment followed over time. ``id`` is the user-facing id (0 for hidden segment tracks)."""

    mask: np.ndarray  # (h, w) bool on the association grid
    centroid: np.ndarray  # (2,) grid pixels
    area: int
    id: int = 0
    prompt: Prompt | None = None
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    lost: int = 0  # frames unseen
    seen: int = 0  # the frame its mask is from
    hits: int = 1
    score: float = 1.0  # text similarity at acquisition
    appearance: np.ndarray | None = None  # the object's embedding at acquisition
    embedding: tuple[np.ndarray, int] | None = None  # this segment's embedding, and its area then


class _Frame:
    """One frame's segments on the association grid (``small``), and full-size where asked for
    (:meth:`full`: made once per segment, and only for the segments that need them)."""

    def __init__(self, image: np.ndarray, dets: sv.Detections, small: np.ndarray) -> None:
        self.image, self.dets, self.small = image, dets, small
        self.cents = centroids(self.small)
        self.areas = self.small.sum(axis=(1, 2))
        self._full: dict[int, np.ndarray] = {}

    def full(self, idx: np.ndarray) -> np.ndarray:
        """(len(idx), H, W) bool full-size masks of segments ``idx``."""
        todo = [int(c) for c in idx if int(c) not in self._full]
        if todo:
            self._full.update(zip(todo, masks_of(take(self.dets, np.array(todo)), self.image.shape[:2])))
        if len(idx) == 0:
            return np.zeros((0, *self.image.shape[:2]), bool)
        return np.stack([self._full[int(c)] for c in idx])


class PromptTracker:
    """Associates segments over frames; reports the prompted objects (or, with ``everything``, all).

    ``add(prompt)`` any time (acquired on the next ``update``); ``update(image, dets)`` per frame
    returns the visible objects as Detections with ``tracker_id``, ``data["prompt"]`` and
    ``data["score"]``.

    Args:
        config: association settings.
        embedder: CLIP (a :class:`~rtseg.text.TextScorer`, needed for text prompts) or None for
            :class:`ColourEmbedder`.
        everything: report every segment track, each with its own id.
    """

    def __init__(self, config: TrackerConfig = TrackerConfig(), embedder: Embedder | None = None,
                 everything: bool = False) -> None:
        self.config = config
        self.embedder: Embedder = embedder or ColourEmbedder()
        self.everything = everything
        self.reset()

    def reset(self) -> None:
        """Forget every track and prompt."""
        self.tracks: list[Track] = []
        self.pending: list[tuple[int, Prompt]] = []
        self.prompts: dict[int, Prompt] = {}
        self._next_id = 1
        self.frame = 0  # frames seen (updated or carried)

    def add(self, prompt: Prompt) -> int:
        """Queue a prompt; returns the id its object will carry."""
        if isinstance(prompt, TextPrompt) and not isinstance(self.embedder, TextEmbedder):
            raise ValueError("a text prompt needs a CLIP model")
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
            if t.id == oid and t.prompt is not None:
                t.id, t.prompt = 0, None
        self.pending = [(i, p) for i, p in self.pending if i != oid] + [(oid, prompt)]

    # -- per frame -------------------------------------------------------------------------------
    def update(self, image: np.ndarray, dets: sv.Detections, frames: int = 1) -> sv.Detections:
        """Associate this frame's segments; returns the reported objects (a subset of ``dets``).

        ``frames``: frames since the previous ``update`` or ``carry`` (more than 1 when frames were
        skipped); motion is predicted over them."""
        cfg = self.config
        self.frame += frames
        h, w = image.shape[:2]
        factor = self._factor(h, w)
        if self.everything:  # every segment is reported: its full-size mask is made anyway
            masks = masks_of(dets, (h, w))
            dets, small = dense(dets, (h, w), masks), downscale(masks, factor)
        else:  # only the reported objects' (and new prompts' candidates') full-size masks are made
            small = grid_masks(dets, (h, w), factor)
        keep = np.nonzero(small.sum(axis=(1, 2)) * factor * factor >= cfg.min_area * h * w)[0]
        scores = dets.confidence[keep] if dets.confidence is not None else np.ones(len(keep))
        keep = keep[dedupe(small[keep], scores, cfg.duplicate_iou)]
        frame = _Frame(image, take(dets, keep), small[keep])

        owner = self._continue_tracks(frame)  # segment index -> the track it continues

        # Bind pending prompts, then re-acquire lost prompted objects.
        for oid, prompt in list(self.pending):
            c, score = self._select(prompt, frame, owner)
            if c is not None:
                self.pending.remove((oid, prompt))
                self._bind(oid, prompt, c, frame, owner, score=score)
        for t in [t for t in self.tracks if t.prompt is not None and t.lost > 0]:
            c = self._reacquire(t, frame, owner)
            if c is not None:
                self._bind(t.id, t.prompt, c, frame, owner, score=t.score, appearance=t.appearance)  # type: ignore[arg-type]
                t.id, t.prompt, t.lost = 0, None, cfg.max_age + 1  # identity handed over

        # New segment tracks for what nobody claimed; drop stale unprompted tracks.
        for c in range(len(frame.small)):
            if c not in owner:
                owner[c] = self._new_track(frame, c)
        self.tracks = [t for t in self.tracks if t.prompt is not None or t.lost <= cfg.max_age]

        return self._report(frame, owner)

    def carry(self, image: np.ndarray, dets: sv.Detections) -> sv.Detections:
        """A frame without segmentation: the reported objects moved to it (``dets`` as the last
        ``update`` reported them, with moved masks) become their tracks' masks; returns those still
        followed."""
        self.frame += 1
        h, w = image.shape[:2]
        small = downscale(masks_of(dets, (h, w)), self._factor(h, w))
        cents = centroids(small)
        by_id = {t.id: t for t in self.tracks if t.id and not t.lost}
        keep = []
        for k, oid in enumerate(dets.tracker_id if dets.tracker_id is not None else []):
            t = by_id.get(int(oid))
            if t is None or not small[k].any():
                continue
            self._observe(t, small[k], cents[k], int(small[k].sum()))
            keep.append(k)
        return take(dets, np.array(keep, dtype=int))

    # -- helpers ---------------------------------------------------------------------------------
    def _factor(self, h: int, w: int) -> int:
        """How much an (h, w) frame's masks are downscaled for association (to ``config.grid``)."""
        return max(1, int(np.ceil(max(h, w) / self.config.grid)))

    def _observe(self, t: Track, mask: np.ndarray, centroid: np.ndarray, area: int) -> None:
        """Track ``t`` is where ``mask`` is this frame: its velocity follows the move since it was seen."""
        cfg = self.config
        motion = (centroid - t.centroid) / max(self.frame - t.seen, 1)
        t.velocity = cfg.momentum * t.velocity + (1 - cfg.momentum) * motion
        t.mask, t.centroid, t.area, t.seen = mask, centroid, area, self.frame

    def _continue_tracks(self, frame: _Frame) -> dict[int, Track]:
        """Match tracks to segments one-to-one by the IoU of their motion-predicted masks (prompted
        tracks win ties against hidden ones); unmatched tracks count the frames since they were seen."""
        cfg = self.config
        live = [t for t in self.tracks if t.lost <= (cfg.coast if t.prompt is not None else cfg.max_age)]
        if live:
            steps = np.array([min(self.frame - t.seen, 10) for t in live], float)  # 10 frames at most
            vel = np.array([t.velocity for t in live])
            predicted = shift(np.stack([t.mask for t in live]), vel[:, 0] * steps, vel[:, 1] * steps)
        else:
            predicted = np.zeros((0, *frame.small.shape[1:]), bool)
        iou = iou_matrix(predicted, frame.small)
        if live:  # a segment far larger than the track is an occluder or a union, not the object grown
            areas = np.array([t.area for t in live], float)[:, None]
            iou[(frame.areas[None, :] > cfg.max_growth * areas) & (areas >= 50)] = 0.0
        bonus = np.array([0.05 if t.prompt is not None and not t.lost else 0.0 for t in live])[:, None]
        rows, cols = match(np.where(iou >= cfg.match_iou, iou + bonus, 0.0), cfg.match_iou)
        owner: dict[int, Track] = {}
        for r, c in zip(rows, cols):
            t = live[r]
            self._observe(t, frame.small[c], frame.cents[c], int(frame.areas[c]))
            t.lost, t.hits = 0, t.hits + 1
            owner[int(c)] = t
        matched = {id(t) for t in owner.values()}
        for t in self.tracks:
            if id(t) not in matched:
                t.lost = self.frame - t.seen
        return owner

    def _report(self, frame: _Frame, owner: dict[int, Track]) -> sv.Detections:
        """The prompted objects (or every segment, in everything mode) seen this frame, with
        full-size masks: the only segments whose full-size masks every frame needs."""
        report = [(c, t) for c, t in sorted(owner.items()) if t.id and (self.everything or t.prompt is not None)]
        idx = np.array([c for c, _ in report], dtype=int)
        out = dense(take(frame.dets, idx), frame.image.shape[:2], frame.full(idx))
        out.tracker_id = np.array([t.id for _, t in report], dtype=int)
        out.data["prompt"] = np.array([str(t.prompt) if t.prompt is not None else "everything" for _, t in report],
                                      dtype=object)
        return out

    def _new_track(self, frame: _Frame, c: int) -> Track:
        t = Track(mask=frame.small[c], centroid=frame.cents[c], area=int(frame.areas[c]), seen=self.frame)
        if self.everything:
            t.id = self._next_id
            self._next_id += 1
        self.tracks.append(t)
        return t

    def _free(self, owner: dict[int, Track], n: int) -> np.ndarray:
        """(n,) bool: segments no prompted object holds."""
        ok = np.ones(n, bool)
        for c, t in owner.items():
            ok[c] = t.prompt is None
        return ok

    def _embeddings(self, frame: _Frame, idx: np.ndarray, owner: dict[int, Track]) -> np.ndarray:
        """Embeddings (len(idx), D) of segments ``idx``, reusing a segment track's cached one until
        its area grows by a third (an object coming into view)."""
        out: list[np.ndarray | None] = []
        todo = []
        for k, c in enumerate(idx):
            t = owner.get(int(c))
            if t is not None and t.embedding is not None and t.area <= t.embedding[1] * 4 / 3:
                out.append(t.embedding[0])
            else:
                out.append(None)
                todo.append(k)
        if todo:
            fresh = self.embedder.encode_crops(frame.image, frame.full(idx[todo]))
            for k, e in zip(todo, fresh):
                out[k] = e
                t = owner.get(int(idx[k]))
                if t is not None:
                    t.embedding = (e, t.area)
        return np.stack(out) if out else np.zeros((0, 1))  # type: ignore[arg-type]

    def _text_similarity(self, prompt: TextPrompt, frame: _Frame, idx: np.ndarray,
                         owner: dict[int, Track]) -> np.ndarray:
        """CLIP similarity of ``prompt`` to segments ``idx`` (-inf where a negative point falls)."""
        assert isinstance(self.embedder, TextEmbedder)  # checked when the prompt was added
        text = self.embedder.encode_text(prompt.text)
        sims = self._embeddings(frame, idx, owner) @ text
        negatives = negatives_of(prompt)
        masks = frame.full(idx) if negatives else None
        for x, y in negatives:
            sims[masks[:, int(y), int(x)]] = -np.inf  # type: ignore[index]
        return sims

    def _select(self, prompt: Prompt, frame: _Frame, owner: dict[int, Track]) -> tuple[int | None, float]:
        """The segment a prompt picks among those no other object holds, and its score."""
        idx = np.nonzero(self._free(owner, len(frame.small)))[0]
        if len(idx) == 0:
            return None, 0.0
        if isinstance(prompt, TextPrompt):
            sims = self._text_similarity(prompt, frame, idx, owner)
            k = int(np.argmax(sims))
            return (int(idx[k]), float(sims[k])) if np.isfinite(sims[k]) else (None, 0.0)
        pick = select_point if isinstance(prompt, PointPrompt) else select_box
        picked = pick(frame.full(idx), prompt)  # type: ignore[arg-type]
        return (None, 0.0) if picked is None else (int(idx[picked]), 1.0)

    def _reacquire(self, track: Track, frame: _Frame, owner: dict[int, Track]) -> int | None:
        """A new segment, overlapping no other object, that looks like lost ``track``'s object."""
        cfg = self.config
        ok = self._free(owner, len(frame.small))
        for c, t in owner.items():
            ok[c] &= t.hits <= cfg.young
        held = [c for c, t in owner.items() if t.prompt is not None]
        if held and ok.any():  # the union of an object and its neighbour is not a new object
            inside = (frame.small[:, None] & frame.small[None, held]).sum(axis=(2, 3))
            ok &= inside.max(axis=1) <= 0.3 * np.maximum(frame.areas, 1)
        idx = np.nonzero(ok)[0]
        if len(idx) == 0:
            return None
        if isinstance(track.prompt, TextPrompt):
            sims = self._text_similarity(track.prompt, frame, idx, owner)
            k = int(np.argmax(sims))
            return int(idx[k]) if sims[k] >= cfg.text_keep * track.score else None
        if track.appearance is None:
            return None
        emb = self._embeddings(frame, idx, owner)
        sims = emb @ track.appearance
        k = int(np.argmax(sims))
        others = [t.appearance for t in self.tracks if t.prompt is not None and t is not track
                  and t.appearance is not None]
        closer_to_other = bool(others) and float(np.max(np.stack(others) @ emb[k])) > sims[k]
        return int(idx[k]) if sims[k] >= cfg.appearance_min and not closer_to_other else None

    def _bind(self, oid: int, prompt: Prompt, c: int, frame: _Frame, owner: dict[int, Track], score: float,
              appearance: np.ndarray | None = None) -> None:
        """Give segment ``c`` the identity ``oid``, taking over its segment track if it has one."""
        t = owner.get(c)
        if t is None:
            t = owner[c] = self._new_track(frame, c)
        t.id, t.prompt, t.score = oid, prompt, score
        if appearance is None and not isinstance(prompt, TextPrompt):
            appearance = self._embeddings(frame, np.array([c]), owner)[0]
        t.appearance = appearance
