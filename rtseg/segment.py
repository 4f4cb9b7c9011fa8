"""Segment everything in a frame with FastSAM (ultralytics), as ``supervision.Detections``.

This is the one boundary where ultralytics and torch types become ``sv.Detections``: nothing past it
sees them. A fake segmenter for tests only needs the :class:`Segmenter` protocol.
"""

from __future__ import annotations

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


def masks_of(dets: sv.Detections, shape: tuple[int, int]) -> np.ndarray:
    """The (N, H, W) bool masks of ``dets`` (empty when it has none), as a dense array."""
    if dets.mask is None:
        return np.zeros((len(dets), *shape), bool)
    return np.asarray(dets.mask, dtype=bool)


def take(dets: sv.Detections, index: np.ndarray) -> sv.Detections:
    """The rows ``index`` (int array) of ``dets``, as Detections."""
    return cast(sv.Detections, dets[index])


class Segmenter(Protocol):
    """Anything that turns a BGR frame (H, W, 3) uint8 into Detections with full-size masks."""

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
    """FastSAM in everything mode: every segment of the frame, masks at the frame's resolution.

    Args:
        model: ``fastsam-s``, ``fastsam-x``, or a path to a FastSAM-format ``.pt`` or exported model.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps``.
        imgsz: inference size (long side), a multiple of 32.
        conf: minimum confidence of a segment.
        iou: NMS IoU threshold (FastSAM keeps overlapping parts: 0.9 by default).
        half: fp16 inference; None = on CUDA only.
        max_det: most segments per frame.
        threads: torch CPU threads (None: ultralytics' choice, cores - 1).
        retina_masks: masks computed at the frame's resolution from the model's prototypes (True), or
            at the inference size and then resized to the frame (False: cheaper when the inference
            size is below the frame's, coarser edges).
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
        """Segments of one BGR frame: ``mask`` (N, H, W) bool, ``xyxy``, ``confidence``."""
        start = time.perf_counter()
        result = self.model.predict(image, **self.kwargs)[0]
        if self.threads is not None:  # ultralytics sets its own count when the predictor is first set up
            import torch

            if torch.get_num_threads() != self.threads:
                torch.set_num_threads(self.threads)
        dets = sv.Detections.from_ultralytics(result)
        if dets.mask is None:  # no segment at all
            dets.mask = np.zeros((0, *image.shape[:2]), dtype=bool)
        self.last_ms = (time.perf_counter() - start) * 1000
        return dets
