"""The one per-frame payload, ``sv.Detections``, and its lazy-mask contract, in one place.

A segmenter returns every segment of a frame as Detections whose full-size masks may be **lazy**:
``mask`` is None, and each row carries its mask coefficients (``data[COEFFS]``, with its crop box in
``data[CROPS]``) while the frame's prototypes (``metadata[PROTOTYPES]``, anything with the
:class:`LazyMasks` methods) turn rows into masks on demand. Making a full-size mask for every
segment of every frame costs more than the tracker (which works on a coarse grid) and the outputs
(which need the few reported objects) ever use.

Only two stages see lazy Detections: the segmenter that makes them and the tracker that reads them
through :func:`masks_of` / :func:`compact_of` / :func:`grid_masks`. What a
:class:`~rtseg.session.Session` reports is always :func:`concrete`: ``mask`` is set, as an
``sv.CompactMask`` (each object's box crop: :mod:`rtseg.masks`; ``np.asarray(mask)`` or
:func:`masks_of` gives the dense (N, H, W) bool masks), ``tracker_id`` (N,) int, ``data[PROMPT]``
(N,) the prompt of each object (``"everything"`` for unprompted segments). Consumers (sinks, the
web page, scripts) read those fields and nothing else. (Keyframe-carried frames report dense
(N, H, W) masks; every consumer takes both, as supervision's own annotators do.)

When the frame came with a depth image and the config has camera intrinsics, the session adds each
object's place in 3D (:mod:`rtseg.geometry`): ``data[XYZ]`` (N, 3) float64, the centroid in metres in
the camera frame (x right, y down, z forward; a NaN row: the object had no pixel with depth),
``data[EXTENT]`` (N, 3) float64, its 5th-95th percentile size per axis in metres (NaN likewise), and
``data[DEPTH_PIXELS]`` (N,) int64, how many of its pixels had valid depth (0: no depth). Without
depth these keys are absent.

>>> import numpy as np, supervision as sv
>>> d = sv.Detections(xyxy=np.array([[0, 0, 2, 2]], float), mask=np.ones((1, 4, 4), bool))
>>> masks_of(d, (4, 4)).shape, grid_masks(d, (4, 4), 2).shape, compact_of(d, (4, 4)).shape
((1, 4, 4), (1, 2, 2), (1, 4, 4))
>>> prompts_of(d)
['']
"""

from __future__ import annotations

from typing import Protocol, cast

import cv2
import numpy as np
import supervision as sv

from rtseg.masks import Crop, compact, from_crops, grid

COEFFS = "mask_coeffs"  # Detections.data: (N, C) float32 mask coefficients of each segment
CROPS = "mask_crops"  # Detections.data: (N, 4) the boxes, at the model's input size, masks are cut to
PROTOTYPES = "mask_prototypes"  # Detections.metadata: the frame's Prototypes
PROMPT = "prompt"  # Detections.data: (N,) str, the prompt each reported object was named by
XYZ = "xyz"  # Detections.data: (N, 3) float64 3D centroid, metres, camera frame; NaN rows: no depth
EXTENT = "extent"  # Detections.data: (N, 3) float64 5th-95th percentile size per axis, metres; NaN rows: no depth
DEPTH_PIXELS = "depth_pixels"  # Detections.data: (N,) int64 pixels with valid depth (0: no depth)


class LazyMasks(Protocol):
    """The frame's prototypes (``metadata[PROTOTYPES]``): masks of the rows of ``dets`` made on demand."""

    def full(self, dets: sv.Detections, shape: tuple[int, int]) -> np.ndarray:
        """(N, H, W) bool masks of ``dets`` on a frame of ``shape`` (H, W)."""
        ...

    def grid(self, dets: sv.Detections, shape: tuple[int, int], factor: int) -> np.ndarray:
        """(N, ceil(H/f), ceil(W/f)) bool masks of ``dets``, ``factor`` times coarser than the frame."""
        ...

    def crops(self, dets: sv.Detections, shape: tuple[int, int]) -> list[Crop]:
        """The masks of ``dets`` on a frame of ``shape`` (H, W) as box crops: (crop, x, y) each."""
        ...


