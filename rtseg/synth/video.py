"""Synthetic videos of the shapes world, with DAVIS ground truth and first-frame prompts.

A scenario builds one :class:`Path` per object (position, radius and angle per frame, list order
back to front) and a camera-shake offset per frame. :func:`write_video` renders it to

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
from dataclasses import dataclass
from pathlib import Path as FsPath

import cv2
import numpy as np
from scipy.ndimage import distance_transform_edt

from rtseg.output.png import write_index_png
from rtseg.synth.world import (
    BACKGROUNDS,
    SceneObject,
    depth_image,
    draw_attributes,
    intrinsics,
    make_background,
    plane_distances,
    render,
    scale_for,
    visible_centroids,
)

SCENARIOS = (
    "linear", "bounce", "curve", "occlusion", "crossing", "exit", "scale", "rotation", "shake", "fast",
    "showcase", "crowd",
)


@dataclass
class Path:
    """The trajectory of one object over T frames."""

    colour: str
    shape: str
    pos: np.ndarray  # (T, 2) float, x y
    radius: np.ndarray  # (T,)
    angle: np.ndarray  # (T,) degrees


def bounce(p0: np.ndarray, v: np.ndarray, frames: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Positions (T, 2) moving at ``v`` px/frame and reflecting off the box [lo, hi]."""
    out = np.empty((frames, 2))
    p, v = np.array(p0, float), np.array(v, float)
    for t in range(frames):
        out[t] = p
        p = p + v
        for k in range(2):
            if p[k] < lo[k] or p[k] > hi[k]:
                v[k] = -v[k]
                p[k] = np.clip(p[k], lo[k], hi[k])
    return out


def _velocity(rng: np.random.Generator, speed: float) -> np.ndarray:
    a = rng.uniform(0, 2 * np.pi)
    return np.array([np.cos(a), np.sin(a)]) * speed


