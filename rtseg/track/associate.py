"""Pure association maths: mask IoU between sets, shifted masks, and one-to-one matching.

No tracker state lives here; every function has explicit empty shapes.

>>> a = np.zeros((1, 4, 4), bool); a[0, :2, :2] = True
>>> iou_matrix(a, a).tolist()
[[1.0]]
>>> [x.tolist() for x in match(np.array([[0.9, 0.1], [0.2, 0.8]]), 0.5)]
[[0, 1], [0, 1]]
"""

from __future__ import annotations

import cv2
import numpy as np
import supervision as sv
from scipy.optimize import linear_sum_assignment


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU (N, M) float between bool masks ``a`` (N, H, W) and ``b`` (M, H, W); 0 where both are empty."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    iou = sv.mask_iou_batch(a, b)
    return np.nan_to_num(iou, nan=0.0)


def match(iou: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one pairs (rows, cols) maximising total IoU, keeping pairs with IoU >= ``threshold``."""
    if iou.size == 0:
        return np.zeros(0, int), np.zeros(0, int)
    rows, cols = linear_sum_assignment(-iou)
    keep = iou[rows, cols] >= threshold
    return rows[keep], cols[keep]


def dedupe(masks: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Indices (ascending) of the masks kept by greedy NMS on mask IoU, most confident first.

    >>> m = np.zeros((3, 4, 4), bool); m[:2, :2, :2] = True; m[2, 3, 3] = True
    >>> dedupe(m, np.array([0.5, 0.9, 0.1]), 0.8).tolist()
    [1, 2]
    """
    if len(masks) < 2:
        return np.arange(len(masks))
    iou = iou_matrix(masks, masks)
    keep: list[int] = []
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        if all(iou[i, j] < threshold for j in keep):
            keep.append(int(i))
    return np.sort(np.array(keep, dtype=int))


def shift(masks: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Each mask (N, H, W) translated by its own integer (dx, dy); what leaves the frame is cut off.

    >>> m = np.zeros((1, 3, 3), bool); m[0, 0, 0] = True
    >>> np.argwhere(shift(m, np.array([2]), np.array([1]))[0]).tolist()
    [[1, 2]]
    """
    out = np.zeros_like(masks)
    h, w = masks.shape[1:]
    for i, (x, y) in enumerate(zip(np.round(dx).astype(int), np.round(dy).astype(int))):
        if abs(x) >= w or abs(y) >= h:
            continue
        out[i, max(y, 0): h + min(y, 0), max(x, 0): w + min(x, 0)] = masks[
            i, max(-y, 0): h + min(-y, 0), max(-x, 0): w + min(-x, 0)]
    return out


def centroids(masks: np.ndarray) -> np.ndarray:
    """Centroids (N, 2) float, x y, of bool masks (N, H, W); NaN for an empty mask."""
    out = np.full((len(masks), 2), np.nan)
    for i, m in enumerate(masks):
        moments = cv2.moments(m.astype(np.uint8), binaryImage=True)
        if moments["m00"] > 0:
            out[i] = moments["m10"] / moments["m00"], moments["m01"] / moments["m00"]
    return out
