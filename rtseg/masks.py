"""Masks as box crops: supervision's :class:`~supervision.CompactMask`, and what rtseg needs from it
computed on the crops alone.

A reported object's mask is its box crop plus the crop's place in the frame. A full-frame (H, W)
bool mask costs its frame's pixels in every step that touches it (making it, the label map, the RLE,
blending the overlay); at 1920x1080 that is 2 MB per object per step, at 3840x2160 8 MB, while the
object itself is a few hundred pixels across. Here each step costs the object's box instead:

- :func:`from_crops` / :func:`compact`: the CompactMask of crops (or of any masks, dense or compact);
- :func:`label_map`: the ids painted into one (H, W) uint8 image, the mask PNGs' content;
- :func:`coco_rle`: a crop's full-frame COCO RLE string, the very string ``sv.mask_to_rle`` gives
  for the full-frame mask;
- :func:`grid`: the masks on the tracker's coarse grid, as :func:`rtseg.detections.downscale` of the
  full-frame masks gives them.

``np.asarray(mask)`` still gives the dense (N, H, W) masks, for the consumers that want them.

>>> crop = np.array([[0, 1, 1], [1, 1, 0]], bool)
>>> m = from_crops([crop], [(4, 1)], (5, 8))
>>> m.shape, int(m.area[0])
((1, 5, 8), 4)
>>> full = np.asarray(m)[0]
>>> coco_rle(crop, 4, 1, (5, 8)) == sv.mask_to_rle(full, compressed=True)
True
>>> grid(m, 4)[0].tolist()
[[False, True], [False, False]]
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import supervision as sv

Crop = tuple[np.ndarray, int, int]  # (h, w) bool crop, and its top-left (x, y) in the frame


def from_crops(crops: Sequence[np.ndarray], origins: Sequence[tuple[int, int]], shape: tuple[int, int]
               ) -> sv.CompactMask:
    """The CompactMask of (h, w) bool ``crops`` whose top-left corners are ``origins`` (x, y) on a
    frame of ``shape`` (H, W). Each crop is first cut to its mask's own bounding box (an empty mask
    keeps a 1x1 crop)."""
    rles, sizes, offsets = [], [], []
    for crop, (x, y) in zip(crops, origins):
        crop = np.asarray(crop, bool)
        bx, by, bw, bh = cv2.boundingRect(crop.view(np.uint8)) if crop.size else (0, 0, 0, 0)
        if bw == 0:
            crop, bx, by = np.zeros((1, 1), bool), 0, 0
            x, y = min(max(x, 0), shape[1] - 1), min(max(y, 0), shape[0] - 1)
        else:
            crop = crop[by:by + bh, bx:bx + bw]
        rles.append(np.asarray(sv.mask_to_rle(crop), np.int32))
        sizes.append(crop.shape)
        offsets.append((x + bx, y + by))
    return sv.CompactMask(rles, np.array(sizes, np.int32).reshape(-1, 2), np.array(offsets, np.int32).reshape(-1, 2),
                          (int(shape[0]), int(shape[1])))


def compact(masks: np.ndarray | sv.CompactMask) -> sv.CompactMask:
    """``masks`` as a CompactMask: itself when it is one, else each (H, W) mask cut to its box."""
    if isinstance(masks, sv.CompactMask):
        return masks
    masks = np.asarray(masks, bool)
    return from_crops(list(masks), [(0, 0)] * len(masks), masks.shape[1:])


def crops(masks: sv.CompactMask) -> list[Crop]:
    """Every mask as (crop, x, y)."""
    return [(masks.crop(i), int(x), int(y)) for i, (x, y) in enumerate(masks.offsets)]


def label_map(masks: sv.CompactMask, ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """(H, W) uint8 map of ``ids`` (mod 256; 0 = background); smaller objects painted last, on top."""
    labels = np.zeros(masks.image_shape, np.uint8)
    for i in np.argsort(-masks.area):
        crop, (x, y) = masks.crop(int(i)), masks.offsets[i]
        labels[y:y + crop.shape[0], x:x + crop.shape[1]][crop] = int(ids[i]) % 256
    return labels


def coco_rle(crop: np.ndarray, x: int, y: int, shape: tuple[int, int]) -> str:
    """The COCO compressed RLE string of the (H, W) = ``shape`` frame whose only foreground is
    ``crop`` at (x, y): column-major runs, as ``sv.mask_to_rle(full_mask, compressed=True)``."""
    height = shape[0]
    h = crop.shape[0]
    padded = np.zeros((h + 2, crop.shape[1]), np.int8)  # a background row above and below: no run spans columns
    padded[1:-1] = crop
    steps = np.diff(padded.ravel(order="F"))
    at = np.flatnonzero(steps) + 1  # where runs start (+1) and end (-1), in the padded column-major order
    at = (x + at // (h + 2)) * height + (y + at % (h + 2) - 1)  # ... as indices of the frame's column-major order
    edges = at.reshape(-1, 2)  # [start, end) of each run, in order (each column begins and ends in background)
    joined = np.flatnonzero(edges[1:, 0] == edges[:-1, 1])  # a run that ends at the bottom, the next at the top
    if len(joined):
        keep = np.ones(len(edges), bool)
        keep[joined + 1] = False
        ends = np.delete(edges[:, 1], joined)
        edges = np.column_stack([edges[keep, 0], ends])
    bounds = np.concatenate([[0], edges.ravel(), [height * shape[1]]])
    counts = np.diff(bounds).tolist()
    if counts[-1] == 0:
        counts.pop()
    return _coco_string(counts)


def _coco_string(counts: list[int]) -> str:
    """COCO's compressed RLE string of run ``counts`` (pycocotools' ``rleToString``): each count from
    the third on as its difference to the count two before, in 5-bit groups, low first, each group a
    char (48 + group, + 32 when another group follows); a value ends at the first group after which
    what is left is its sign extension (0, or -1 when the group's top bit is set). All values at once."""
    x = np.asarray(counts, np.int64)
    x[3:] = x[3:] - x[1:-2]
    groups = np.empty((len(x), 13), np.int64)  # 13 groups of 5 bits hold any int64
    ends = np.empty((len(x), 13), bool)
    for g in range(13):
        c = x & 0x1F
        x = x >> 5
        ends[:, g] = np.where(c & 0x10, x == -1, x == 0)
        groups[:, g] = c
    length = ends.argmax(axis=1) + 1  # groups each value takes
    used = np.arange(13) < length[:, None]
    more = np.arange(13) < (length - 1)[:, None]
    chars = (groups + 48 + 32 * more)[used]
    return chars.astype(np.uint8).tobytes().decode("ascii")


def grid(masks: sv.CompactMask, factor: int) -> np.ndarray:
    """(N, ceil(H/f), ceil(W/f)) bool: a cell is on when any pixel of the mask in it is on (what
    :func:`rtseg.detections.downscale` gives for the full-frame masks), from the crops alone."""
    height, width = masks.image_shape
    out = np.zeros((len(masks), -(-height // factor), -(-width // factor)), bool)
    for i, (x, y) in enumerate(masks.offsets):
        crop = masks.crop(i)
        x0, y0 = int(x) // factor, int(y) // factor  # the cells the crop starts in
        h = -(-(int(y) + crop.shape[0]) // factor) - y0
        w = -(-(int(x) + crop.shape[1]) // factor) - x0
        cells = np.zeros((h * factor, w * factor), bool)
        cells[int(y) - y0 * factor:int(y) - y0 * factor + crop.shape[0],
              int(x) - x0 * factor:int(x) - x0 * factor + crop.shape[1]] = crop
        out[i, y0:y0 + h, x0:x0 + w] = cells.reshape(h, factor, w, factor).any(axis=(1, 3))
    return out
