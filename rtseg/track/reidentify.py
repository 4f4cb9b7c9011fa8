"""Everything mode's identities: one id per object, kept while the model loses the object for a while.

Two ways an object got a new id before:

- a **second mask of one object**: the model often gives one shape two nearly equal masks (nested,
  or one a bit larger), under the duplicate IoU. The second one was born as a track of its own,
  and whichever of the two the next frame matched better took the object. A segment that lies
  mostly inside a tracked segment of similar size (or holds one) is that object again:
  :func:`duplicates`; no track is born for it.
- an object **lost for longer than ``max_age``** (behind an occluder, out of the frame and back, or
  under a crossing object) came back with a new id. Lost tracks are now remembered for
  ``tracker.memory`` frames, and a new segment is re-identified as one of them
  (:func:`reidentify`) when it lies near the track's path (from where it was last seen to where its
  velocity carries it, kept in the frame: what left comes back through the border), is not far
  larger than the object was, and looks like it did when last seen (:mod:`rtseg.track.appearance`).

>>> small = np.zeros((3, 8, 8), bool); small[0, 1:5, 1:5] = True; small[1, 1:5, 1:4] = True; small[2, 6:, 6:] = True
>>> duplicates(small, np.array([1, 2]), np.array([0])).tolist()   # 1 is a second mask of 0, 2 is not
[True, False]
"""

from __future__ import annotations

import numpy as np

from rtseg.config import TrackerConfig
from rtseg.track.appearance import Embedder, embeddings
from rtseg.track.associate import match
from rtseg.track.state import SegmentFrame, Track

NESTED = 0.8  # a second mask of an object: at least this fraction of the smaller of the two inside the other
SIMILAR = 2.0  # ... and at most this many times the other's area (a larger region holds objects, it is not one)


def duplicates(small: np.ndarray, idx: np.ndarray, owned: np.ndarray) -> np.ndarray:
    """(len(idx),) bool: which segments ``idx`` of the grid masks ``small`` (N, h, w) bool are a
    second mask of one of the segments ``owned``: one of a pair of similar size (within ``SIMILAR``)
    with ``NESTED`` of the smaller inside the larger."""
    if len(idx) == 0 or len(owned) == 0:
        return np.zeros(len(idx), bool)
    a = small[idx].reshape(len(idx), -1).astype(np.float32)
    b = small[owned].reshape(len(owned), -1).astype(np.float32)
    inter = a @ b.T
    area_a, area_b = a.sum(axis=1)[:, None], b.sum(axis=1)[None, :]
    lo, hi = np.minimum(area_a, area_b), np.maximum(area_a, area_b)
    return ((inter >= NESTED * np.maximum(lo, 1)) & (hi <= SIMILAR * lo)).any(axis=1)


def distances(tracks: list[Track], points: np.ndarray, now: int, shape: tuple[int, int]) -> np.ndarray:
    """(K, N) float: how far each of ``points`` (N, 2) x y is from each lost track's path on the
    (h, w) grid: the line from where it was last seen to where its velocity carries it by ``now``,
    kept inside the grid (an object that turned back, stopped, or left the frame and came back
    through the border is somewhere along it)."""
    if not tracks or not len(points):
        return np.zeros((len(tracks), len(points)))
    steps = np.array([now - t.seen for t in tracks], float)[:, None]
    start = np.clip(np.stack([t.centroid for t in tracks]), 0, [shape[1] - 1, shape[0] - 1])
    end = np.clip(start + np.stack([t.velocity for t in tracks]) * steps, 0, [shape[1] - 1, shape[0] - 1])
    path = (end - start)[:, None]  # (K, 1, 2)
    along = ((points[None] - start[:, None]) * path).sum(axis=2) / np.maximum((path ** 2).sum(axis=2), 1e-9)
    nearest = start[:, None] + np.clip(along, 0, 1)[..., None] * path
    return np.linalg.norm(points[None] - nearest, axis=2)


def gates(tracks: list[Track], now: int) -> np.ndarray:
    """(K,) float: how far from its path each lost track may come back, in grid cells: its size
    (twice its radius at its largest) and half the way its velocity carried it (the velocity of a
    mask going behind something lags the object's)."""
    if not tracks:
        return np.zeros(0)
    radius = np.sqrt(np.array([t.peak for t in tracks], float) / np.pi)
    moved = np.array([np.hypot(*t.velocity) * (now - t.seen) for t in tracks])
    return 2 * radius + 0.5 * moved


def reidentify(lost: list[Track], frame: SegmentFrame, idx: np.ndarray, now: int, embedder: Embedder,
               config: TrackerConfig) -> dict[int, Track]:
    """Segment -> lost track, for the new segments ``idx`` that are lost tracks' objects back.

    A pair qualifies when the segment's centroid is within the track's gate (:func:`gates`) of its
    path (:func:`distances`), its area is at most ``config.max_growth`` times the largest the track had,
    and its appearance embedding is at least ``config.reidentify_min`` similar to the track's last
    one (``Track.embedding``); pairs are matched one-to-one, the nearer and more alike first."""
    lost = [t for t in lost if t.embedding is not None]
    if not lost or len(idx) == 0:
        return {}
    dist = distances(lost, frame.cents[idx], now, frame.small.shape[1:])
    near = np.nan_to_num(1 - dist / gates(lost, now)[:, None], nan=-1.0)
    near[frame.areas[idx][None, :] > config.max_growth * np.array([t.peak for t in lost])[:, None]] = -1.0
    cols = np.nonzero((near > 0).any(axis=0))[0]
    if len(cols) == 0:
        return {}
    emb = embeddings(embedder, frame, idx[cols])  # only for segments some lost track may be
    sims = np.stack([t.embedding[0] for t in lost]) @ emb.T  # type: ignore[index]
    score = np.where((near[:, cols] > 0) & (sims >= config.reidentify_min), sims * near[:, cols], 0.0)
    rows, picked = match(score, 1e-6)
    return {int(idx[cols[c]]): lost[r] for r, c in zip(rows, picked)}


def free_segments(frame: SegmentFrame, previous: SegmentFrame | None, lost: list[Track], embedder: Embedder
                  ) -> np.ndarray:
    """The segments no track continues, but for a second mask of one that a track does; the tracks
    in ``lost`` get their looks first (their segments' embeddings in ``previous``, the frame before)."""
    if previous is not None:  # the tracks it held that are lost now were lost since
        gone = {id(t) for t in lost}
        idx = np.array([c for c, t in previous.owner.items() if id(t) in gone], dtype=int)
        if len(idx):
            embeddings(embedder, previous, idx)  # kept in each track's .embedding
    free = np.array([c for c in range(len(frame.small)) if c not in frame.owner], dtype=int)
    return free[~duplicates(frame.small, free, np.array(sorted(frame.owner), dtype=int))]
