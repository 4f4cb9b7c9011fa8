"""What the tracker keeps: one :class:`Track` per followed segment, and :class:`SegmentFrame`, one
frame's segments on the association grid together with which track each one continues."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import supervision as sv

from rtseg.detections import compact_of, take
from rtseg.masks import Crop, crops, from_crops
from rtseg.prompt.prompts import Prompt
from rtseg.track.associate import centroids


@dataclass
class Verdict:
    """What CLIP said of a segment track for the concept prompts (:mod:`rtseg.track.concepts`): the
    concept it votes for and how many frames in a row it has (for an instance: ``against``, how many
    in a row CLIP was sure it is something else)."""

    concept: int  # a concept's index, or concepts.OTHER / concepts.UNSURE
    prob: float
    votes: int
    area: int  # the segment's area on the grid when judged
    due: int  # the tracker frame at which it is judged again
    against: int = 0
    forgotten: bool = False  # the user forgot this instance: never one again while it is tracked
    settled: bool = False  # the user corrected this instance: no vote drops it


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
    peak: int = 0  # the largest area it had
    score: float = 1.0  # text similarity at acquisition
    appearance: np.ndarray | None = None  # the object's embedding at acquisition
    embedding: tuple[np.ndarray, int] | None = None  # this segment's embedding, and its area then
    verdict: Verdict | None = None  # what CLIP said of it for the concept prompts

    def box(self, factor: int) -> tuple[float, float, float, float]:
        """Its box where it was last seen, in frame pixels (the grid is ``factor`` times coarser)."""
        ys, xs = np.nonzero(self.mask)
        return (float(xs.min() * factor), float(ys.min() * factor), float((xs.max() + 1) * factor),
                float((ys.max() + 1) * factor))


class SegmentFrame:
    """One frame's segments: on the association grid (``small`` (N, h, w) bool, with ``cents`` and
    ``areas``), at the frame's size where asked for (:meth:`compact` as box crops, :meth:`full`
    dense: made once per segment, and only for the segments that need them), and ``owner``: segment
    index -> the track it continues, filled in as the frame is associated."""

    def __init__(self, image: np.ndarray, dets: sv.Detections, small: np.ndarray) -> None:
        self.image, self.dets, self.small = image, dets, small
        self.cents = centroids(self.small)
        self.areas = self.small.sum(axis=(1, 2))
        self.owner: dict[int, Track] = {}
        self._crops: dict[int, Crop] = {}

    def compact(self, idx: np.ndarray) -> sv.CompactMask:
        """The masks of segments ``idx`` at the frame's size, as box crops."""
        shape = self.image.shape[:2]
        todo = [int(c) for c in idx if int(c) not in self._crops]
        if isinstance(self.dets.mask, sv.CompactMask):  # made already (every segment is reported)
            if len(todo) == len(idx):
                return self.dets.mask[np.asarray(idx, dtype=int)]
            self._crops.update(zip(todo, crops(self.dets.mask[np.array(todo, dtype=int)])))
        elif todo:
            self._crops.update(zip(todo, crops(compact_of(take(self.dets, np.array(todo)), shape))))
        made = [self._crops[int(c)] for c in idx]
        return from_crops([c for c, _, _ in made], [(x, y) for _, x, y in made], shape)

    def add_part(self, c: int, small: np.ndarray, crop: Crop) -> int:
        """Add a part of segment ``c`` as a segment of its own: ``small`` (h, w) bool on the grid,
        ``crop`` its frame-size mask (crop, x, y); returns its index."""
        n = len(self.small)
        self.small = np.concatenate([self.small, small[None]])
        self.cents = np.concatenate([self.cents, centroids(small[None])])
        self.areas = np.append(self.areas, int(small.sum()))
        self.dets = take(self.dets, np.append(np.arange(n), c))  # the segment's row (a reported box is its mask's)
        self._crops[n] = crop
        return n

    def full(self, idx: np.ndarray) -> np.ndarray:
        """(len(idx), H, W) bool masks of segments ``idx``."""
        if len(idx) == 0:
            return np.zeros((0, *self.image.shape[:2]), bool)
        return np.asarray(self.compact(idx), dtype=bool)

    def free(self) -> np.ndarray:
        """(N,) bool: segments no prompted object holds."""
        ok = np.ones(len(self.small), bool)
        for c, t in self.owner.items():
            ok[c] = t.prompt is None
        return ok
