"""Overlay drawing: masks (:func:`paint_masks`: supervision's MaskAnnotator, pixel for pixel, at a
fraction of its cost on large frames), ids and prompts (supervision annotators), and a line of timings.

>>> r = Renderer()
>>> r.annotate(np.zeros((20, 30, 3), np.uint8), sv.Detections.empty()).shape
(20, 30, 3)
"""

from __future__ import annotations

import cv2
import numpy as np
import supervision as sv
from supervision.annotators.utils import resolve_color

from rtseg.config import OutputConfig
from rtseg.detections import PROMPT, XYZ, take
from rtseg.masks import compact, resized


class Renderer:
    """``annotate(image, dets, stats) -> image``: one colour per track id."""

    def __init__(self, config: OutputConfig = OutputConfig()) -> None:
        self.config = config
        lookup = sv.ColorLookup.TRACK
        self.palette = sv.ColorPalette.DEFAULT  # the masks' colours (paint_masks), as the annotators' below
        self.boxes = sv.BoxAnnotator(color_lookup=lookup, thickness=2)
        self.labels = sv.LabelAnnotator(color_lookup=lookup, text_scale=0.45, text_padding=4,
                                        text_position=sv.Position.TOP_LEFT)

    def annotate(self, image: np.ndarray, dets: sv.Detections, stats: str = "",
                 bound: tuple[int, int] | None = None) -> np.ndarray:
        """A copy of BGR ``image`` with ``dets`` (which carry ``tracker_id``) and a stats line drawn;
        with ``bound`` (width, height), drawn at the largest size that fits it (aspect kept, never
        larger than ``image``): the frame is scaled down first (:func:`shrink`), then the masks (box
        crops) and boxes, so a 4K frame costs what its overlay's size costs."""
        size = fit(image.shape[1::-1], bound)
        if size != image.shape[1::-1]:
            out = shrink(image, size)
            dets = scaled(dets, size, image.shape[1::-1])
        else:
            out = image.copy()
        if len(dets):
            if dets.tracker_id is None:
                dets.tracker_id = np.arange(1, len(dets) + 1)
            if dets.mask is not None:
                paint_masks(out, dets, self.palette, self.config.opacity)
            if self.config.boxes:
                out = self.boxes.annotate(out, dets)
            if self.config.labels:
                out = self.labels.annotate(out, dets, labels=labels(dets))
        if stats and self.config.stats:
            (tw, th), base = cv2.getTextSize(stats, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
            cv2.rectangle(out, (4, 4), (12 + tw, 12 + th + base), (0, 0, 0), -1)
            cv2.putText(out, stats, (8, 8 + th), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        return out


def paint_masks(image: np.ndarray, dets: sv.Detections, palette: sv.Color | sv.ColorPalette, opacity: float) -> None:
    """Blend each object's mask into BGR ``image`` in its track's colour, in place: what
    ``sv.MaskAnnotator(palette, opacity, ColorLookup.TRACK)`` draws, pixel for pixel (a pixel in
    several masks takes the smallest one's colour). Its boolean indexing of three channels costs
    23 ms a 1080p frame of large segments; here the masks are painted as one index image, box crop
    by box crop, then coloured by a colour map and blended with OpenCV inside their union box."""
    if dets.mask is None or len(dets) == 0:
        return
    masks = compact(dets.mask)
    if len(masks) > 255:  # the index image holds 255 objects
        sv.MaskAnnotator(palette, opacity, sv.ColorLookup.TRACK).annotate(image, dets)
        return
    areas = masks.area
    boxes = masks.bbox_xyxy[areas > 0]  # (an empty mask keeps a 1x1 crop: no part of the union)
    if len(boxes) == 0:
        return
    x1, y1 = boxes[:, :2].min(axis=0)
    x2, y2 = boxes[:, 2:].max(axis=0) + 1
    index = np.zeros((y2 - y1, x2 - x1), np.uint8)
    lut = np.zeros((256, 1, 3), np.uint8)  # index -> BGR, for cv2.applyColorMap
    for k, i in enumerate(np.flip(np.argsort(areas)), start=1):  # larger first, as supervision orders them
        if areas[i] == 0:
            continue
        crop, (x, y) = masks.crop(int(i)), masks.offsets[i] - (x1, y1)
        region = index[y:y + crop.shape[0], x:x + crop.shape[1]]
        cv2.copyTo(np.full(crop.shape, k, np.uint8), crop.view(np.uint8), region)
        lut[k, 0] = resolve_color(palette, dets, int(i), sv.ColorLookup.TRACK).as_bgr()
    scene = image[y1:y2, x1:x2]
    blended = cv2.addWeighted(cv2.applyColorMap(index, lut), opacity, scene, 1 - opacity, 0)
    cv2.copyTo(blended, index, scene)


def fit(size: tuple[int, int], bound: tuple[int, int] | None) -> tuple[int, int]:
    """The (width, height) with ``size``'s aspect ratio that fits in ``bound``, never larger than
    ``size`` (None: ``size``).

    >>> fit((1920, 1080), (1280, 720)), fit((3840, 2160), (1280, 720)), fit((3840, 2160), (1000, 1000))
    ((1280, 720), (1280, 720), (1000, 562))
    >>> fit((640, 480), (1280, 720)), fit((640, 480), None)
    ((640, 480), (640, 480))
    """
    if bound is None:
        return size
    scale = min(1.0, bound[0] / size[0], bound[1] / size[1])
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` (h, w, C) resized down to ``size`` (width, height): halved by ``cv2.INTER_AREA`` (its fast
    2x case) while twice as large or more, then ``cv2.INTER_LINEAR``. It looks like INTER_AREA all the
    way (PSNR 41-43 dB to it on frames with text and 1-pixel lines) at a third to a quarter of its cost
    (to 1280x720 on 2 CPU cores: 1080p 3.1 ms against 13, 4K 6.5 against 18.5; INTER_AREA's general,
    non-2x case is slow); INTER_LINEAR alone aliases past 2x (4K: 30 dB, broken lines and text).
    ``benchmarks/window_show.py`` measures it.

    >>> shrink(np.zeros((2160, 3840, 3), np.uint8), (1280, 720)).shape
    (720, 1280, 3)
    """
    while image.shape[1] >= 2 * size[0] and image.shape[0] >= 2 * size[1]:
        image = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
    if (image.shape[1], image.shape[0]) == size:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


def scaled(dets: sv.Detections, size: tuple[int, int], frame: tuple[int, int]) -> sv.Detections:
    """``dets`` of a ``frame`` (width, height) moved to an image of ``size``: boxes scaled, masks
    resized as box crops (nearest neighbour: ``cv2.INTER_NEAREST`` of the full masks), from their
    runs (:func:`rtseg.masks.resized`)."""
    out = take(dets, np.arange(len(dets)))
    out.xyxy = dets.xyxy * np.array([size[0] / frame[0], size[1] / frame[1]] * 2)
    if dets.mask is not None:
        out.mask = resized(compact(dets.mask), (size[1], size[0]))
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
