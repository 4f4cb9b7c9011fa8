"""Objects found again by their look: the keyframe's pixels under each object's mask (a masked colour
template, at reduced resolution), matched in a later frame around where its motion predicts it.

:meth:`Finder.find` moves a :class:`Template` to its best match (least squared colour difference,
refined to sub-pixel) and says what fraction of its pixels changed colour there:

1. its place, coarse to fine: searched over the whole window (``search`` pixels around the predicted
   place) at half the matching resolution, then within 2 pixels of the best there at the matching
   resolution (a quarter of the pixels and half the window: 0.18 ms per object against 0.47);
2. only when more than a few of its pixels changed there, its angle: the angles around the predicted
   one are compared where step 1 put it (a warp and a difference each, no search), and the best one
   is matched again within 2 pixels; only an object about to be given up on (more changed than a
   keyframe allows) is searched thoroughly, every angle matched within 2 pixels of a place found at
   the matching resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

Match = tuple[float, float, np.ndarray]  # (mean squared difference, fraction changed, offset x y)


@dataclass
class Template:
    """One object as the keyframe saw it, at matching resolution, and how it has moved since."""

    patch: np.ndarray  # (h, w, 3) uint8 colours around the object, with a margin for turning
    weight: np.ndarray  # (h, w) uint8 255 on the object's pixels
    corner: np.ndarray  # (2,) float x y of the patch in the keyframe
    centre: np.ndarray  # (2,) float x y the object turns about, in the patch
    pad: int  # margin around the object's box in the patch
    inner: np.ndarray  # (h, w) bool: the object's pixels off its edge (the ones compared for change)
    halved: tuple[np.ndarray, np.ndarray] | None  # unturned patch and weight at half resolution, if 8+ pixels
    offset: np.ndarray = field(default_factory=lambda: np.zeros(2))  # moved since the keyframe
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # per frame
    angle: float = 0.0  # degrees turned since the keyframe
    spin: float = 0.0  # degrees per frame

    @classmethod
    def cut(cls, small: np.ndarray, weight: np.ndarray, x: int, y: int) -> "Template | None":
        """The template of the object whose (h, w) uint8 ``weight`` (0/255) has its corner at (x, y) in
        ``small`` (the keyframe at matching resolution); None when it is too small to match (under 8
        pixels)."""
        bx, by, w, h = cv2.boundingRect(weight)
        if (weight > 0).sum() < 8:
            return None
        pad = int(np.ceil(0.21 * max(w, h)))  # a turned box stays inside
        x0, y0 = x + bx - pad, y + by - pad
        patch = _padded(small, x0, y0, w + 2 * pad, h + 2 * pad, cv2.BORDER_REPLICATE)
        weight = _padded(weight, bx - pad, by - pad, w + 2 * pad, h + 2 * pad, cv2.BORDER_CONSTANT)
        moments = cv2.moments(weight, binaryImage=True)
        centre = np.array([moments["m10"], moments["m01"]]) / moments["m00"]
        return cls(patch, weight, np.array([x0, y0], float), centre, pad, _inner(weight),  # _padded copies
                   _halved(patch[pad:pad + h, pad:pad + w], weight[pad:pad + h, pad:pad + w]))

    def turned(self, angle: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """(patch, weight, inner, inset) turned by ``angle`` degrees about the centre; unturned, without
        the margin kept for turning (``inset`` is how much was cut off each side)."""
        if abs(angle) <= 0.5:
            i = self.pad
            return self.patch[i:-i or None, i:-i or None], self.weight[i:-i or None, i:-i or None], \
                self.inner[i:-i or None, i:-i or None], i
        turn = turn_matrix(self.centre, angle)
        size = self.weight.shape[::-1]
        patch = cv2.warpAffine(self.patch, turn, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        weight = cv2.warpAffine(self.weight, turn, size, flags=cv2.INTER_NEAREST)
        return patch, weight, _inner(weight), 0


class Finder:
    """Finds templates again in later frames (matching resolution ``small``, and ``coarse``: ``small``
    at half its size), ``radius`` pixels around where they are predicted; ``give_up``: the fraction of
    changed pixels past which an object is searched thoroughly before it is given up on."""

    turn_when = 0.005  # other angles are tried when this fraction of the pixels changed at the predicted one
    turn_step = 4.0  # degrees between the angles tried
    max_turn = 16.0  # degrees from the predicted angle, at most
    tolerance = 40  # a pixel whose colour moved more than this (of 255, in any channel) has changed

    def __init__(self, radius: int, give_up: float) -> None:
        self.radius, self.give_up = max(2, radius), give_up

    def find(self, t: Template, small: np.ndarray, coarse: np.ndarray | None) -> float:
        """Move ``t`` to its best match in ``small`` near its predicted place and angle (searched in
        ``coarse`` first, unless None); returns the fraction of its pixels that changed."""
        guess = t.angle + t.spin
        found = self._match(t, small, guess, coarse=coarse)
        if found[1] > self.turn_when:
            near, step = found[2], self.turn_step
            at = np.floor(t.corner + near + 0.5).astype(int)  # the turning patch's corner there
            cost = {a: self._cost(t, small, a, at) for a in (guess - step, guess, guess + step)}
            best = min(cost, key=lambda a: cost[a])
            while best != guess and abs(best - guess) < self.max_turn:  # keep turning while it improves
                nxt = best + (step if best > guess else -step)
                cost[nxt] = self._cost(t, small, nxt, at)
                if cost[nxt] >= cost[best]:
                    break
                best = nxt
            if best - step in cost and best + step in cost:
                best += step * _vertex(np.array([cost[best - step], cost[best], cost[best + step]]))
            if best != guess:
                turned = self._match(t, small, best, near)
                if turned[0] < found[0]:
                    guess, found = best, turned
            if found[1] > self.give_up:  # about to be given up on: search harder
                start = t.angle + t.spin
                wide = self._match(t, small, start)  # the whole window at matching resolution
                angle, turned = self._turn(t, small, start, wide[2], {start: wide})
                if turned[0] < found[0]:
                    guess, found = angle, turned
        _, changed, offset = found
        t.velocity, t.offset = offset - t.offset, offset
        t.spin, t.angle = guess - t.angle, guess
        return changed

    def _turn(self, t: Template, small: np.ndarray, guess: float, near: np.ndarray,
              tried: dict[float, Match]) -> tuple[float, Match]:
        """The angle around ``guess`` where ``t`` matches best, each angle matched within 2 pixels of
        ``near`` (``tried``: those matched already), and its match."""
        step = self.turn_step
        for a in (guess - step, guess + step):
            tried[a] = self._match(t, small, a, near)
        best = min(tried, key=lambda a: tried[a][0])
        while abs(best - guess) < self.max_turn:  # keep turning while it improves
            nxt = best + (step if best > guess else -step)
            if nxt in tried:
                break
            tried[nxt] = self._match(t, small, nxt, near)
            if tried[nxt][0] >= tried[best][0]:
                break
            best = nxt
        if best - step in tried and best + step in tried:
            fine = best + step * _vertex(np.array([tried[best - step][0], tried[best][0], tried[best + step][0]]))
            tried[fine] = self._match(t, small, fine, near)
            if tried[fine][0] < tried[best][0]:
                best = fine
        return best, tried[best]

    def _cost(self, t: Template, small: np.ndarray, angle: float, at: np.ndarray) -> float:
        """Mean squared colour difference of ``t``'s patch turned by ``angle`` degrees, its corner at
        (x, y) ``at`` in ``small`` (inf where it runs out of the frame)."""
        x, y = int(at[0]), int(at[1])
        h, w = t.weight.shape
        if x < 0 or y < 0 or x + w > small.shape[1] or y + h > small.shape[0]:
            return np.inf
        patch, on = t.patch, t.weight > 0
        if abs(angle) > 0.5:
            turn = turn_matrix(t.centre, angle)
            patch = cv2.warpAffine(patch, turn, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            on = cv2.warpAffine(t.weight, turn, (w, h), flags=cv2.INTER_NEAREST) > 0
        d = small[y:y + h, x:x + w][on].astype(np.int32) - patch[on]
        return float((d * d).sum()) / max(int(on.sum()), 1)

    def _match(self, t: Template, small: np.ndarray, angle: float, near: np.ndarray | None = None,
               coarse: np.ndarray | None = None) -> Match:
        """(cost, changed, offset) of the best place for ``t`` turned by ``angle`` degrees: ``cost`` is
        the mean squared colour difference there, ``changed`` the fraction of the object's pixels
        whose colour differs. Searched within 2 pixels of ``near``, or over the window around the
        predicted place: in ``coarse`` first, when given, then within 2 pixels of the best there."""
        hs, ws = small.shape[:2]
        patch, weight, inner, inset = t.turned(angle)
        th, tw = weight.shape
        if near is None:
            radius, guess = self.radius, t.corner + inset + t.offset + t.velocity
            if coarse is not None and t.halved is not None and radius > 4:  # the unturned patch, halved
                unturned = t.corner + t.pad + t.offset + t.velocity
                guess, radius = _coarse(coarse, *t.halved, unturned, radius) - (t.pad - inset), 2
        else:
            radius, guess = 2, t.corner + inset + near
        x0, y0 = int(np.floor(guess[0])) - radius, int(np.floor(guess[1])) - radius
        wx0, wy0 = max(x0, 0), max(y0, 0)
        wx1, wy1 = min(x0 + tw + 2 * radius, ws), min(y0 + th + 2 * radius, hs)
        if wx1 - wx0 < tw or wy1 - wy0 < th:
            return np.inf, 1.0, t.offset if near is None else near  # (nearly) out of the frame
        cost = cv2.matchTemplate(small[wy0:wy1, wx0:wx1], patch, cv2.TM_SQDIFF, mask=weight)
        by, bx = divmod(int(cost.argmin()), cost.shape[1])
        best = float(cost[by, bx])
        sub = np.array([_vertex(cost[by, bx - 1:bx + 2]) if 0 < bx < cost.shape[1] - 1 else 0.0,
                        _vertex(cost[by - 1:by + 2, bx]) if 0 < by < cost.shape[0] - 1 else 0.0])
        offset = np.array([wx0 + bx, wy0 + by], float) + sub - t.corner - inset
        # Only the object's inner pixels are compared: its edge pixels blend with a background that
        # changes as it moves.
        found = small[wy0 + by: wy0 + by + th, wx0 + bx: wx0 + bx + tw]
        diff = np.abs(found[inner].astype(np.int16) - patch[inner]).max(axis=1)
        return best / max(int((weight > 0).sum()), 1), float(np.mean(diff > self.tolerance)), offset


def _halved(patch: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``patch`` and ``weight`` (0/255) at half their size (an odd last row or column left out); None
    when that is under 4 pixels across or leaves no pixel of the object."""
    h, w = patch.shape[0] // 2, patch.shape[1] // 2
    if h < 4 or w < 4:
        return None
    p = cv2.resize(patch[:2 * h, :2 * w], (w, h), interpolation=cv2.INTER_AREA)
    m = (cv2.resize(weight[:2 * h, :2 * w], (w, h), interpolation=cv2.INTER_AREA) > 127).view(np.uint8) * np.uint8(255)
    return (p, m) if m.any() else None


