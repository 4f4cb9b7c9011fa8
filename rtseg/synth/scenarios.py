"""Scenarios of the shapes world: how each object of a synthetic video moves, frame by frame.

A scenario builds one :class:`Path` per object (position, radius and angle per frame, list order
back to front) and a camera-shake offset per frame; :mod:`rtseg.synth.video` renders them. The
``lone`` and ``pair`` scenarios are the sweep's (tests/test_sweep.py): one object of a chosen colour
in a straight line, alone or beside another object of the same colour. ``concept`` is the concept
prompt's (``--concept``): instances of one kind crossing the frame among look-alikes.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from rtseg.synth.world import SHAPES, draw_attributes, scale_for

SCENARIOS = (
    "linear", "bounce", "curve", "occlusion", "crossing", "exit", "scale", "rotation", "shake", "fast",
    "showcase", "crowd", "lone", "pair", "concept",
)
# Colours that look alike (the concept scenario's distractors take the instances' shape in one of these).
NEAR_COLOURS = {"red": ("orange", "purple"), "orange": ("red", "yellow"), "yellow": ("orange", "white"),
                "green": ("yellow", "blue"), "blue": ("purple", "green"), "purple": ("blue", "red"),
                "white": ("yellow", "black"), "black": ("purple", "blue")}


@dataclass
class Path:
    """The trajectory of one object over T frames."""

    colour: str
    shape: str
    pos: np.ndarray  # (T, 2) float, x y
    radius: np.ndarray  # (T,)
    angle: np.ndarray  # (T,) degrees
    truth: bool = True  # in the ground truth (False: a distractor, drawn but labelled background)


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


def straight(rng: np.random.Generator, margin: float, speed: float, frames: int, size: np.ndarray) -> np.ndarray:
    """Positions (T, 2) in a straight line at ``speed`` px/frame (slower where the frame is too small
    for the whole line), every one at least ``margin`` from the frame's edges.

    >>> pos = straight(np.random.default_rng(0), 40.0, 6.0, 30, np.array([640.0, 480.0]))
    >>> bool((pos >= 40).all() and (pos <= [600, 440]).all()), round(float(np.hypot(*(pos[1] - pos[0]))), 3)
    (True, 6.0)
    """
    v = _velocity(rng, speed)
    room = np.maximum(size - 2 * margin, 0.0)  # none: the frame is smaller than the object, which is centred
    v *= min(1.0, float(np.min(room / np.maximum(np.abs(v) * max(frames - 1, 1), 1e-9))))
    travel = v * (frames - 1)
    low = np.where(room > 0, margin + np.maximum(0, -travel), size / 2)
    # a line that takes all the room leaves none to draw its start from (high - low rounds to -1e-14),
    # so the start is drawn as numpy's uniform would draw it, from a span that is never negative
    span = np.maximum(room - np.abs(travel), 0.0)
    return low + span * rng.uniform(size=2) + np.arange(frames)[:, None] * v


def sweep_paths(rng: np.random.Generator, frames: int, size: np.ndarray, s: float, colour: str | None,
                beside: bool) -> list[Path]:
    """The sweep's scene: object 1 of ``colour`` (random when None) in a straight line at 2-12 px/frame,
    and with ``beside`` object 2 of the same colour and another shape moving with it, 0-12 px from it
    (between their circumscribed circles: circles would touch). Radii 25-55 px, as the other scenarios
    draw them (640x480 units)."""
    (c1, s1), (_, s2) = draw_attributes(rng, 2)
    while s2 == s1:
        s2 = str(rng.choice(SHAPES))
    c1 = colour or c1
    r1, r2, gap = rng.uniform(25, 55), rng.uniform(25, 55), rng.uniform(0, 12)
    margin = (r1 + (2 * r2 + gap if beside else 0)) * s  # the pair spans r1 + 2 r2 + gap from object 1
    pos = straight(rng, margin, rng.uniform(2, 12) * s, frames, size)
    paths = [Path(c1, s1, pos, np.full(frames, r1 * s), rng.uniform(0, 360) + rng.uniform(-1, 1) * np.arange(frames))]
    if beside:
        v = pos[-1] - pos[0]
        normal = np.array([-v[1], v[0]]) / max(float(np.hypot(*v)), 1e-9) if np.any(v) else np.array([0.0, 1.0])
        paths.append(Path(c1, s2, pos + rng.choice([-1, 1]) * normal * (r1 + r2 + gap) * s, np.full(frames, r2 * s),
                          rng.uniform(0, 360) + rng.uniform(-1, 1) * np.arange(frames)))
    return paths


def concept_paths(rng: np.random.Generator, frames: int, size: np.ndarray, s: float, colour: str | None,
                  instances: int = 8, distractors: int = 8) -> list[Path]:
    """The concept scene: ``instances`` objects of one kind (``colour`` or a random one) crossing the
    frame in straight lines, a third of them in view from the start, the others entering one by one
    over the first 70% of the video and each leaving at the far side; among them ``distractors``
    bouncing in the frame throughout, half the instances' colour in another shape, half their shape
    in a colour that looks alike (:data:`NEAR_COLOURS`). Back to front in random order."""
    from rtseg.synth.world import COLOURS, SHAPES

    kind = (colour or str(rng.choice(COLOURS)), str(rng.choice(SHAPES)))
    others = [x for x in SHAPES if x != kind[1]]
    looks = [(kind[0], str(rng.choice(others))) if k % 2 == 0 else (str(rng.choice(NEAR_COLOURS[kind[0]])), kind[1])
             for k in range(distractors)]
    t = np.arange(frames, dtype=float)
    paths = []
    def out_of_frame(p: np.ndarray, d: np.ndarray, r: float) -> float:
        """How far from ``p`` along ``d`` an object of radius ``r`` is out of the frame."""
        with np.errstate(divide="ignore", invalid="ignore"):
            steps = np.where(d > 1e-9, (size + r - p) / d, np.where(d < -1e-9, (-r - p) / d, np.inf))
        return float(np.min(steps))

    for k in range(instances):
        r = rng.uniform(20, 30) * s
        a = rng.uniform(0, 2 * np.pi)  # the direction it crosses in, on a line through a point of the frame
        d, through = np.array([np.cos(a), np.sin(a)]), rng.uniform(0.1, 0.9, 2) * size
        back, ahead = out_of_frame(through, -d, r), out_of_frame(through, d, r)
        speed = rng.uniform(3, 6) * s
        span = (back + ahead) / speed  # frames from entering to leaving
        start = -rng.uniform(0.2, 0.6) * span if k < instances // 3 else (k - instances // 3) * 0.7 * frames / max(
            instances - instances // 3, 1) + rng.uniform(0, 10)
        pos = through + d * (-back + speed * (t - start))[:, None]
        paths.append(Path(*kind, pos, np.full(frames, r), rng.uniform(0, 360) + rng.uniform(-2, 2) * t))
    for c, shape in looks:
        r = rng.uniform(20, 30) * s
        lo, hi = np.full(2, r), size - r
        pos = bounce(rng.uniform(lo, hi), _velocity(rng, rng.uniform(1, 4) * s), frames, lo, hi)
        paths.append(Path(c, shape, pos, np.full(frames, r), rng.uniform(0, 360) + rng.uniform(-2, 2) * t, truth=False))
    order = rng.permutation(len(paths))
    return [paths[k] for k in order]


def build_scenario(
    name: str, rng: np.random.Generator, frames: int, width: int, height: int, colour: str | None = None
) -> tuple[list[Path], np.ndarray]:
    """Object paths (back to front) and a (T, 2) camera offset for scenario ``name``; ``colour`` is
    object 1's in the ``lone`` and ``pair`` scenarios."""
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

    if name == "concept":
        return concept_paths(rng, frames, size, s, colour), shake
    if name in ("lone", "pair"):
        return sweep_paths(rng, frames, size, s, colour, beside=name == "pair"), shake
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
