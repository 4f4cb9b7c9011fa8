"""What is written per frame, as data: the label map of the mask PNGs and the JSON line.

>>> import numpy as np, supervision as sv
>>> d = sv.Detections(xyxy=np.array([[1, 1, 3, 3]], float), mask=np.zeros((1, 4, 5), bool),
...                   tracker_id=np.array([7]))
>>> d.mask[0, 1:3, 1:3] = True
>>> label_map(d, (4, 5))[1].tolist()
[0, 7, 7, 0, 0]
>>> frame_record(0, 0.0, d)["objects"][0]["centroid"]
[1.5, 1.5]
>>> d.data[XYZ], d.data[EXTENT], d.data[DEPTH_PIXELS] = np.array([[0.1, -0.2, 1.4213]]), np.full((1, 3), 0.05), [4]
>>> {k: v for k, v in frame_record(0, 0.0, d)["objects"][0].items() if k in ("xyz", "extent", "depth_pixels")}
{'xyz': [0.1, -0.2, 1.421], 'extent': [0.05, 0.05, 0.05], 'depth_pixels': 4}
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import supervision as sv

from rtseg import masks
from rtseg.detections import DEPTH_PIXELS, EXTENT, XYZ, prompts_of


def label_map(dets: sv.Detections, shape: tuple[int, int], dtype: type = np.uint8) -> np.ndarray:
    """(H, W) map of tracker ids (0 = background; uint8 keeps them mod 256); smaller objects are painted
    last, on top."""
    if len(dets) == 0 or dets.mask is None or dets.tracker_id is None:
        return np.zeros(shape, dtype)
    return masks.label_map(masks.compact(dets.mask), dets.tracker_id, dtype)


def id_image(dets: sv.Detections, shape: tuple[int, int]) -> np.ndarray:
    """:func:`label_map` in uint8 (the PNGs' pixels) while every id fits in it, else in uint16."""
    wide = dets.tracker_id is not None and len(dets.tracker_id) > 0 and int(dets.tracker_id.max()) > 255
    return label_map(dets, shape, np.uint16 if wide else np.uint8)


def frame_record(index: int, time_s: float, dets: sv.Detections, rle: bool = True) -> dict[str, Any]:
    """One JSON line: frame index, time, and per object id, prompt, box, score, area, centroid, RLE mask
    (``mask``; None without ``rle``, for outputs that carry the masks otherwise), and when the frame had
    depth (``data[XYZ]``) its 3D centroid ``xyz`` and ``extent`` in metres and ``depth_pixels``
    (``xyz`` and ``extent`` null, ``depth_pixels`` 0 for an object with no depth)."""
    objects = []
    empty = np.zeros(0, np.int64)
    if dets.mask is not None:  # each mask's area, centroid and RLE from its runs: no pixel is decoded
        compact = masks.compact(dets.mask)
        runs, origins, shape = ([masks.column_runs(compact, i) for i in range(len(dets))],
                                compact.offsets.tolist(), compact.image_shape)
    else:
        runs, origins, shape = [(empty, empty, empty)] * len(dets), [(0, 0)] * len(dets), (1, 1)
    ids = dets.tracker_id if dets.tracker_id is not None else np.arange(1, len(dets) + 1)
    prompts = prompts_of(dets)
    for i, ((col, r0, r1), (cx, cy)) in enumerate(zip(runs, origins)):
        length = r1 - r0
        area = int(length.sum())
        if area:  # the centroid as cv2.moments gives it over the mask's bounding box, to the same float
            x, y = int(col.min()), int(r0.min())
            m10, m01 = int((length * (col - x)).sum()), int((length * (r0 + r1 - 1 - 2 * y)).sum()) // 2
            centroid = [round(cx + x + m10 / area, 1), round(cy + y + m01 / area, 1)]
        objects.append({
            "id": int(ids[i]),
            "prompt": prompts[i],
            "box": [_finite(v, 1) for v in dets.xyxy[i]],
            "score": _finite(dets.confidence[i], 4) if dets.confidence is not None else None,
            "area": area,
            "centroid": centroid if area else None,
            "mask": {"size": list(shape), "counts": masks.runs_rle((col, r0, r1), cx, cy, shape)}
            if area and rle else None,
            **(_depth_fields(dets, i) if XYZ in dets.data else {}),
        })
    return {"index": int(index), "time": _finite(time_s, 4), "objects": objects}


def _finite(value: Any, digits: int) -> float | None:
    """``value`` rounded, or None for NaN and infinities, which JSON has no literal for.

    >>> _finite(0.123456, 4), _finite(float("nan"), 4)
    (0.1235, None)
    """
    v = float(value)
    return round(v, digits) if math.isfinite(v) else None


def _depth_fields(dets: sv.Detections, i: int) -> dict[str, Any]:
    """Object ``i``'s 3D fields: centroid and extent in metres (3 decimals) and its pixels with depth."""
    pixels = int(dets.data[DEPTH_PIXELS][i])
    if not pixels:
        return {"xyz": None, "extent": None, "depth_pixels": 0}
    return {"xyz": [_finite(v, 3) for v in dets.data[XYZ][i]],
            "extent": [_finite(v, 3) for v in dets.data[EXTENT][i]], "depth_pixels": pixels}
