"""Masks as box crops: supervision's :class:`~supervision.CompactMask`, and what rtseg needs from it
computed on the crops alone.

A reported object's mask is its box crop plus the crop's place in the frame. A full-frame (H, W)
bool mask costs its frame's pixels in every step that touches it (making it, the label map, the RLE,
blending the overlay); at 1920x1080 that is 2 MB per object per step, at 3840x2160 8 MB, while the
object itself is a few hundred pixels across. Here each step costs the object's box instead:

- :func:`from_crops` / :func:`compact`: the CompactMask of crops (or of any masks, dense or compact);
- :func:`label_map`: the ids painted into one (H, W) uint8 image, the mask PNGs' content;
- :func:`column_runs`: a mask's pixels as runs down its columns, read off the run lengths the
  CompactMask keeps (no pixel decoded), and :func:`runs_rle`: from them, the mask's full-frame COCO
  RLE string, the very string ``sv.mask_to_rle`` gives for the full-frame mask;
- :func:`grid`: the masks on the tracker's coarse grid, as :func:`rtseg.detections.downscale` of the
  full-frame masks gives them.

``np.asarray(mask)`` still gives the dense (N, H, W) masks, for the consumers that want them.

>>> crop = np.array([[0, 1, 1], [1, 1, 0]], bool)
>>> m = from_crops([crop], [(4, 1)], (5, 8))
>>> m.shape, int(m.area[0])
((1, 5, 8), 4)
>>> full = np.asarray(m)[0]
>>> runs_rle(column_runs(m, 0), 4, 1, (5, 8)) == sv.mask_to_rle(full, compressed=True)
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


def dense(crops: Sequence[Crop], shape: tuple[int, int]) -> np.ndarray:
    """(N, H, W) bool: each (crop, x, y) of ``crops`` pasted on an empty frame of ``shape`` (H, W)."""
    out = np.zeros((len(crops), *shape), bool)
    for i, (crop, x, y) in enumerate(crops):
        out[i, y:y + crop.shape[0], x:x + crop.shape[1]] = crop
    return out


def compact(masks: np.ndarray | sv.CompactMask) -> sv.CompactMask:
    """``masks`` as a CompactMask: itself when it is one, else each (H, W) mask cut to its box."""
    if isinstance(masks, sv.CompactMask):
        return masks
    masks = np.asarray(masks, bool)
    return from_crops(list(masks), [(0, 0)] * len(masks), masks.shape[1:])


def crops(masks: sv.CompactMask) -> list[Crop]:
    """Every mask as (crop, x, y)."""
    return [(masks.crop(i), int(x), int(y)) for i, (x, y) in enumerate(masks.offsets)]


def label_map(masks: sv.CompactMask, ids: Sequence[int] | np.ndarray, dtype: type = np.uint8) -> np.ndarray:
    """(H, W) map of ``ids`` (mod 256 in the default uint8; 0 = background); smaller objects painted last, on top."""
    labels: np.ndarray = np.zeros(masks.image_shape, dtype)
    for i in np.argsort(-masks.area):
        crop, (x, y) = masks.crop(int(i)), masks.offsets[i]
        labels[y:y + crop.shape[0], x:x + crop.shape[1]][crop] = int(ids[i]) % (int(np.iinfo(dtype).max) + 1)
    return labels


def column_runs(masks: sv.CompactMask, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mask ``i``'s pixels as runs down single columns, read off the run lengths the CompactMask keeps
    (no pixel is decoded): (column, first row, end row) int64 arrays, in its crop's coordinates, in
    column-major order (``masks.offsets[i]`` places them in the frame).

    >>> m = from_crops([np.array([[1, 1], [1, 1], [0, 1]], bool)], [(3, 2)], (6, 6))
    >>> [a.tolist() for a in column_runs(m, 0)]
    [[0, 1], [0, 0], [2, 3]]
    """
    # supervision keeps each crop as COCO's column-major run lengths, background first (its
    # ``_mask_to_rle_counts``); tests/test_masks.py checks what is read here against the pixels
    counts, height = np.asarray(masks._rles[i], np.int64), int(masks._crop_shapes[i, 0])
    at = np.cumsum(counts)
    starts, ends = at[0::2][:len(at) // 2], at[1::2]
    keep = ends > starts
    starts, ends = starts[keep], ends[keep]
    first, last = starts // height, (ends - 1) // height  # a run over a column's end goes on in the next
    pieces = last - first + 1
    col = np.repeat(first, pieces) + np.arange(int(pieces.sum())) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    r0 = np.where(col == np.repeat(first, pieces), np.repeat(starts, pieces) - col * height, 0)
    r1 = np.where(col == np.repeat(last, pieces), np.repeat(ends, pieces) - col * height, height)
    return col, r0, r1


def resized(masks: sv.CompactMask, shape: tuple[int, int]) -> sv.CompactMask:
    """``masks.resize(shape)``: each mask as ``cv2.INTER_NEAREST`` resizes it to (H, W) = ``shape``, in
    the crops supervision gives it, made from the :func:`column_runs` alone (supervision decodes each
    crop at the source size and encodes it again: 11 large masks from 3840x2160 to a 1080p overlay,
    7.1 ms against 1.3). Each output column takes the runs of the column it samples, each
    run the output rows that sample it."""
    height, width = masks.image_shape
    if tuple(shape) == (height, width) or len(masks) == 0:
        return masks.resize(shape)
    rows, cols = _nearest_source(height, shape[0]), _nearest_source(width, shape[1])
    boxes = masks.bbox_xyxy
    rles, sizes, offsets = [], [], []
    for i, (x, y) in enumerate(masks.offsets.tolist()):
        x1, x2 = np.searchsorted(cols, [x, boxes[i, 2] + 1])  # the output columns and rows that sample the crop
        y1, y2 = np.searchsorted(rows, [y, boxes[i, 3] + 1])
        w, h = int(x2 - x1), int(y2 - y1)
        if w == 0 or h == 0:  # no output pixel samples it
            rles.append(np.array([1], np.int32))
            sizes.append((1, 1))
            offsets.append((min(int(x1), shape[1] - 1), min(int(y1), shape[0] - 1)))
            continue
        col, r0, r1 = column_runs(masks, i)
        lo, hi = np.searchsorted(col, cols[x1:x2] - x, "left"), np.searchsorted(col, cols[x1:x2] - x, "right")
        n = hi - lo
        j = np.repeat(np.arange(w), n)  # an output column, for each run of the column it samples
        k = np.repeat(lo - np.cumsum(n) + n, n) + np.arange(int(n.sum()))  # ... and that run
        a = np.searchsorted(rows, y + r0[k], "left") - y1  # the output rows that sample the run
        b = np.searchsorted(rows, y + r1[k], "left") - y1
        keep = b > a
        # in the new crop's column-major order
        rles.append(_run_counts(j[keep] * h + a[keep], j[keep] * h + b[keep], h * w).astype(np.int32))
        sizes.append((h, w))
        offsets.append((int(x1), int(y1)))
    return sv.CompactMask(rles, np.array(sizes, np.int32).reshape(-1, 2), np.array(offsets, np.int32).reshape(-1, 2),
                          (int(shape[0]), int(shape[1])))


def _nearest_source(size: int, new: int) -> np.ndarray:
    """The source index each of ``new`` outputs samples when ``cv2.INTER_NEAREST`` resizes ``size``
    pixels (found by resizing a ramp, so OpenCV's rounding is kept)."""
    ramp = np.arange(size, dtype=np.int32).reshape(1, -1)
    return cv2.resize(ramp, (new, 1), interpolation=cv2.INTER_NEAREST)[0]


def runs_rle(runs: tuple[np.ndarray, np.ndarray, np.ndarray], x: int, y: int, shape: tuple[int, int]) -> str:
    """The COCO compressed RLE string of the (H, W) = ``shape`` frame whose only foreground is the
    :func:`column_runs` ``runs`` of a crop at (x, y): ``sv.mask_to_rle(full_mask, compressed=True)``,
    from the runs alone (a run that ends at the frame's bottom joins the next column's from its top)."""
    col, r0, r1 = runs
    height = shape[0]
    at = (x + col) * height + y
    return _coco_string(_run_counts(at + r0, at + r1, height * shape[1]).tolist())


def _run_counts(starts: np.ndarray, ends: np.ndarray, total: int) -> np.ndarray:
    """COCO's run lengths (background first) of the [start, end) runs, in order, of ``total`` pixels in
    column-major order: runs that touch are one (a column's run to the bottom, the next's from the top),
    and no empty background run ends it."""
    joined = np.flatnonzero(starts[1:] == ends[:-1])
    if len(joined):
        starts, ends = np.delete(starts, joined + 1), np.delete(ends, joined)
    counts = np.diff(np.concatenate([[0], np.column_stack([starts, ends]).ravel(), [total]]))
    return counts[:-1] if len(counts) > 1 and counts[-1] == 0 else counts


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
    :func:`rtseg.detections.downscale` gives for the full-frame masks), from each mask's column runs
    (:func:`column_runs`: no pixel decoded): a run turns on the cells from its first row's to its
    last row's in its column's cell column (marked at both ends, then summed down the columns)."""
    height, width = masks.image_shape
    gh, gw = -(-height // factor), -(-width // factor)
    out = np.zeros((len(masks), gh, gw), bool)
    for i, (x, y) in enumerate(masks.offsets.tolist()):
        col, r0, r1 = column_runs(masks, i)
        if len(col) == 0:
            continue
        cells, top = (x + col) // factor, (y + r0) // factor
        x0, y0 = int(cells[0]), int(top.min())  # the cells of the mask's box
        marks = np.zeros(((y + int(r1.max()) - 1) // factor + 2 - y0, int(cells[-1]) + 1 - x0), np.int32)
        np.add.at(marks, (top - y0, cells - x0), 1)
        np.add.at(marks, ((y + r1 - 1) // factor + 1 - y0, cells - x0), -1)
        out[i, y0:y0 + marks.shape[0] - 1, x0:x0 + marks.shape[1]] = np.cumsum(marks[:-1], axis=0) > 0
    return out
