"""Segment everything in a frame with FastSAM (ultralytics), as ``supervision.Detections``.

This is the one boundary where ultralytics and torch types become ``sv.Detections``: nothing past it
sees them. A fake segmenter for tests only needs the :class:`Segmenter` protocol.

Masks are lazy. ultralytics makes a full-size mask for every segment of every frame (upsampling the
model's prototype masks), though a tracker only needs them on a coarse grid and the outputs only
for the few objects it reports. :class:`FastSAMSegmenter` returns each segment's mask coefficients
instead (``data[COEFFS]``, with the frame's :class:`Prototypes` in ``metadata[PROTOTYPES]``);
:func:`grid_masks` and :func:`masks_of` make the masks of just the rows they are given, with
ultralytics' mask maths: a full-size mask is the same bilinear upsampling of the same logits as
ultralytics' ``process_mask_native`` (bit for bit), computed inside the segment's box only.
Detections with dense ``mask`` (a test's fake segmenter) work the same.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
import supervision as sv

from rtseg.errors import RtsegError
from rtseg.offline import prepare_ultralytics

if TYPE_CHECKING:
    from rtseg.config import ModelConfig

KNOWN_WEIGHTS = {"fastsam-s": "FastSAM-s.pt", "fastsam-x": "FastSAM-x.pt", "fastsam": "FastSAM-x.pt"}
EXPORT_SUFFIXES = (".pt", ".onnx", ".engine", ".torchscript", ".xml", ".mlpackage", ".tflite")


COEFFS = "mask_coeffs"  # Detections.data: (N, C) float32 mask coefficients of each segment
CROPS = "mask_crops"  # Detections.data: (N, 4) the boxes, at the model's input size, masks are cut to
PROTOTYPES = "mask_prototypes"  # Detections.metadata: the frame's Prototypes


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
    """

    def __init__(self, protos: Any, input_shape: tuple[int, int], retina: bool = True) -> None:
        self.protos, self.input_shape, self.retina = protos, input_shape, retina

    def _tensors(self, dets: sv.Detections) -> tuple[Any, Any]:
        import torch

        device = self.protos.device
        return (torch.from_numpy(dets.data[COEFFS]).to(device), torch.from_numpy(dets.data[CROPS]).to(device))

    def full(self, dets: sv.Detections, shape: tuple[int, int]) -> np.ndarray:
        """(N, H, W) bool masks of ``dets`` on a frame of ``shape`` (H, W)."""
        from ultralytics.utils import ops

        if len(dets) == 0:
            return np.zeros((0, *shape), bool)
        coeffs, crops = self._tensors(dets)
        if not self.retina:
            small = ops.process_mask(self.protos, coeffs, crops, self.input_shape, upsample=True)
            return (ops.scale_masks(small[None].float(), shape)[0] > 0.5).cpu().numpy()
        boxes = ops.scale_boxes(self.input_shape, crops.clone(), shape)
        window = self._window(shape)
        if window is None:  # the letterbox padding is not whole prototype pixels: ultralytics' two-step upsampling
            return ops.process_mask_native(self.protos, coeffs, boxes, shape).bool().cpu().numpy()
        return self._in_boxes(coeffs, boxes, shape, window)

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
                  window: tuple[int, int, int, int]) -> np.ndarray:
        """``process_mask_native``'s masks, computed only inside each box: the same bilinear
        upsampling of the same logits (PyTorch's ``align_corners=False`` sampling), on the box's
        pixels instead of the whole frame's. A small object costs its own area, not the frame's."""
        import torch

        top, left, ch, cw = window
        h, w = shape
        ys, xs = _bilinear_taps(ch, h, self.protos.device), _bilinear_taps(cw, w, self.protos.device)
        protos = self.protos.float()
        c = protos.shape[0]
        out = np.zeros((len(coeffs), h, w), bool)
        for i, (x1, y1, x2, y2) in enumerate(boxes.tolist()):  # crop_mask keeps x1 <= x < x2, y1 <= y < y2
            xa, xb, ya, yb = max(math.ceil(x1), 0), min(math.ceil(x2), w), max(math.ceil(y1), 0), min(math.ceil(y2), h)
            if xa >= xb or ya >= yb:
                continue
            (r0, r1, ry), (c0, c1, cx) = ys(ya, yb), xs(xa, xb)
            sub = protos[:, top + r0: top + r1, left + c0: left + c1]
            logits = (coeffs[i: i + 1] @ sub.reshape(c, -1)).view(r1 - r0, c1 - c0)
            cols = logits[:, cx[0]] * cx[2] + logits[:, cx[1]] * cx[3]
            mask = cols[ry[0]] * ry[2][:, None] + cols[ry[1]] * ry[3][:, None]
            out[i, ya:yb, xa:xb] = torch.gt(mask, 0).cpu().numpy()
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


def masks_of(dets: sv.Detections, shape: tuple[int, int]) -> np.ndarray:
    """The (N, H, W) bool masks of ``dets`` (made now when they are lazy; empty when it has none)."""
    if dets.mask is not None:
        return np.asarray(dets.mask, dtype=bool)
    protos = dets.metadata.get(PROTOTYPES)
    if protos is None or len(dets) == 0:
        return np.zeros((len(dets), *shape), bool)
    return protos.full(dets, shape)