def build_scenario(
    name: str, rng: np.random.Generator, frames: int, width: int, height: int
) -> tuple[list[Path], np.ndarray]:
    """Object paths (back to front) and a (T, 2) camera offset for scenario ``name``."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; expected one of {', '.join(SCENARIOS)}")
    s = scale_for(height, width)
    size = np.array([width, height], float)
    shake = np.zeros((frames, 2))
    t = np.arange(frames, dtype=float)

    def still(r: float) -> np.ndarray:
        return np.full(frames, r * s)

    def spin(rate: float = 0.0) -> np.ndarray:
        return rng.uniform(0, 360) + rate * t

    def random_paths(n: int, speed: tuple[float, float], same_shape_pair: bool = False) -> list[Path]:
        paths = []
        for colour, shape in draw_attributes(rng, n, same_shape_pair):
            r = rng.uniform(25, 55)
            lo, hi = np.full(2, r * s), size - r * s
            p0 = rng.uniform(lo, hi)
            pos = bounce(p0, _velocity(rng, rng.uniform(*speed) * s), frames, lo, hi)
            paths.append(Path(colour, shape, pos, still(r), spin(rng.uniform(-1, 1))))
        return paths

    if name in ("linear", "bounce", "fast", "shake", "crowd"):
        n, speed = {"linear": (4, (2, 5)), "bounce": (5, (4, 9)), "fast": (4, (11, 15)),
                    "shake": (4, (2, 5)), "crowd": (7, (2, 6))}[name]
        paths = random_paths(n, speed)
        if name == "shake":
            jitter = np.cumsum(rng.normal(0, 3.0, size=(frames, 2)), axis=0)
            jitter -= cv2.GaussianBlur(jitter, (1, 31), 8).reshape(jitter.shape)  # keep it centred
            shake = np.clip(jitter, -10, 10) * s
        return paths, shake
    if name == "curve":
        paths = []
        for colour, shape in draw_attributes(rng, 4):
            r = rng.uniform(25, 50)
            amp = rng.uniform([60, 40], [200, 140]) * s
            centre = rng.uniform(amp + r * s, size - amp - r * s)
            w, phase = rng.uniform(0.03, 0.07) * rng.choice([-1, 1]), rng.uniform(0, 2 * np.pi, 2)
            pos = centre + amp * np.stack([np.cos(w * t + phase[0]), np.sin(1.5 * w * t + phase[1])], 1)
            paths.append(Path(colour, shape, pos, still(r), spin(2.0)))
        return paths, shake
    if name == "scale":
        paths = random_paths(3, (1, 3))
        for p in paths:
            lo, hi = rng.uniform(18, 30), rng.uniform(60, 85)
            p.radius = s * (lo + (hi - lo) * (0.5 - 0.5 * np.cos(2 * np.pi * t / frames + rng.uniform(0, 3))))
            p.pos = np.clip(p.pos, p.radius[:, None], size - p.radius[:, None])
        return paths, shake
    if name == "rotation":
        paths = random_paths(4, (1, 4))
        for p in paths:
            p.angle = spin(rng.uniform(3, 8) * rng.choice([-1, 1]))
        return paths, shake
    if name == "occlusion":
        (c1, s1), (c2, s2), (c3, s3) = draw_attributes(rng, 3)
        y = rng.uniform(0.35, 0.65) * height
        x_occ = width / 2
        # The occluded object passes behind the occluder, offset so that most of it is hidden.
        behind = np.stack([np.linspace(0.12, 0.88, frames) * width, np.full(frames, y + 25 * s)], 1)
        front = np.tile([x_occ, y], (frames, 1)) + np.stack([np.zeros(frames), 8 * s * np.sin(t / 15)], 1)
        other = bounce(np.array([0.2 * width, 0.15 * height]), _velocity(rng, 3 * s), frames,
                       np.full(2, 30 * s), size - 30 * s)
        return [
            Path(c1, s1, behind, still(32), spin(1.0)),
            Path(c3, s3, other, still(28), spin(-1.0)),
            Path(c2, s2, front, still(62), spin(0.5)),
        ], shake
    if name == "crossing":
        (c1, shp), (c2, _), (c3, s3) = draw_attributes(rng, 3, same_shape_pair=True)
        y = rng.uniform(0.4, 0.6) * height
        a = np.stack([np.linspace(0.15, 0.85, frames) * width, y + 15 * s * np.sin(t / 10)], 1)
        b = np.stack([np.linspace(0.85, 0.15, frames) * width, y - 10 * s + 15 * s * np.cos(t / 12)], 1)
        other = bounce(np.array([0.5 * width, 0.15 * height]), _velocity(rng, 3 * s), frames,
                       np.full(2, 30 * s), np.array([width - 30 * s, 0.25 * height]))
        return [
            Path(c1, shp, a, still(38), spin(1.5)),
            Path(c2, shp, b, still(40), spin(-1.5)),
            Path(c3, s3, other, still(28), spin(1.0)),
        ], shake
    if name == "exit":
        paths = random_paths(2, (2, 4))
        used = {(p.colour, p.shape) for p in paths}
        colour, shape = next(a for a in draw_attributes(rng, 3) if a not in used)
        r = 35
        # Bounds far outside the frame on the right: it leaves, stays out a while and comes back.
        low = np.array([r * s, 0.3 * height])
        high = np.array([width + 2.5 * r * s, 0.7 * height])
        vx = 2 * (high[0] - 0.6 * width) / (0.8 * frames)  # out and back within 80% of the video
        pos = bounce(np.array([0.6 * width, 0.5 * height]), np.array([vx, 1.0 * s]), frames, low, high)
        return paths + [Path(colour, shape, pos, still(r), spin(2.0))], shake
    # showcase: the 10 s sample with every event at once.
    paths = []
    (ca, shp), (cb, _), (cc, sc), (cd, sd), (ce, se) = draw_attributes(rng, 5, same_shape_pair=True)
    y = 0.62 * height
    half = frames // 2
    ramp = np.clip((t - 0.1 * frames) / (0.6 * frames), 0, 1)
    paths.append(Path(ca, shp, np.stack([(0.12 + 0.76 * ramp) * width, y + 12 * s * np.sin(t / 9)], 1),
                      still(36), spin(1.2)))
    paths.append(Path(cb, shp, np.stack([(0.88 - 0.76 * ramp) * width, y - 8 * s + 10 * s * np.cos(t / 11)], 1),
                      still(38), spin(-1.0)))
    # Leaves on the right and comes back.
    ex = bounce(np.array([0.7 * width, 0.2 * height]), np.array([3.2 * s * 30 / max(frames / 10, 1), 0.4 * s]),
                frames, np.array([0.45 * width, 0.12 * height]), np.array([width + 90 * s, 0.3 * height]))
    paths.append(Path(cc, sc, ex, 30 * s + 15 * s * np.sin(2 * np.pi * t / frames), spin(3.0)))
    # Passes behind the big occluder, top left.
    occ_y = 0.25 * height
    behind = np.stack([0.05 * width + 0.4 * width * (0.5 - 0.5 * np.cos(2 * np.pi * t / half)),
                       np.full(frames, occ_y + 20 * s)], 1)
    paths.append(Path(cd, sd, behind, still(26), spin(-2.0)))
    paths.append(Path(ce, se, np.tile([0.25 * width, occ_y], (frames, 1)), still(58), spin(0.3)))
    return paths, shake


class _Camera:
    """Renders frame i of a scenario: the background (larger than the frame, for the shake) cut at the
    camera offset, and the objects moved by it."""

    def __init__(self, paths: list[Path], shake: np.ndarray, background, rng: np.random.Generator, kind: str,
                 width: int, height: int) -> None:
        self.paths, self.shake, self.rng, self.size = paths, shake, rng, (width, height)
        self.margin = int(np.ceil(np.abs(shake).max())) + 1
        self.canvas = background(rng, height + 2 * self.margin, width + 2 * self.margin, kind,
                                 scale_for(height, width))

    def frame(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        (width, height), m = self.size, self.margin
        sx, sy = self.shake[i]
        objects = [SceneObject(k + 1, p.colour, p.shape, (p.pos[i, 0] + sx, p.pos[i, 1] + sy), float(p.radius[i]),
                               float(p.angle[i])) for k, p in enumerate(self.paths)]
        dx, dy = np.round(self.shake[i]).astype(int)
        return render(self.canvas[m - dy: m - dy + height, m - dx: m - dx + width], objects, self.rng)


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
) -> dict:
    """Render one scenario video with ground truth and prompts (and, with ``depth``, depth images)
    into folder ``out``; returns the JSON of objects.json."""
    width, height = size
    frames = frames or (300 if scenario == "showcase" else 90)
    out = FsPath(out)
    (out / "gt").mkdir(parents=True, exist_ok=True)
    min_area = 300 * scale_for(height, width) ** 2
    for attempt in range(50):  # redraw until every object is clearly visible on the first frame
        rng = np.random.default_rng([seed, SCENARIOS.index(scenario), attempt])
        kind = background or str(rng.choice(BACKGROUNDS))
        paths, shake = build_scenario(scenario, rng, frames, width, height)
        camera = _Camera(paths, shake, make_background, rng, kind, width, height)
        image0, labels0 = camera.frame(0)
        if all((labels0 == k + 1).sum() >= min_area for k in range(len(paths))):
            break
    else:  # pragma: no cover - the scenarios are built to make this unreachable
        raise RuntimeError(f"could not place scenario {scenario!r} with seed {seed}")

    objects = []
    for k, p in enumerate(paths):
        mask = labels0 == k + 1
        objects.append({
            "id": k + 1, "colour": p.colour, "shape": p.shape,
            "prompts": {"point": list(_point_inside(mask)), "box": _box(mask), "text": f"the {p.colour} {p.shape}"},
        })
    meta = {"scenario": scenario, "seed": seed, "width": width, "height": height, "fps": fps,
            "frames": frames, "background": kind, "objects": objects,
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
