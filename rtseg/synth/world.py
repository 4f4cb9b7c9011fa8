"""The shapes world: named colours, shapes, backgrounds and a renderer (see shared/shapes-domain.md).

Everything is drawn in BGR (OpenCV's order), deterministically from a ``numpy.random.Generator``.
For depth, each object is a fronto-parallel plane at its own distance and the background a plane
behind them all, seen by a pinhole camera (:func:`intrinsics`, :func:`plane_distances`,
:func:`depth_image`, :func:`visible_centroids`).

>>> rng = np.random.default_rng(0)
>>> bg = make_background(rng, 48, 64, "checker")
>>> objs = [SceneObject(1, "red", "circle", (32.0, 24.0), 10.0, 0.0)]
>>> frame, labels = render(bg, objs, rng)
>>> frame.shape, labels.dtype.name, int(labels[24, 32])
((48, 64, 3), 'uint8', 1)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import cv2
import numpy as np

COLOURS_RGB: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (40, 170, 60),
    "blue": (30, 70, 220),
    "yellow": (240, 220, 40),
    "orange": (245, 140, 20),
    "purple": (140, 50, 180),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
COLOURS = tuple(COLOURS_RGB)
Shape = Literal["circle", "square", "triangle", "star", "hexagon", "cross"]
SHAPES: tuple[str, ...] = get_args(Shape)
BackgroundKind = Literal["gradient", "stripes", "checker", "noise", "clutter"]
BACKGROUNDS: tuple[str, ...] = get_args(BackgroundKind)

# The domain sizes are radii in a 640x480 frame; other frame sizes scale them.
MIN_RADIUS, MAX_RADIUS = 15.0, 90.0


@dataclass(frozen=True)
class SceneObject:
    """One named object at one instant. ``centre`` is (x, y) in pixels, ``angle`` in degrees."""

    id: int
    colour: str
    shape: str
    centre: tuple[float, float]
    radius: float
    angle: float

    @property
    def text(self) -> str:
        return f"the {self.colour} {self.shape}"


def shape_polygon(shape: str, centre: tuple[float, float], radius: float, angle: float) -> np.ndarray:
    """Vertices (N, 2) float32 of ``shape`` with circumradius ``radius``, rotated by ``angle`` degrees.

    >>> shape_polygon("square", (0, 0), 1.0, 0.0).shape
    (4, 2)
    """
    if shape == "circle":
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        r = np.ones_like(t)
    elif shape in ("square", "triangle", "hexagon"):
        n = {"square": 4, "triangle": 3, "hexagon": 6}[shape]
        t = np.linspace(0, 2 * np.pi, n, endpoint=False) - np.pi / 2
        r = np.ones_like(t)
    elif shape == "star":
        t = np.linspace(0, 2 * np.pi, 10, endpoint=False) - np.pi / 2
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
    elif shape == "cross":
        w = 0.33  # half-width of an arm; the arms reach `radius` from the centre
        pts = np.array(
            [(w, 1), (w, w), (1, w), (1, -w), (w, -w), (w, -1), (-w, -1), (-w, -w), (-1, -w), (-1, w),
             (-w, w), (-w, 1)],
            dtype=np.float64,
        )
        t = np.arctan2(pts[:, 1], pts[:, 0])
        r = np.hypot(pts[:, 0], pts[:, 1])
    else:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")
    a = t + np.deg2rad(angle)
    xy = np.stack([np.cos(a) * r, np.sin(a) * r], axis=1) * radius + np.asarray(centre, dtype=np.float64)
    return xy.astype(np.float32)


def shape_mask(obj: SceneObject, height: int, width: int) -> np.ndarray:
    """Full (H, W) bool mask of ``obj`` (occlusion not applied)."""
    mask = np.zeros((height, width), dtype=bool)
    y, x, inside = shape_crop(obj, height, width)
    mask[y, x] = inside
    return mask


def shape_crop(obj: SceneObject, height: int, width: int) -> tuple[slice, slice, np.ndarray]:
    """``(rows, cols, mask)``: the bool mask of ``obj`` in the part of an (H, W) frame around it
    (``frame[rows, cols]``; empty when the shape is outside the frame). The same pixels as
    :func:`shape_mask` at the cost of the object's size, not the frame's.

    >>> obj = SceneObject(1, "red", "circle", (100.0, 50.0), 10.0, 0.0)
    >>> rows, cols, m = shape_crop(obj, 480, 640)
    >>> full = shape_mask(obj, 480, 640)
    >>> m.shape, bool((full[rows, cols] == m).all()), int(full.sum()) == int(m.sum())
    ((23, 23), True, True)
    """
    poly = np.round(shape_polygon(obj.shape, obj.centre, obj.radius, obj.angle) * 16).astype(np.int32)
    lo, hi = poly.min(0) // 16 - 1, poly.max(0) // 16 + 2  # whole pixels, one to spare on each side
    x0, x1 = int(np.clip(lo[0], 0, width)), int(np.clip(hi[0], 0, width))
    y0, y1 = int(np.clip(lo[1], 0, height)), int(np.clip(hi[1], 0, height))
    mask = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    if mask.size:  # moved by whole pixels (16 in 1/16 px), so filled like the full frame
        cv2.fillPoly(mask, [poly - np.array([16 * x0, 16 * y0], np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return slice(y0, y1), slice(x0, x1), mask.astype(bool)


def _grey_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two low-saturation BGR colours (float) kept in [55, 195] so white and black stand out."""
    base = rng.uniform(70, 180)
    tint = rng.uniform(-10, 10, size=3)
    a = np.clip(base + tint, 55, 195)
    b = np.clip(base + rng.choice([-1, 1]) * rng.uniform(18, 40) + tint, 55, 195)
    return a, b