def grid_masks(dets: sv.Detections, shape: tuple[int, int], factor: int) -> np.ndarray:
    """The masks of ``dets`` on a grid ``factor`` times coarser than the frame ``shape`` (H, W)."""
    from rtseg.associate import downscale

    protos = dets.metadata.get(PROTOTYPES)
    if dets.mask is None and protos is not None:
        return protos.grid(dets, shape, factor)
    return downscale(masks_of(dets, shape), factor)


def dense(dets: sv.Detections, shape: tuple[int, int], masks: np.ndarray | None = None) -> sv.Detections:
    """``dets`` with ordinary full-size masks (``masks``, when already made) and no lazy fields."""
    out = take(dets, np.arange(len(dets)))
    out.mask = masks_of(dets, shape) if masks is None else masks
    out.data.pop(COEFFS, None)
    out.data.pop(CROPS, None)
    out.metadata.pop(PROTOTYPES, None)
    return out


def take(dets: sv.Detections, index: np.ndarray) -> sv.Detections:
    """The rows ``index`` (int array) of ``dets``, as Detections."""
    return cast(sv.Detections, dets[index])


class Segmenter(Protocol):
    """Anything that turns a BGR frame (H, W, 3) uint8 into Detections with full-size masks
    (``mask``, or lazy ones that :func:`masks_of` makes)."""

    def __call__(self, image: np.ndarray) -> sv.Detections: ...


def select_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a GPU is there, else ``mps`` on Apple silicon, else ``cpu``."""
    import torch

    if device != "auto":
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise RtsegError(f"device {device!r} asked for, but torch sees no CUDA GPU; use --device cpu")
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_weights(model: str) -> str:
    """A local file for a model name or path; fetches FastSAM-s/-x on first use where there is a network."""
    key = model.lower().removesuffix(".pt")
    if key in KNOWN_WEIGHTS:
        name = KNOWN_WEIGHTS[key]
        prepare_ultralytics()
        from ultralytics.utils import SETTINGS
        from ultralytics.utils.downloads import attempt_download_asset

        for candidate in (Path(name), Path(SETTINGS["weights_dir"]) / name):
            if candidate.is_file():
                return str(candidate)
        where = f"put {name} in {SETTINGS['weights_dir']} or the working folder, or pass --model /path/to/{name}"
        if os.environ.get("RTSEG_OFFLINE"):
            raise RtsegError(f"model weights {name} are missing (RTSEG_OFFLINE is set, so not downloaded): {where}")
        try:
            return str(attempt_download_asset(name))
        except Exception as exc:
            raise RtsegError(f"model weights {name} are missing and could not be downloaded "
                             f"({type(exc).__name__}): {where}") from exc
    path = Path(model)
    if not path.exists():
        raise RtsegError(f"model not found: {model} (use fastsam-s, fastsam-x or a path to a .pt or exported model)")
    if path.is_file() and path.suffix not in EXPORT_SUFFIXES:
        raise RtsegError(f"not a model file: {model} (expected one of {', '.join(EXPORT_SUFFIXES)})")
    return str(path)


class FastSAMSegmenter:
    """FastSAM in everything mode: every segment of the frame, with lazy full-size masks (:func:`masks_of`).

    Args:
        model: ``fastsam-s``, ``fastsam-x``, or a path to a FastSAM-format ``.pt`` or exported model.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps``.
        imgsz: inference size (long side), a multiple of 32.
        conf: minimum confidence of a segment.
        iou: NMS IoU threshold (FastSAM keeps overlapping parts: 0.9 by default).
        half: fp16 inference; None = on CUDA only.
        max_det: most segments per frame.
        threads: torch CPU threads (None: ultralytics' choice, cores - 1).
        retina_masks: full-size masks (when :func:`masks_of` makes them) upsampled from the model's
            prototypes straight to the frame (True), or made at the inference size and resized to
            the frame (False: coarser edges).
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
    ) -> None:
        prepare_ultralytics()
        from ultralytics import FastSAM

        self.device = select_device(device)
        self.path = resolve_weights(model)
        try:
            self.model = FastSAM(self.path)
        except Exception as exc:
            raise RtsegError(f"cannot load model {self.path}: {type(exc).__name__}: {exc}".splitlines()[0]) from exc
        self.kwargs: dict[str, Any] = dict(device=self.device, imgsz=imgsz, conf=conf, iou=iou, max_det=max_det,
                           half=self.device.startswith("cuda") if half is None else half,
                           retina_masks=retina_masks, verbose=False)
        self.threads = threads
        self.last_ms = 0.0

    @classmethod
    def from_config(cls, m: "ModelConfig", weights: str | None = None) -> "FastSAMSegmenter":
        """The segmenter a config's ``model`` section describes (``weights`` overrides its weights)."""
        return cls(weights or m.weights, m.device, m.imgsz, m.conf, m.iou, m.half, m.max_det, m.threads,
                   m.retina_masks)

    def __call__(self, image: np.ndarray) -> sv.Detections:
        """Segments of one BGR frame: ``xyxy``, ``confidence`` and lazy masks (see :func:`masks_of`)."""
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
                                               self.kwargs["retina_masks"])
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
