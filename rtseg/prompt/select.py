"""Which segment a click or a box picks (a text prompt picks by CLIP: :mod:`rtseg.prompt.clip`).

>>> masks = np.zeros((2, 10, 10), bool); masks[0, :5, :5] = True; masks[1] = True
>>> select_point(masks, PointPrompt(((2, 2),), (1,)))  # the smaller of the two masks under the click
0
>>> select_box(masks, BoxPrompt((0, 0, 5, 5)))
0
"""

from __future__ import annotations

import numpy as np

from rtseg.prompt.prompts import BoxPrompt, PointPrompt, negatives_of


def _excluded(masks: np.ndarray, negatives: list[tuple[float, float]]) -> np.ndarray:
    """(N,) bool: masks that contain any negative point."""
    out = np.zeros(len(masks), bool)
    for x, y in negatives:
        out |= masks[:, int(y), int(x)]
    return out


def select_point(masks: np.ndarray, prompt: PointPrompt) -> int | None:
    """Index of the mask holding the most positive points and no negative one (smallest on ties)."""
    if len(masks) == 0:
        return None
    pos = [p for p, lab in zip(prompt.points, prompt.labels) if lab]
    hits = np.zeros(len(masks), int)
    for x, y in pos:
        hits += masks[:, int(y), int(x)]
    hits[_excluded(masks, negatives_of(prompt))] = 0
    if hits.max() == 0:
        return None
    best = np.nonzero(hits == hits.max())[0]
    areas = masks[best].sum(axis=(1, 2))
    return int(best[np.argmin(areas)])


def box_mask_iou(masks: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """(N,) IoU between each mask and the filled box region."""
    h, w = masks.shape[1:]
    x1, y1 = max(int(round(box[0])), 0), max(int(round(box[1])), 0)
    x2, y2 = min(int(round(box[2])), w), min(int(round(box[3])), h)
    inside = masks[:, y1:y2, x1:x2].sum(axis=(1, 2)).astype(float)
    union = masks.sum(axis=(1, 2)) + max(x2 - x1, 0) * max(y2 - y1, 0) - inside
    return np.divide(inside, union, out=np.zeros_like(inside), where=union > 0)


def select_box(masks: np.ndarray, prompt: BoxPrompt) -> int | None:
    """Index of the mask with the best IoU with the box (negative points exclude), if any overlaps."""
    if len(masks) == 0:
        return None
    iou = box_mask_iou(masks, prompt.box)
    iou[_excluded(masks, list(prompt.negatives))] = 0
    best = int(np.argmax(iou))
    return best if iou[best] > 0 else None
