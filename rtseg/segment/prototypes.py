"""A frame's mask prototypes, and the masks of just the segments asked for.

ultralytics makes a full-size mask for every segment of every frame (``process_mask_native``).
:class:`Prototypes` keeps the frame's prototypes and makes masks on demand, with ultralytics' own
mask maths: on the tracker's coarse grid for every segment, and at the frame's size (bit for bit
what ``process_mask_native`` gives, but computed inside each segment's box only, and kept as box
crops: :mod:`rtseg.masks`) for the few objects that are reported, their edges then moved onto the
frame's colour edges (:mod:`rtseg.segment.refine`, ``model.refine``; 0 keeps ultralytics' masks). It
is what ``metadata[PROTOTYPES]`` holds (see :mod:`rtseg.detections`).
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
import supervision as sv

from rtseg.detections import COEFFS, CROPS
from rtseg.masks import Crop, dense
from rtseg.segment.refine import guided, guided_tensor


class Prototypes:
    """One frame's mask prototypes (C, h, w), from a model input of ``input_shape`` (H, W).

    A segment's mask is its coefficients times the prototypes, upsampled, cut to its box and
    thresholded at 0 (ultralytics' ``process_mask_native``); made here only for the rows asked for,
    and only inside their boxes.

    Args:
        protos: (C, h, w) tensor, on the model's device.
        input_shape: the letterboxed input's (H, W) that the prototypes are a quarter of.
        retina: full-size masks upsampled straight to the frame (True), or made at the input size and
            resized to the frame (False: ultralytics' ``retina_masks=False``; coarser edges).
        image: the frame (BGR), for ``refine``.
        refine: the full-size masks' edges snapped to the frame's colour edges within this many
            prototype cells (:func:`rtseg.segment.refine.guided`); 0: ultralytics' masks as they are.
    """

    def __init__(self, protos: Any, input_shape: tuple[int, int], retina: bool = True,
                 image: np.ndarray | None = None, refine: float = 0.0) -> None:
        self.protos, self.input_shape, self.retina = protos, input_shape, retina
        self.image, self.refine = image, refine

    def _tensors(self, dets: sv.Detections) -> tuple[Any, Any]:
        import torch

        device = self.protos.device
        return (torch.from_numpy(dets.data[COEFFS]).to(device), torch.from_numpy(dets.data[CROPS]).to(device))

    def full(self, dets: sv.Detections, shape: tuple[int, int]) -> np.ndarray:
        """(N, H, W) bool masks of ``dets`` on a frame of ``shape`` (H, W)."""
        return dense(self.crops(dets, shape), shape)

    def crops(self, dets: sv.Detections, shape: tuple[int, int]) -> list[Crop]:
        """The masks of ``dets`` on a frame of ``shape`` (H, W) as (crop, x, y): inside each box, or the
        whole frame where ultralytics' own upsampling makes them (:func:`~rtseg.masks.from_crops` cuts
        them to their masks' boxes); their edges refined when the frame is this ``shape``."""
        if self.refine <= 0 or self.image is None or self.image.shape[:2] != tuple(shape):
            return self._made(dets, shape)
        h, w = self.input_shape
        radius = round(4 * self.refine / min(h / shape[0], w / shape[1]))  # prototype cells, in frame pixels
        if self.refine_on_device:
            import torch

            frame = self.image if self.image.flags.writeable else self.image.copy()  # (torch warns of read-only ones)
            image = torch.from_numpy(frame).to(self.protos.device)
            return [_host(guided_tensor(image, _cut(crop), radius)) for crop in self._made(dets, shape, True)]
        return [guided(self.image, _cut(crop), radius) for crop in self._made(dets, shape)]

    @property
    def refine_on_device(self) -> bool:
        """Whether the edges are refined where the masks are made, on the model's device (a GPU), by
        :func:`~rtseg.segment.refine.guided_tensor`: there it takes nothing from the CPU. With the
        model on the CPU, OpenCV's (:func:`~rtseg.segment.refine.guided`) costs less."""
        return self.protos.device.type != "cpu"

    def _made(self, dets: sv.Detections, shape: tuple[int, int], on_device: bool = False) -> list[Crop]:
        """The model's masks of ``dets`` as (crop, x, y), bit for bit ultralytics'; bool tensors on the
        model's device instead of arrays if ``on_device``."""
        from ultralytics.utils import ops

        def host(masks: Any) -> Any:
            return masks if on_device else masks.cpu().numpy()

        if len(dets) == 0:
            return []
        coeffs, crops = self._tensors(dets)
        if not self.retina:
            small = ops.process_mask(self.protos, coeffs, crops, self.input_shape, upsample=True)
            return [(m, 0, 0) for m in host(ops.scale_masks(small[None].float(), shape)[0] > 0.5)]
        boxes = ops.scale_boxes(self.input_shape, crops.clone(), shape)
        window = self._window(shape)
        if window is None:  # the letterbox padding is not whole prototype pixels: ultralytics' two-step upsampling
            return [(m, 0, 0) for m in host(ops.process_mask_native(self.protos, coeffs, boxes, shape).bool())]
        return [(host(m), x, y) for m, x, y in self._in_boxes(coeffs, boxes, shape, window)]

    def _window(self, shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
        """Where the frame's content lies in the prototypes (top, left, height, width), as
        ultralytics' ``process_mask_native`` / ``scale_masks`` crop it; None when it upsamples first
        (padding that is not whole prototype pixels), which :meth:`_in_boxes` does not mirror."""
        _, mh, mw = self.protos.shape
        h, w = shape
        gain = min(4 * mh / h, 4 * mw / w)
        pad = (4 * mh - max(round(h * gain), 1)) | (4 * mw - max(round(w * gain), 1))
        if 4 // math.gcd(4, pad | pad // 2) != 1:
            return None
        gain = min(mh / h, mw / w)
        ch, cw = max(round(h * gain), 1), max(round(w * gain), 1)
        return round((mh - ch) / 2 - 0.1), round((mw - cw) / 2 - 0.1), ch, cw

    def _in_boxes(self, coeffs: Any, boxes: Any, shape: tuple[int, int],
                  window: tuple[int, int, int, int]) -> list[tuple[Any, int, int]]:
        """``process_mask_native``'s masks, computed only inside each box: the same bilinear
        upsampling of the same logits (PyTorch's ``align_corners=False`` sampling), on the box's
        pixels instead of the whole frame's. A small object costs its own area, not the frame's.
        The masks are bool tensors on the prototypes' device."""
        import torch

        top, left, ch, cw = window
        h, w = shape
        ys, xs = _bilinear_taps(ch, h, self.protos.device), _bilinear_taps(cw, w, self.protos.device)
        protos = self.protos.float()
        c = protos.shape[0]
        out: list[tuple[Any, int, int]] = []
        for i, (x1, y1, x2, y2) in enumerate(boxes.tolist()):  # crop_mask keeps x1 <= x < x2, y1 <= y < y2
            xa, xb, ya, yb = max(math.ceil(x1), 0), min(math.ceil(x2), w), max(math.ceil(y1), 0), min(math.ceil(y2), h)
            if xa >= xb or ya >= yb:
                out.append((protos.new_zeros((0, 0), dtype=torch.bool), min(xa, w - 1), min(ya, h - 1)))
                continue
            (r0, r1, ry), (c0, c1, cx) = ys(ya, yb), xs(xa, xb)
            sub = protos[:, top + r0: top + r1, left + c0: left + c1]
            logits = (coeffs[i: i + 1] @ sub.reshape(c, -1)).view(r1 - r0, c1 - c0)
            cols = logits[:, cx[0]] * cx[2] + logits[:, cx[1]] * cx[3]
            mask = cols[ry[0]] * ry[2][:, None] + cols[ry[1]] * ry[3][:, None]
            out.append((torch.gt(mask, 0), xa, ya))
        return out

    def grid(self, dets: sv.Detections, shape: tuple[int, int], factor: int) -> np.ndarray:
        """(N, ceil(H/f), ceil(W/f)) bool masks of ``dets`` for a frame of ``shape``, ``factor`` times
        coarser: the mask logits resized to that grid, cut to the boxes and thresholded at 0. (At
        imgsz 640 on 640x480 frames, the prototypes are that grid already: nothing is resized.)"""
        from ultralytics.utils import ops

        gh, gw = -(-shape[0] // factor), -(-shape[1] // factor)
        if len(dets) == 0:
            return np.zeros((0, gh, gw), bool)
        coeffs, crops = self._tensors(dets)
        c, mh, mw = self.protos.shape
        logits = (coeffs @ self.protos.float().view(c, -1)).view(1, -1, mh, mw)
        logits = ops.scale_masks(logits, (gh, gw))[0]  # crops the letterbox padding
        boxes: Any = ops.scale_boxes(self.input_shape, crops.clone(), shape) / factor
        return ops.crop_mask(logits.gt(0).byte(), boxes).bool().cpu().numpy()


def _cut(crop: Crop) -> Crop:
    """``crop`` cut to its mask's bounding box (a whole-frame mask to the object's box); the mask an
    array or a tensor."""
    mask, x, y = crop
    if not isinstance(mask, np.ndarray):
        rows, cols = mask.any(1).nonzero()[:, 0].tolist(), mask.any(0).nonzero()[:, 0].tolist()
        bx, by, bw, bh = (cols[0], rows[0], cols[-1] + 1 - cols[0], rows[-1] + 1 - rows[0]) if rows else (0, 0, 0, 0)
    else:
        bx, by, bw, bh = cv2.boundingRect(mask.view(np.uint8)) if mask.size else (0, 0, 0, 0)
    return (mask[by:by + bh, bx:bx + bw], x + bx, y + by) if bw else crop


def _host(crop: Any) -> Crop:
    """A (mask tensor, x, y) crop with its mask as a NumPy array."""
    return crop[0].cpu().numpy(), crop[1], crop[2]


def _bilinear_taps(size_in: int, size_out: int, device: Any) -> Any:
    """``taps(a, b)`` -> ((lo, hi, (i0, i1, w0, w1))): for output pixels a..b-1 of a ``size_in`` ->
    ``size_out`` bilinear resize (PyTorch, ``align_corners=False``), the input span lo..hi-1 they read
    and, relative to lo, each pixel's two input indices and weights."""
    import torch

    scale = torch.tensor(float(size_in)) / size_out  # as PyTorch computes it: in float32
    src = ((torch.arange(size_out, dtype=torch.float32) + 0.5) * scale - 0.5).clamp_(min=0)
    i0 = src.long()
    i1 = torch.where(i0 < size_in - 1, i0 + 1, i0)
    w1 = (src - i0).clamp_(0, 1)
    i0, i1, w0, w1 = i0.to(device), i1.to(device), (1 - w1).to(device), w1.to(device)

    def taps(a: int, b: int) -> Any:
        lo, hi = int(i0[a]), int(i1[b - 1]) + 1
        return lo, hi, (i0[a:b] - lo, i1[a:b] - lo, w0[a:b], w1[a:b])

    return taps