def masks_of(dets: sv.Detections, shape: tuple[int, int]) -> np.ndarray:
    """The (N, H, W) bool masks of ``dets`` (made now when they are lazy; empty when it has none)."""
    if dets.mask is not None:
        return np.asarray(dets.mask, dtype=bool)
    protos = dets.metadata.get(PROTOTYPES)
    if protos is None or len(dets) == 0:
        return np.zeros((len(dets), *shape), bool)
    return protos.full(dets, shape)


def compact_of(dets: sv.Detections, shape: tuple[int, int]) -> sv.CompactMask:
    """The masks of ``dets`` as box crops (made now, and only inside the boxes, when they are lazy)."""
    protos = dets.metadata.get(PROTOTYPES)
    if dets.mask is None and protos is not None:
        found = protos.crops(dets, shape)
        return from_crops([c for c, _, _ in found], [(x, y) for _, x, y in found], shape)
    return compact(masks_of(dets, shape) if dets.mask is None else dets.mask)


def grid_masks(dets: sv.Detections, shape: tuple[int, int], factor: int) -> np.ndarray:
    """The masks of ``dets`` on a grid ``factor`` times coarser than the frame ``shape`` (H, W)."""
    protos = dets.metadata.get(PROTOTYPES)
    if dets.mask is None and protos is not None:
        return protos.grid(dets, shape, factor)
    if isinstance(dets.mask, sv.CompactMask):
        return grid(dets.mask, factor)
    return downscale(masks_of(dets, shape), factor)


def concrete(dets: sv.Detections, shape: tuple[int, int], masks: sv.CompactMask | None = None) -> sv.Detections:
    """``dets`` with their masks as box crops (``masks``, when already made) and no lazy fields."""
    out = take(dets, np.arange(len(dets)))
    out.mask = compact_of(dets, shape) if masks is None else masks
    out.data.pop(COEFFS, None)
    out.data.pop(CROPS, None)
    out.metadata.pop(PROTOTYPES, None)
    return out


def take(dets: sv.Detections, index: np.ndarray) -> sv.Detections:
    """The rows ``index`` (int array) of ``dets``, as Detections."""
    return cast(sv.Detections, dets[index])


def prompts_of(dets: sv.Detections) -> list[str]:
    """The prompt of each reported object (empty strings where Detections carry none)."""
    return [str(p) for p in dets.data[PROMPT]] if PROMPT in dets.data else [""] * len(dets)


def downscale(masks: np.ndarray, factor: int) -> np.ndarray:
    """(N, H, W) bool -> (N, ceil(H/f), ceil(W/f)) bool: a cell is on when any pixel in it is on.

    >>> downscale(np.ones((2, 5, 8), bool), 4).shape
    (2, 2, 2)
    >>> one = np.zeros((1, 48, 48), bool); one[0, 5, 5] = True  # one pixel of a 24x24 cell (a 4K frame's)
    >>> downscale(one, 24)[0].tolist()
    [[True, False], [False, False]]
    """
    if factor <= 1:
        return masks.astype(bool)
    n, h, w = masks.shape
    hp, wp = -(-h // factor) * factor, -(-w // factor) * factor
    out = np.zeros((n, hp // factor, wp // factor), bool)
    for i, m in enumerate(masks):
        u = m.view(np.uint8) * np.uint8(255)
        if (hp, wp) != (h, w):
            u = cv2.copyMakeBorder(u, 0, hp - h, 0, wp - w, cv2.BORDER_CONSTANT, value=0)
        if factor <= 8:  # area averaging of 0/255 is > 0 exactly where any pixel is on (the fastest here)
            out[i] = cv2.resize(u, (wp // factor, hp // factor), interpolation=cv2.INTER_AREA) > 0
        else:  # past 22, one pixel's 255 / factor^2 rounds to 0: the largest value of each cell instead
            rows = u.reshape(hp // factor, factor, wp).max(axis=1)
            out[i] = rows.reshape(hp // factor, wp // factor, factor).max(axis=2) > 0
    return out
