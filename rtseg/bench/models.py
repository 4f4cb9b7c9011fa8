"""Models for timing: the real FastSAM architectures without their weights, and a stand-in that
costs what one model costs while answering what another said."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


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
    (``--arch``), the behaviour of one with them (``--segments-from``)."""

    def __init__(self, timed: Any, answers: Any, frames: list[np.ndarray]) -> None:
        self.timed, self.device, self.path = timed, timed.device, timed.path
        self.model, self.kwargs = timed.model, timed.kwargs
        self.answers = {_key(f): answers(f) for f in frames}

    def __call__(self, image: np.ndarray) -> Any:
        self.timed(image)
        d = self.answers[_key(image)]
        return d[np.arange(len(d))]  # a copy: the tracker must not share it between runs


def _key(image: np.ndarray) -> bytes:
    return image[::7, ::7].tobytes()
