"""Segment everything in a frame with FastSAM (ultralytics), as ``supervision.Detections``.

This is the one boundary where ultralytics and torch types become ``sv.Detections``: nothing past it
sees them. A fake segmenter for tests only needs the :class:`Segmenter` protocol.

Masks are lazy (see :mod:`rtseg.detections`): :class:`FastSAMSegmenter` returns each segment's mask
coefficients and the frame's :class:`~rtseg.segment.prototypes.Prototypes` instead of a full-size
mask for every segment.
"""

from __future__ import annotations

import copy
import time
from typing import Any, Protocol

import numpy as np
import supervision as sv

from rtseg.config import ModelConfig
from rtseg.detections import COEFFS, CROPS, PROTOTYPES
from rtseg.segment.offline import prepare_ultralytics
from rtseg.segment.prototypes import Prototypes
from rtseg.segment.safe_load import open_fastsam
from rtseg.segment.weights import resolve_weights, select_device


class Segmenter(Protocol):
    """Anything that turns a BGR frame (H, W, 3) uint8 into Detections with full-size masks
    (``mask``, or lazy ones that :func:`~rtseg.detections.masks_of` makes)."""

    def __call__(self, image: np.ndarray) -> sv.Detections: ...


class FastSAMSegmenter:
    """FastSAM in everything mode: every segment of the frame, with lazy full-size masks
    (:func:`~rtseg.detections.masks_of`).

    Args:
        model: ``fastsam-s``, ``fastsam-x``, or a path to a FastSAM-format ``.pt`` or exported model.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps``.
        imgsz: inference size (long side), a multiple of 32.
        conf: minimum confidence of a segment.
        iou: NMS IoU threshold (FastSAM keeps overlapping parts: 0.9 by default).
        half: fp16 inference; None = on CUDA only.
        max_det: most segments per frame.
        threads: torch CPU threads (None: ultralytics' choice, cores - 1).
        retina_masks: full-size masks (when :func:`~rtseg.detections.masks_of` makes them) upsampled from the model's
            prototypes straight to the frame (True), or made at the inference size and resized to
            the frame (False: coarser edges).
        refine: full-size masks' edges snapped to the frame's colour edges within this many prototype
            cells (:mod:`rtseg.segment.refine`); 0: ultralytics' masks, bit for bit.
        trust_weights: load a ``.pt`` with ultralytics' unrestricted unpickler, which runs any code the
            file holds (``--trust-weights``); by default it may not (:mod:`rtseg.segment.safe_load`).
    """

    def __init__(
        self,
        model: str = "fastsam-s",
        device: str = "auto",
        imgsz: int = 640,
        conf: float = 0.4,
        iou: float = 0.9,
        half: bool | None = None,
        max_det: int = 100,
        threads: int | None = None,
        retina_masks: bool = True,
        refine: float = 1.0,
        trust_weights: bool = False,
    ) -> None:
        prepare_ultralytics()
        self.device = select_device(device)
        self.path = resolve_weights(model)
        self.model = open_fastsam(self.path, trust_weights)
        self.kwargs: dict[str, Any] = dict(device=self.device, imgsz=imgsz, conf=conf, iou=iou, max_det=max_det,
                           half=self.device.startswith("cuda") if half is None else half,
                           retina_masks=retina_masks, verbose=False)
        self.threads, self.refine = threads, refine
        self.last_ms = 0.0

    @classmethod
    def from_config(cls, m: ModelConfig, weights: str | None = None, trust_weights: bool = False
                    ) -> "FastSAMSegmenter":
        """The segmenter a config's ``model`` section describes (``weights`` overrides its weights;
        ``trust_weights`` comes from the command line only, never from a config)."""
        return cls(weights or m.weights, m.device, m.imgsz, m.conf, m.iou, m.half, m.max_det, m.threads,
                   m.retina_masks, m.refine, trust_weights)

    def share_threads(self) -> None:
        """Give the calling thread the torch CPU thread count that the model runs with (``threads``;
        on the CPU by default ultralytics' cores - 1). The tracker decodes masks with torch on its own
        thread while the next frame is segmented on another, and a thread keeps the count it had when
        it first ran torch (often every core): two threads each spinning on every core are slower."""
        import torch
        from ultralytics.utils import NUM_THREADS

        threads = self.threads or (NUM_THREADS if self.device == "cpu" else None)
        if threads and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)

    def view(self, m: ModelConfig) -> "FastSAMSegmenter":
        """This loaded model with the inference settings of ``m`` (a copy sharing the model; its
        weights, device and precision stay this one's)."""
        out = copy.copy(self)
        out.kwargs = {**self.kwargs, "imgsz": m.imgsz, "conf": m.conf, "iou": m.iou, "max_det": m.max_det,
                      "retina_masks": m.retina_masks}
        out.refine = m.refine
        return out

    def __call__(self, image: np.ndarray) -> sv.Detections:
        """Segments of one BGR frame: ``xyxy``, ``confidence`` and lazy masks (see :mod:`rtseg.detections`)."""
        start = time.perf_counter()
        result = self.model.predict(image, predictor=lazy_mask_predictor(), **self.kwargs)[0]
        if self.threads is not None:  # ultralytics sets its own count when the predictor is first set up
            import torch

            if torch.get_num_threads() != self.threads:
                torch.set_num_threads(self.threads)
        dets = sv.Detections.from_ultralytics(result)
        if len(dets):
            dets.data[COEFFS], dets.data[CROPS] = result.rtseg_lazy
        else:
            dets.mask = np.zeros((0, *image.shape[:2]), dtype=bool)
        dets.metadata[PROTOTYPES] = Prototypes(result.rtseg_protos, result.rtseg_input_shape,
                                               self.kwargs["retina_masks"], image, self.refine)
        self.last_ms = (time.perf_counter() - start) * 1000
        return dets


_PREDICTOR: type | None = None


def lazy_mask_predictor() -> type:
    """ultralytics' FastSAM predictor, except that results carry each segment's mask coefficients,
    crop box and the frame's prototypes instead of full-size masks of every segment."""
    global _PREDICTOR
    if _PREDICTOR is None:
        from ultralytics.engine.results import Results
        from ultralytics.models.fastsam import FastSAMPredictor
        from ultralytics.utils import ops

        class LazyMaskPredictor(FastSAMPredictor):  # type: ignore[misc]
            def construct_result(self, pred: Any, img: Any, orig_img: Any, img_path: Any,  # type: ignore[override]
                                 proto: Any) -> Any:
                input_shape = tuple(img.shape[2:])
                crops, coeffs = pred[:, :4].clone(), pred[:, 6:]
                if len(pred):  # drop segments whose mask is empty on the prototype grid, as ultralytics does
                    c, mh, mw = proto.shape
                    logits = (coeffs.float() @ proto.float().view(c, -1)).view(-1, mh, mw)
                    keep = ops.crop_mask(logits.gt(0).byte(), crops * (mh / input_shape[0])).amax((-2, -1)) > 0
                    pred, crops, coeffs = pred[keep], crops[keep], coeffs[keep]
                pred[:, :4] = ops.scale_boxes(input_shape, pred[:, :4], orig_img.shape)
                result: Any = Results(orig_img, path=img_path, names=self.model.names,  # type: ignore[attr-defined]
                                      boxes=pred[:, :6])
                result.rtseg_lazy = (coeffs.float().cpu().numpy(), crops.float().cpu().numpy())
                result.rtseg_protos, result.rtseg_input_shape = proto, input_shape
                return result

        _PREDICTOR = LazyMaskPredictor
    return _PREDICTOR
