"""Synthetic videos of the shapes world, with DAVIS ground truth and first-frame prompts.

:func:`write_video` renders a scenario (:mod:`rtseg.synth.scenarios`) to

- ``OUT/video.mp4`` (mp4v),
- ``OUT/gt/%05d.png`` (indexed PNG, pixel = object id, visible pixels only),
- ``OUT/objects.json`` (id, colour, shape and the first-frame point, box and text prompt of each),

and with ``depth=True`` also ``OUT/depth/%05d.png`` (16-bit millimetres: each object a plane at its
own distance, :mod:`rtseg.synth.world`), the camera's ``intrinsics`` in objects.json (the keys of
:class:`~rtseg.config.CameraConfig`), and ``OUT/depth.json``: ``{"units": "metres", "centroids": [{id:
[x, y, z], ...} per frame]}``, the true 3D centroid of each visible object's visible pixels.
"""

from __future__ import annotations

import json
from pathlib import Path as FsPath

import cv2
import numpy as np
from scipy.ndimage import distance_transform_edt

from rtseg.output.png import write_index_png
from rtseg.synth.scenarios import SCENARIOS, Path, build_scenario
from rtseg.synth.world import (
    BACKGROUNDS,
    SceneObject,
    depth_image,
    intrinsics,
    make_background,
    plane_distances,
    render,
    scale_for,
    visible_centroids,
)

__all__ = ["SCENARIOS", "write_video"]


class _Camera:
    """Renders frame i of a scenario: the background (larger than the frame, for the shake) cut at the
    camera offset, and the objects moved by it."""

    def __init__(self, paths: list[Path], shake: np.ndarray, background, rng: np.random.Generator, kind: str,
                 width: int, height: int) -> None:
        self.paths, self.shake, self.rng, self.size = paths, shake, rng, (width, height)
        # each path's label: the ground-truth objects 1, 2, ... in order, then the distractors
        self.named = sum(p.truth for p in paths)
        truth = [k for k, p in enumerate(paths) if p.truth]
        others = [k for k, p in enumerate(paths) if not p.truth]
        self.ids = [1 + truth.index(k) if k in truth else self.named + 1 + others.index(k) for k in range(len(paths))]
        self.margin = int(np.ceil(np.abs(shake).max())) + 1
        self.canvas = background(rng, height + 2 * self.margin, width + 2 * self.margin, kind,
                                 scale_for(height, width))

    def frame(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        (width, height), m = self.size, self.margin
        sx, sy = self.shake[i]
        objects = [SceneObject(k, p.colour, p.shape, (p.pos[i, 0] + sx, p.pos[i, 1] + sy), float(p.radius[i]),
                               float(p.angle[i])) for k, p in zip(self.ids, self.paths)]
        dx, dy = np.round(self.shake[i]).astype(int)
        image, labels = render(self.canvas[m - dy: m - dy + height, m - dx: m - dx + width], objects, self.rng)
        labels[labels > self.named] = 0  # distractors: drawn, and background in the ground truth
        return image, labels


def _point_inside(mask: np.ndarray) -> tuple[int, int]:
    """The most interior pixel (x, y) of a non-empty mask (the first in row-major order of those
    farthest from the background and the frame's edge)."""
    x0, y0, x1, y1 = _box(mask)  # the distances within the box, padded by one, are the frame's
    dist = distance_transform_edt(np.pad(mask[y0:y1, x0:x1], 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(x) + x0, int(y) + y0


def _box(mask: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def write_video(
    out: str | FsPath,
    scenario: str,
    seed: int = 0,
    frames: int | None = None,
    size: tuple[int, int] = (640, 480),
    fps: float = 30.0,
    background: str | None = None,
    depth: bool = False,
    colour: str | None = None,
) -> dict:
    """Render one scenario video with ground truth and prompts (and, with ``depth``, depth images)
    into folder ``out``; returns the JSON of objects.json."""
    if depth and scenario == "concept":
        raise ValueError("the concept scenario has no depth (its distractors have no ground truth to place)")
    width, height = size
    frames = frames or (300 if scenario in ("showcase", "concept") else 90)
    out = FsPath(out)
    (out / "gt").mkdir(parents=True, exist_ok=True)
    min_area = 300 * scale_for(height, width) ** 2
    for attempt in range(50):  # redraw until every object is clearly visible on the first frame
        rng = np.random.default_rng([seed, SCENARIOS.index(scenario), attempt])
        kind = background or str(rng.choice(BACKGROUNDS))
        paths, shake = build_scenario(scenario, rng, frames, width, height, colour)
        camera = _Camera(paths, shake, make_background, rng, kind, width, height)
        image0, labels0 = camera.frame(0)
        inside = [k for k, p in zip(camera.ids, paths) if p.truth and (0 <= p.pos[0]).all() and (p.pos[0] < size).all()]
        if all((labels0 == k).sum() >= min_area for k in inside):  # the objects in view from the start
            break
    else:  # pragma: no cover - the scenarios are built to make this unreachable
        raise RuntimeError(f"could not place scenario {scenario!r} with seed {seed}")

    objects: list[dict] = []
    extra: dict = {}
    if scenario == "concept":  # instances enter later: no first-frame prompts, the phrase instead
        named = [p for p in paths if p.truth]
        objects = [{"id": k + 1, "colour": p.colour, "shape": p.shape} for k, p in enumerate(named)]
        extra = {"concept": f"the {named[0].colour} {named[0].shape}",
                 "distractors": [{"colour": p.colour, "shape": p.shape} for p in paths if not p.truth]}
    else:
        for k, p in enumerate(paths):
            mask = labels0 == k + 1
            objects.append({
                "id": k + 1, "colour": p.colour, "shape": p.shape,
                "prompts": {"point": list(_point_inside(mask)), "box": _box(mask),
                            "text": f"the {p.colour} {p.shape}"},
            })
    meta = {"scenario": scenario, "seed": seed, "width": width, "height": height, "fps": fps,
            "frames": frames, "background": kind, "objects": objects, **extra,
            "camera": np.round(shake, 2).tolist()}
    if depth:  # its own random numbers: the colour video stays what it is without depth
        depth_rng = np.random.default_rng([seed, SCENARIOS.index(scenario), attempt, 1])
        distances = plane_distances([p.radius for p in paths], depth_rng)
        meta["intrinsics"] = intrinsics(width, height)
        (out / "depth").mkdir(exist_ok=True)
        truth = []
    writer = cv2.VideoWriter(str(out / "video.mp4"), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise OSError(f"cannot write {out / 'video.mp4'}")
    try:
        for i in range(frames):
            image, labels = (image0, labels0) if i == 0 else camera.frame(i)
            writer.write(image)
            write_index_png(out / "gt" / f"{i:05d}.png", labels)
            if depth:
                cv2.imwrite(str(out / "depth" / f"{i:05d}.png"), depth_image(labels, distances[:, i], depth_rng))
                truth.append(visible_centroids(labels, distances[:, i], meta["intrinsics"]))
    finally:
        writer.release()
    if depth:
        (out / "depth.json").write_text(json.dumps({"units": "metres", "centroids": truth}) + "\n")
    (out / "objects.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta
