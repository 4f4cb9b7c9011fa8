"""Overlay drawing: masks, ids and prompts (supervision annotators), and a line of timings.

>>> r = Renderer()
>>> r.annotate(np.zeros((20, 30, 3), np.uint8), sv.Detections.empty()).shape
(20, 30, 3)
"""

from __future__ import annotations

import cv2
import numpy as np
import supervision as sv

from rtseg.config import OutputConfig
from rtseg.detections import PROMPT, XYZ


class Renderer:
    """``annotate(image, dets, stats) -> image``: one colour per track id."""

    def __init__(self, config: OutputConfig = OutputConfig()) -> None:
        self.config = config
        lookup = sv.ColorLookup.TRACK
        self.masks = sv.MaskAnnotator(opacity=config.opacity, color_lookup=lookup)
        self.boxes = sv.BoxAnnotator(color_lookup=lookup, thickness=2)
        self.labels = sv.LabelAnnotator(color_lookup=lookup, text_scale=0.45, text_padding=4,
                                        text_position=sv.Position.TOP_LEFT)

    def annotate(self, image: np.ndarray, dets: sv.Detections, stats: str = "") -> np.ndarray:
        """A copy of BGR ``image`` with ``dets`` (which carry ``tracker_id``) and a stats line drawn."""
        out = image.copy()
        if len(dets):
            if dets.tracker_id is None:
                dets.tracker_id = np.arange(1, len(dets) + 1)
            if dets.mask is not None:
                out = self.masks.annotate(out, dets)
            if self.config.boxes:
                out = self.boxes.annotate(out, dets)
            if self.config.labels:
                out = self.labels.annotate(out, dets, labels=labels(dets))
        if stats and self.config.stats:
            (tw, th), base = cv2.getTextSize(stats, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
            cv2.rectangle(out, (4, 4), (12 + tw, 12 + th + base), (0, 0, 0), -1)
            cv2.putText(out, stats, (8, 8 + th), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        return out


def labels(dets: sv.Detections) -> list[str]:
    """"#id prompt" per object (the id alone for unprompted segments), and its distance when it has a
    3D centroid (``data[XYZ]``).

    >>> d = sv.Detections(xyxy=np.zeros((2, 4)), tracker_id=np.array([2, 3]))
    >>> d.data[PROMPT] = np.array(["the red circle", "everything"])
    >>> labels(d)
    ['#2 the red circle', '#3']
    >>> d.data[XYZ] = np.array([[0.0, 0.0, 1.416], [np.nan] * 3])
    >>> labels(d)
    ['#2 the red circle 1.42 m', '#3']
    """
    prompts = dets.data.get(PROMPT, [""] * len(dets))
    distances = np.asarray(dets.data[XYZ], float)[:, 2] if XYZ in dets.data else np.full(len(dets), np.nan)
    ids = dets.tracker_id if dets.tracker_id is not None else np.arange(1, len(dets) + 1)
    out = []
    for tid, prompt, z in zip(ids, prompts, distances):
        label = f"#{tid} {prompt}" if prompt and prompt != "everything" else f"#{tid}"
        out.append(f"{label} {z:.2f} m" if np.isfinite(z) else label)
    return out
