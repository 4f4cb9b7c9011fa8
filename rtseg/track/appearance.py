"""How the tracker tells objects apart by their looks: appearance embeddings of segments (CLIP's
image tower, or colour histograms without CLIP), cached per segment track, and text similarity.

Embeddings are computed once per segment track (again only when the segment grows by a third, an
object coming into view), never for every mask of every frame.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from rtseg.prompt.prompts import TextPrompt, negatives_of
from rtseg.track.state import SegmentFrame


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


def embeddings(embedder: Embedder, frame: SegmentFrame, idx: np.ndarray) -> np.ndarray:
    """Embeddings (len(idx), D) of segments ``idx``, reusing a segment track's cached one until
    its area grows by a third (an object coming into view)."""
    out: list[np.ndarray | None] = []
    todo = []
    for k, c in enumerate(idx):
        t = frame.owner.get(int(c))
        if t is not None and t.embedding is not None and t.area <= t.embedding[1] * 4 / 3:
            out.append(t.embedding[0])
        else:
            out.append(None)
            todo.append(k)
    if todo:
        fresh = embedder.encode_crops(frame.image, frame.full(idx[todo]))
        for k, e in zip(todo, fresh):
            out[k] = e
            t = frame.owner.get(int(idx[k]))
            if t is not None:
                t.embedding = (e, t.area)
    return np.stack(out) if out else np.zeros((0, 1))  # type: ignore[arg-type]


def text_similarity(embedder: TextEmbedder, prompt: TextPrompt, frame: SegmentFrame, idx: np.ndarray) -> np.ndarray:
    """CLIP similarity of ``prompt`` to segments ``idx`` (-inf where a negative point falls)."""
    text = embedder.encode_text(prompt.text)
    sims = embeddings(embedder, frame, idx) @ text
    negatives = negatives_of(prompt)
    masks = frame.full(idx) if negatives else None
    for x, y in negatives:
        sims[masks[:, int(y), int(x)]] = -np.inf  # type: ignore[index]
    return sims
