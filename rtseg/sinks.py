"""Outputs: the overlay video, DAVIS-style indexed mask PNGs, and JSON lines.

Each output is a context manager that leaves what it wrote valid when the run stops early, by
Ctrl-C or by an error: the video is finalised on exit, each PNG and each JSON line is complete as
soon as its frame is done.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import supervision as sv

from rtseg.errors import RtsegError
from rtseg.io import write_index_png


def check_writable(path: Path, is_dir: bool = False) -> None:
    """Raise RtsegError now, before any work, when ``path`` cannot be written."""
    target = path if is_dir else path.parent
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RtsegError(f"cannot create folder {target}: {exc.strerror}") from exc
    if not os.access(target, os.W_OK):
        raise RtsegError(f"cannot write to {target}: permission denied")
    if not is_dir and path.is_dir():
        raise RtsegError(f"cannot write {path}: it is a folder")


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
    for i in range(len(dets)):
        mask = masks[i]
        x, y, w, h = cv2.boundingRect(mask.view(np.uint8))  # area and centroid on the object's box only
        moments = cv2.moments(mask[y:y + h, x:x + w].view(np.uint8), binaryImage=True)
        area = int(moments["m00"])
        objects.append({
            "id": int(ids[i]),
            "prompt": str(dets.data["prompt"][i]) if "prompt" in dets.data else "",
            "box": [round(float(v), 1) for v in dets.xyxy[i]],
            "score": round(float(dets.confidence[i]), 4) if dets.confidence is not None else None,
            "area": area,
            "centroid": [round(x + moments["m10"] / area, 1), round(y + moments["m01"] / area, 1)] if area else None,
            "mask": {"size": list(mask.shape), "counts": sv.mask_to_rle(mask, compressed=True)} if area else None,
        })
    return {"index": int(index), "time": round(float(time_s), 4), "objects": objects}


class VideoOutput:
    """The overlay video (``mp4v`` by default), finalised on exit whatever happened."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], codec: str = "mp4v") -> None:
        self.path = Path(path)
        check_writable(self.path)
        self.fps = max(int(round(fps)), 1)
        info = sv.VideoInfo(width=size[0], height=size[1], fps=self.fps)
        self.sink = sv.VideoSink(str(self.path), info, codec=codec)
        self.frames = 0

    def __enter__(self) -> "VideoOutput":
        try:
            self.sink.__enter__()
        except RuntimeError as exc:
            raise RtsegError(f"cannot write video {self.path} (codec or format not supported)") from exc
        return self

    def write(self, image: np.ndarray, at: float | None = None) -> None:
        """Append a frame. With ``at`` (seconds since the start, for live sources that skip frames),
        the frame is repeated until the video reaches that time, so the file plays in real time."""
        copies = 1 if at is None or self.frames == 0 else max(int(round(at * self.fps)) + 1 - self.frames, 0)
        for _ in range(copies):
            self.sink.write_frame(image)
        self.frames += copies

    def __exit__(self, *exc: object) -> None:
        self.sink.__exit__(None, None, None)


class MaskWriter:
    """``DIR/%05d.png`` per frame: 8-bit palette PNG, pixel value = track id, 0 = background."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        check_writable(self.folder, is_dir=True)

    def __enter__(self) -> "MaskWriter":
        return self

    def write(self, index: int, dets: sv.Detections, shape: tuple[int, int]) -> None:
        path = self.folder / f"{index:05d}.png"
        tmp = path.with_suffix(".tmp.png")
        write_index_png(tmp, label_map(dets, shape))
        os.replace(tmp, path)  # a mask file is either whole or absent

    def __exit__(self, *exc: object) -> None:
        pass


class JsonlWriter:
    """One JSON object per line, flushed as each frame is done."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        check_writable(self.path)
        self.file: Any = None

    def __enter__(self) -> "JsonlWriter":
        try:
            self.file = open(self.path, "w", encoding="utf-8")
        except OSError as exc:
            raise RtsegError(f"cannot write {self.path}: {exc.strerror}") from exc
        return self

    def write(self, record: dict[str, Any]) -> None:
        self.file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.file.flush()

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()