def _coarse(coarse: np.ndarray, patch: np.ndarray, weight: np.ndarray, guess: np.ndarray, radius: int) -> np.ndarray:
    """Where (x, y, at twice ``coarse``'s resolution) the halved ``patch`` matches best in ``coarse``
    within ``radius`` of ``guess`` (both at that resolution too): within a pixel or two of the best
    place at that resolution; ``guess`` itself when the window runs out of the frame."""
    th, tw = weight.shape
    r = -(-radius // 2) + 1
    x0, y0 = int(np.floor(guess[0] / 2)) - r, int(np.floor(guess[1] / 2)) - r
    hc, wc = coarse.shape[:2]
    wx0, wy0 = max(x0, 0), max(y0, 0)
    wx1, wy1 = min(x0 + tw + 2 * r, wc), min(y0 + th + 2 * r, hc)
    if wx1 - wx0 < tw or wy1 - wy0 < th:
        return guess
    cost = cv2.matchTemplate(coarse[wy0:wy1, wx0:wx1], patch, cv2.TM_SQDIFF, mask=weight)
    by, bx = divmod(int(cost.argmin()), cost.shape[1])
    return np.array([2 * (wx0 + bx), 2 * (wy0 + by)], float)


def turn_matrix(centre: np.ndarray, angle: float) -> np.ndarray:
    """2x3: turn by ``angle`` degrees (clockwise on the image) about (x, y) ``centre``, as
    ``cv2.getRotationMatrix2D(centre, -angle, 1)`` (computed here: an OpenCV call would let another
    thread take the interpreter lock, and the carry waits for it back up to 5 ms per call).

    >>> bool(np.allclose(turn_matrix(np.array([3.0, 4.0]), 30.0), cv2.getRotationMatrix2D((3.0, 4.0), -30.0, 1.0)))
    True
    """
    a = -angle * math.pi / 180
    c, s = math.cos(a), math.sin(a)
    x, y = float(centre[0]), float(centre[1])
    return np.array([[c, s, (1 - c) * x - s * y], [-s, c, s * x + (1 - c) * y]])


def _inner(weight: np.ndarray) -> np.ndarray:
    """(h, w) bool: the pixels of uint8 ``weight`` (0/255) that are on and off its edge (all that are
    on, where every one is on the edge)."""
    inner = cv2.erode(weight, np.ones((3, 3), np.uint8)) > 0
    return inner if inner.any() else weight > 0


def _padded(image: np.ndarray, x: int, y: int, w: int, h: int, border: int) -> np.ndarray:
    """The (h, w) region of ``image`` at (x, y), filled by ``border`` where it runs off the image."""
    ih, iw = image.shape[:2]
    x1, y1 = max(x, 0), max(y, 0)
    x2, y2 = min(x + w, iw), min(y + h, ih)
    return cv2.copyMakeBorder(image[y1:y2, x1:x2], y1 - y, y + h - y2, x1 - x, x + w - x2, border)


def _vertex(v: np.ndarray) -> float:
    """Sub-pixel position (-0.5..0.5) of the minimum of three costs around their middle one."""
    if not np.isfinite(v).all():
        return 0.0
    curvature = v[0] - 2 * v[1] + v[2]
    return float(np.clip(0.5 * (v[0] - v[2]) / curvature, -0.5, 0.5)) if curvature > 0 else 0.0
