"""Models for timing: the real FastSAM architectures without their weights, a stand-in that
costs what one model costs while answering what another said, and a forward that costs a wait."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import supervision as sv

from rtseg.detections import COEFFS, CROPS, PROTOTYPES
from rtseg.masks import Crop, dense


def build_architecture(scale: str, folder: Path) -> str:
    """A FastSAM-s/-x architecture (YOLOv8s/x-seg, one class) with untrained weights, saved as a
    FastSAM checkpoint in ``folder``: what the real model costs, without its weights.

    The weights are seeded, so every run times the same model, and the mask coefficients are set
    to fill each segment's box: with random ones most masks come out empty, and ultralytics (and
    rtseg) skip empty masks, which would time a scene with nothing in it. Run with ``conf=0`` and
    ``max_det=20``, every frame then has 20 segments with real-sized masks."""
    from rtseg.segment.offline import prepare_ultralytics

    prepare_ultralytics()
    import torch
    import yaml
    from ultralytics import YOLO
    from ultralytics.utils import ROOT

    folder.mkdir(parents=True, exist_ok=True)
    spec = yaml.safe_load((ROOT / "cfg/models/v8/yolov8-seg.yaml").read_text())
    spec.update(nc=1, scale=scale)
    spec_path = folder / f"yolov8{scale}-seg-1class.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    torch.manual_seed(0)
    model = YOLO(str(spec_path), task="segment")
    head = model.model.model[-1]  # type: ignore[union-attr,index]
    for branch in head.cv4:  # mask coefficients ~ +1: the mask is the prototypes' sum, > 0 in the box
        branch[-1].weight.data.mul_(0.01)
        branch[-1].bias.data.fill_(1.0)
    path = folder / f"fastsam-{scale}-architecture.pt"
    model.save(str(path))
    return str(path)


class StandIn:
    """A segmenter that costs what ``timed`` costs (it runs it and drops its answer) but answers what
    ``answers`` said about the same frame beforehand: the cost of a model without trained weights
    (``--arch``), the behaviour of one with them (``--segments-from``). With ``premade``, the answers'
    full-size masks are made beforehand too (:class:`Premade`)."""

    def __init__(self, timed: Any, answers: Any, frames: list[np.ndarray], premade: bool = False) -> None:
        self.timed, self.device, self.path = timed, timed.device, timed.path
        self.model, self.kwargs = timed.model, timed.kwargs
        self.answers = {_key(f): answers(f) for f in frames}
        if premade:
            for f in frames:
                d = self.answers[_key(f)]
                if d.metadata.get(PROTOTYPES) is not None:
                    d.metadata[PROTOTYPES] = Premade(d.metadata[PROTOTYPES], d, f.shape[:2])

    def __call__(self, image: np.ndarray) -> Any:
        self.timed(image)
        d = self.answers[_key(image)]
        return d[np.arange(len(d))]  # a copy: the tracker must not share it between runs


def _key(image: np.ndarray) -> bytes:
    return image[::7, ::7].tobytes()


class Premade:
    """A frame's lazy masks (:class:`~rtseg.detections.LazyMasks`) whose full-size masks, edges
    refined, were made for every segment beforehand: what the CPU has left to do when a GPU makes them
    (beside it the runner makes and refines them on the device, ``Prototypes.refine_on_device``, and
    only copies the crops back; that copy and the kernels' launching are left out too: an upper bound,
    as :class:`Waiting` is for the forward). The tracker's coarse grid masks are made as before."""

    def __init__(self, protos: Any, dets: sv.Detections, shape: tuple[int, int]) -> None:
        self.protos, self.shape = protos, shape
        self.made: dict[bytes, Crop] = {}
        for i, (crop, x, y) in enumerate(protos.crops(dets, shape)):
            crop.setflags(write=False)  # shared by every run: no one may paint on it
            self.made[_row(dets, i)] = (crop, x, y)

    def crops(self, dets: sv.Detections, shape: tuple[int, int]) -> list[Crop]:
        if shape != self.shape:
            return self.protos.crops(dets, shape)
        return [self.made[_row(dets, i)] for i in range(len(dets))]

    def full(self, dets: sv.Detections, shape: tuple[int, int]) -> np.ndarray:
        return dense(self.crops(dets, shape), shape)

    def grid(self, dets: sv.Detections, shape: tuple[int, int], factor: int) -> np.ndarray:
        return self.protos.grid(dets, shape, factor)


def _row(dets: sv.Detections, i: int) -> bytes:
    """Segment ``i`` of ``dets``, by what makes its mask (its coefficients and crop box)."""
    return dets.data[COEFFS][i].tobytes() + dets.data[CROPS][i].tobytes()


class Waiting:
    """A forward that takes ``ms`` milliseconds of waiting and no CPU, as a GPU's forward is to the
    CPU thread that waits for it: with :class:`StandIn` (the model's own segments, computed
    beforehand), what rtseg's own work allows beside an accelerator of that speed (``--forward-ms``).
    A real GPU forward still takes some CPU (ultralytics' letterbox resize and its Results): the
    figures are an upper bound on that side."""

    device = "wait"  # not the CPU: the runner treats it as an accelerator

    def __init__(self, ms: float, like: Any) -> None:
        self.ms, self.path = ms, like.path
        self.model, self.kwargs = like.model, like.kwargs

    def __call__(self, image: np.ndarray) -> None:
        time.sleep(self.ms / 1000)
