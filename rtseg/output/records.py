"""What is written per frame, as data: the label map of the mask PNGs and the JSON line.

>>> import numpy as np, supervision as sv
>>> d = sv.Detections(xyxy=np.array([[1, 1, 3, 3]], float), mask=np.zeros((1, 4, 5), bool),
...                   tracker_id=np.array([7]))
>>> d.mask[0, 1:3, 1:3] = True
>>> label_map(d, (4, 5))[1].tolist()
[0, 7, 7, 0, 0]
>>> frame_record(0, 0.0, d)["objects"][0]["centroid"]
[1.5, 1.5]
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import supervision as sv

from rtseg.detections import prompts_of


def label_map(dets: sv.Detections, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) uint8 map of tracker ids (0 = background); smaller objects are painted last, on top."""
    labels = np.zeros(shape, np.uint8)
    if len(dets) == 0 or dets.mask is None or dets.tracker_id is None:
        return labels
    masks = np.asarray(dets.mask, dtype=bool)
    for i in np.argsort(-masks.sum(axis=(1, 2))):
        labels[masks[i]] = int(dets.tracker_id[i]) % 256
    return labels


def frame_record(index: int, time_s: float, dets: sv.Detections) -> dict[str, Any]:
    """One JSON line: frame index, time, and per object id, prompt, box, score, area, centroid, RLE mask."""
    objects = []
    masks = np.asarray(dets.mask, dtype=bool) if dets.mask is not None else np.zeros((len(dets), 1, 1), bool)
    ids = dets.tracker_id if dets.tracker_id is not None else np.arange(1, len(dets) + 1)
    prompts = prompts_of(dets)
    for i in range(len(dets)):
        mask = masks[i]
        x, y, w, h = cv2.boundingRect(mask.view(np.uint8))  # area and centroid on the object's box only
        moments = cv2.moments(mask[y:y + h, x:x + w].view(np.uint8), binaryImage=True)
        area = int(moments["m00"])
        objects.append({
            "id": int(ids[i]),
            "prompt": prompts[i],
            "box": [round(float(v), 1) for v in dets.xyxy[i]],
            "score": round(float(dets.confidence[i]), 4) if dets.confidence is not None else None,
            "area": area,
            "centroid": [round(x + moments["m10"] / area, 1), round(y + moments["m01"] / area, 1)] if area else None,
            "mask": {"size": list(mask.shape), "counts": sv.mask_to_rle(mask, compressed=True)} if area else None,
        })
    return {"index": int(index), "time": round(float(time_s), 4), "objects": objects}
