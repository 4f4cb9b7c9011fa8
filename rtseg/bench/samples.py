"""Benchmark samples: a video with, where known, its ground truth and first-frame prompts."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rtseg.capture.sources import VideoFileSource
from rtseg.errors import RtsegError
from rtseg.evaluate import evaluate_arrays, load_folder
from rtseg.prompt.prompts import BoxPrompt, PointPrompt, Prompt, TextPrompt


@dataclasses.dataclass
class Sample:
    """A video with, where known, ground truth (gt/*.png) and first-frame prompts (objects.json)."""

    name: str
    video: Path
    frames: list[np.ndarray]
    gt: np.ndarray | None  # (T, H, W) label maps
    objects: list[dict[str, Any]]  # id, point, box, text
    fps: float

    def prompts(self, kind: str) -> list[Prompt]:
        if not self.objects:
            raise RtsegError(f"{self.name}: no objects.json, so no first-frame prompts to bench with")
        return [prompt_of(o, kind) for o in self.objects]

    def mean_j(self, labels: list[np.ndarray] | np.ndarray) -> float | None:
        if self.gt is None:
            return None
        pred = np.stack(list(labels))
        return round(evaluate_arrays(pred, self.gt[: len(pred)],
                                     objects=[o["id"] for o in self.objects])["overall"]["J"], 4)


def prompt_of(prompts: dict[str, Any], kind: str) -> Prompt:
    """An object's first-frame prompt of one kind ("point", "box" or "text") from its ``prompts`` in
    objects.json (as ``rtseg synth video`` writes them)."""
    make: dict[str, Callable[[dict], Prompt]] = {
        "point": lambda o: PointPrompt((tuple(o["point"]),), (1,)),
        "box": lambda o: BoxPrompt(tuple(o["box"])), "text": lambda o: TextPrompt(o["text"])}
    return make[kind](prompts)


def load_sample(path: str | Path, frames: int) -> Sample:
    """A sample folder (video.mp4 [, gt/, objects.json], as ``rtseg synth video`` writes) or a video."""
    path = Path(path)
    video = path / "video.mp4" if path.is_dir() else path
    if not video.is_file():
        raise RtsegError(f"not a sample: {path} (expected a video, or a folder with video.mp4)")
    with VideoFileSource(video) as src:
        images = [f.image for _, f in zip(range(frames), src)]
        fps = src.fps or 30.0
    gt = None
    if (path / "gt").is_dir():
        gt = load_folder(path / "gt")[1][: len(images)]
    objects = []
    if (path / "objects.json").is_file():
        for o in json.loads((path / "objects.json").read_text())["objects"]:
            objects.append({"id": o["id"], **o["prompts"]})
    return Sample(path.name if path.is_dir() else path.stem, video, images, gt, objects, fps)
