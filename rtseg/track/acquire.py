"""Giving an object its segment: acquisition (a new prompt picks one among the segments no other
object holds) and re-acquisition (a lost object is found again among new segments).

A lost object is re-acquired among new segments that overlap no other object: a text object when a
segment's CLIP similarity to the text comes back near what it was at acquisition; a point or box
object when a segment's appearance embedding is close to the object's and closer to it than to any
other object's that is missing too. Where its motion says it should be (while it coasts), a
segment needs less likeness (:data:`NEAR`): position and looks together are the evidence.
"""

from __future__ import annotations

import numpy as np

from rtseg.config import TrackerConfig
from rtseg.prompt.prompts import PointPrompt, Prompt, TextPrompt
from rtseg.prompt.select import select_box, select_point
from rtseg.track.appearance import Embedder, TextEmbedder, embeddings, text_similarity
from rtseg.track.associate import iou_matrix
from rtseg.track.state import SegmentFrame, Track

# Where the object's motion puts it, a segment needs this fraction of the usual likeness to be it.
NEAR = 0.7


def select(prompt: Prompt, frame: SegmentFrame, embedder: Embedder) -> tuple[int | None, float]:
    """The segment a prompt picks among those no other object holds, and its score."""
    idx = np.nonzero(frame.free())[0]
    if len(idx) == 0:
        return None, 0.0
    if isinstance(prompt, TextPrompt):
        assert isinstance(embedder, TextEmbedder)  # checked when the prompt was added
        sims = text_similarity(embedder, prompt, frame, idx)
        k = int(np.argmax(sims))
        return (int(idx[k]), float(sims[k])) if np.isfinite(sims[k]) else (None, 0.0)
    pick = select_point if isinstance(prompt, PointPrompt) else select_box
    picked = pick(frame.full(idx), prompt)  # type: ignore[arg-type]
    return (None, 0.0) if picked is None else (int(idx[picked]), 1.0)


def reacquire(track: Track, frame: SegmentFrame, tracks: list[Track], embedder: Embedder,
              config: TrackerConfig, predicted: np.ndarray | None = None, near_only: bool = False) -> int | None:
    """A new segment, overlapping no other object, that looks like lost ``track``'s object
    (``tracks``: every track, for the other objects' appearances). ``predicted``: where the object
    would be by its motion (on the grid), while it coasts: a segment there needs less likeness;
    with ``near_only``, only a segment there (a concept's instance looks like every other one)."""
    ok = frame.free()
    for c, t in frame.owner.items():
        ok[c] &= t.hits <= config.young
    held = [c for c, t in frame.owner.items() if t.prompt is not None]
    if held and ok.any():  # the union of an object and its neighbour is not a new object
        inside = (frame.small[:, None] & frame.small[None, held]).sum(axis=(2, 3))
        ok &= inside.max(axis=1) <= 0.3 * np.maximum(frame.areas, 1)
    idx = np.nonzero(ok)[0]
    if len(idx) == 0:
        return None
    near = np.zeros(len(idx), bool)
    if predicted is not None and predicted.any():
        near = iou_matrix(predicted[None], frame.small[idx])[0] >= config.match_iou
    if near_only:
        idx, near = idx[near], near[near]
        if len(idx) == 0:
            return None
    if isinstance(track.prompt, TextPrompt):
        assert isinstance(embedder, TextEmbedder)
        sims = text_similarity(embedder, track.prompt, frame, idx)
        need = config.text_keep * track.score * np.where(near, NEAR, 1.0)
        k = int(np.argmax(sims - need))
        return int(idx[k]) if sims[k] >= need[k] else None
    if track.appearance is None:
        return None
    emb = embeddings(embedder, frame, idx)
    sims = emb @ track.appearance
    need = config.appearance_min * np.where(near, NEAR, 1.0)
    k = int(np.argmax(sims - need))
    # another object it looks more like, if that one is missing too (one seen this frame is not here)
    others = [t.appearance for t in tracks if t.prompt is not None and t is not track and t.appearance is not None
              and t.lost > 0]
    closer_to_other = bool(others) and float(np.max(np.stack(others) @ emb[k])) > sims[k]
    return int(idx[k]) if sims[k] >= need[k] and not closer_to_other else None