def make_background(
    rng: np.random.Generator, height: int, width: int, kind: str | None = None, scale: float = 1.0
) -> np.ndarray:
    """A (H, W, 3) uint8 low-saturation textured background of the given kind (random when None).

    Stripe periods, checker cells and the grain of the noise are drawn for a 640x480 frame and
    multiplied by ``scale`` (a video passes :func:`scale_for` of its frame, so a 1920x1080 frame shows
    the texture of a 640x480 one, 2.25 times as large, as its objects are); clutter blobs follow the
    canvas size.
    """
    kind = kind or str(rng.choice(BACKGROUNDS))
    a, b = _grey_pair(rng)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    theta = rng.uniform(0, np.pi)
    u = x * np.cos(theta) + y * np.sin(theta)
    if kind == "gradient":
        t = (u - u.min()) / max(float(np.ptp(u)), 1.0)
    elif kind == "stripes":
        period = rng.uniform(12, 60) * scale
        t = (np.sin(2 * np.pi * u / period) > 0).astype(np.float32) if rng.random() < 0.5 else (
            0.5 + 0.5 * np.sin(2 * np.pi * u / period))
    elif kind == "checker":
        cell = rng.uniform(14, 64) * scale
        v = -x * np.sin(theta) + y * np.cos(theta)
        t = ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float32)
    elif kind == "noise":
        grain = 40 * scale
        grid = rng.random((max(2, int(height // grain)), max(2, int(width // grain)))).astype(np.float32)
        t = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        t = np.clip(t, 0, 1)
    elif kind == "clutter":
        t = np.zeros((height, width), np.float32)
    else:
        raise ValueError(f"unknown background {kind!r}; expected one of {BACKGROUNDS}")
    img = a[None, None, :] * (1 - t[..., None]) + b[None, None, :] * t[..., None]
    if kind == "clutter":
        scale = min(width / 640, height / 480)
        for _ in range(int(rng.integers(6, 20))):
            grey = np.clip(rng.uniform(60, 190) + rng.uniform(-6, 6, 3), 55, 195)
            centre = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
            axes = (int(rng.uniform(8, 60) * scale) + 1, int(rng.uniform(8, 60) * scale) + 1)
            cv2.ellipse(img, centre, axes, float(rng.uniform(0, 180)), 0, 360, grey.tolist(), -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def render(
    background: np.ndarray,
    objects: list[SceneObject],
    rng: np.random.Generator,
    noise: float = 4.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``objects`` (back to front) on ``background``.

    Returns the BGR frame (H, W, 3) uint8 and the label map (H, W) uint8 of visible pixels, where a
    pixel holds the id of the front-most object covering it (0 = background).
    """
    height, width = background.shape[:2]
    frame: np.ndarray = background.astype(np.float32)
    labels = np.zeros((height, width), dtype=np.uint8)
    for obj in objects:
        rows, cols, mask = shape_crop(obj, height, width)
        if not mask.any():
            continue
        ys, xs = np.nonzero(mask)
        ys, xs = ys + rows.start, xs + cols.start  # in the frame, in the same (row-major) order
        r, g, b = COLOURS_RGB[obj.colour]
        colour = np.array([b, g, r], dtype=np.float32)
        # Smooth shading across the object: a linear ramp of +-15 levels in a random direction.
        phi = rng.uniform(0, 2 * np.pi)
        ramp = ((xs - obj.centre[0]) * np.cos(phi) + (ys - obj.centre[1]) * np.sin(phi)) / max(obj.radius, 1)
        shade = 15.0 * ramp[:, None] + rng.normal(0, 5.0, size=(len(xs), 3))
        frame[ys, xs] = colour[None, :] + shade
        labels[ys, xs] = obj.id
    frame = cv2.GaussianBlur(frame, (3, 3), 0.6)
    if noise > 0:
        frame += rng.normal(0, noise, size=frame.shape).astype(np.float32)
    return np.clip(frame, 0, 255).astype(np.uint8), labels


def scale_for(height: int, width: int) -> float:
    """Size factor of a frame relative to the domain's 640x480 reference."""
    return min(width / 640.0, height / 480.0)


def draw_attributes(rng: np.random.Generator, n: int, same_shape_pair: bool = False) -> list[tuple[str, str]]:
    """``n`` distinct (colour, shape) pairs; with ``same_shape_pair`` the first two share their shape."""
    pairs: list[tuple[str, str]] = []
    while len(pairs) < n:
        colour, shape = str(rng.choice(COLOURS)), str(rng.choice(SHAPES))
        if same_shape_pair and len(pairs) == 1:
            shape = pairs[0][1]
        if (colour, shape) not in pairs:
            pairs.append((colour, shape))
    return pairs


# Depth, in metres: objects between NEAR and FAR, each in its own band (back to front), the background
# plane behind them all; per-pixel noise of DEPTH_NOISE * z**2 (a stereo camera's error grows with the
# square of the distance) and a fraction DEPTH_HOLES of pixels with no depth (0), as a depth camera gives.
NEAR, FAR, BACKGROUND_DEPTH = 0.8, 3.0, 3.5
DEPTH_NOISE, DEPTH_HOLES = 0.0015, 0.02


def intrinsics(width: int, height: int) -> dict[str, float]:
    """The shapes world's pinhole camera: f = 600 px at 640x480 (scaled with the frame), the principal
    point at the centre, depth in millimetres. Keys as in :class:`~rtseg.config.CameraConfig`.

    >>> intrinsics(640, 480)
    {'fx': 600.0, 'fy': 600.0, 'cx': 319.5, 'cy': 239.5, 'depth_scale': 0.001}
    """
    f = 600.0 * scale_for(height, width)
    return {"fx": f, "fy": f, "cx": (width - 1) / 2, "cy": (height - 1) / 2, "depth_scale": 0.001}


def plane_distances(radii: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """(K, T) metres: the distance of each of K objects (back to front, drawn ``radii`` (T,) pixels)
    per frame. Each stays in its own band between NEAR and FAR, so the drawing order is the depth
    order, and comes nearer as it is drawn larger (as 1/radius, compressed to fit its band).

    >>> d = plane_distances([np.full(3, 20.0), np.array([20.0, 40.0, 80.0])], np.random.default_rng(0))
    >>> bool(d[0, 0] > d[1, 0] > d[1, 1] > d[1, 2]), bool(d[0, 0] == d[0, 2])
    (True, True)
    """
    band = (FAR - NEAR) / len(radii)
    out = np.empty((len(radii), len(radii[0])))
    for k, r in enumerate(radii):
        centre = FAR - (k + 0.5) * band + rng.uniform(-0.15, 0.15) * band
        size = np.log(r) - np.log(r).mean()  # log of the size relative to its geometric mean
        reach = float(np.abs(size).max())
        power = min(1.0, np.log1p(0.3 * band / centre) / reach) if reach > 0 else 1.0
        out[k] = centre * np.exp(-power * size)
    return out


def depth_image(labels: np.ndarray, distances: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(H, W) uint16 millimetres seen through the label map (H, W) uint8 (pixel = object id, 0 =
    background) with objects 1..K at ``distances`` (K,) metres, with noise and holes from ``rng``."""
    z = np.concatenate([[BACKGROUND_DEPTH], distances])[labels]
    z = z + rng.normal(0.0, 1.0, z.shape) * DEPTH_NOISE * z ** 2
    z[rng.random(z.shape) < DEPTH_HOLES] = 0.0
    return np.clip(np.round(z * 1000), 0, 65535).astype(np.uint16)


def visible_centroids(labels: np.ndarray, distances: np.ndarray, camera: dict[str, float]
                      ) -> dict[str, list[float]]:
    """The true 3D centroid (x, y, z) metres of each visible object's visible pixels, by id (as a
    string), for the label map (H, W) uint8 and ``distances`` (K,) metres of objects 1..K.

    >>> labels = np.zeros((480, 640), np.uint8); labels[230:250, 300:340] = 2
    >>> visible_centroids(labels, np.array([2.0, 1.5]), intrinsics(640, 480))
    {'2': [0.0, 0.0, 1.5]}
    """
    height, width = labels.shape
    ids = labels.ravel()
    count = np.bincount(ids, minlength=len(distances) + 1)
    u = np.bincount(ids, np.tile(np.arange(width, dtype=float), height), len(distances) + 1)
    v = np.bincount(ids, np.repeat(np.arange(height, dtype=float), width), len(distances) + 1)
    out = {}
    for k in np.flatnonzero(count[1:]) + 1:
        z = float(distances[k - 1])
        x = float(u[k] / count[k] - camera["cx"]) * z / camera["fx"]
        y = float(v[k] / count[k] - camera["cy"]) * z / camera["fy"]
        out[str(k)] = [round(x, 5), round(y, 5), round(z, 5)]
    return out
