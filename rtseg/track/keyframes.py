"""Carry tracked masks between keyframes by their motion: the CPU real-time mode.

On a keyframe the segmenter runs and the tracker associates; on the frames between, each reported
object is found again by matching its keyframe appearance (:mod:`rtseg.track.templates`: the pixels
under its mask, at reduced resolution, searched coarse to fine around where its motion predicts it,
turned when it turns), and the keyframe mask moves with it. Masks stay box crops throughout (the
keyframe's crops in, the carried crops out, as a CompactMask): a carried object costs its box, not
the frame. Dense optical flow was measured first and lost: on flat-coloured objects it recovered a
one-frame move at J 0.90-0.93 (identity 0.87), the masked template 0.93 (upper bound for a pure
translation: 0.94).

A carried mask that stops fitting asks for a keyframe now:

- more than ``max_changed`` of the pixels under it no longer have the keyframe object's colours
  (it turned further than searched, grew, or something covers it), or
- it runs out of the frame (an object leaving or entering is segmented, not extrapolated).

>>> KeyframeConfig(every=4).every
4
"""

from __future__ import annotations

import cv2
import numpy as np
import supervision as sv

from rtseg.config import KeyframeConfig
from rtseg.masks import Crop, compact, crops, from_crops
from rtseg.track.templates import Finder, Template, turn_matrix


class MaskCarrier:
    """Moves a keyframe's masks along with their objects until they stop fitting.

    ``start(image, masks)`` on a keyframe; ``step(image)`` on each following frame returns the
    carried masks (a CompactMask, N masks of the frame) and whether every one of them still fits.

    >>> image = np.zeros((64, 64, 3), np.uint8); image[10:30, 10:30] = (0, 0, 255)
    >>> carrier = MaskCarrier(KeyframeConfig(every=4, scale=1.0))
    >>> carrier.start(image, (image[..., 2] > 0)[None])
    >>> moved = np.roll(image, (3, 5), axis=(0, 1))
    >>> masks, fits = carrier.step(moved)
    >>> fits, np.argwhere(masks[0]).min(axis=0).tolist()
    (True, [13, 15])
    """

    def __init__(self, config: KeyframeConfig = KeyframeConfig()) -> None:
        self.config = config
        self.finder = Finder(int(round(config.search * config.scale)), config.max_changed)
        self.templates: list[Template | None] = []
        self.keys: list[Crop] = []  # the keyframe's masks: uint8 (0/255) box crops and their corners
        self.areas: list[int] = []

    def _small(self, image: np.ndarray) -> np.ndarray:
        s = self.config.scale
        return image if s == 1 else cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)

    def start(self, image: np.ndarray, masks: np.ndarray | sv.CompactMask) -> None:
        """A keyframe: BGR ``image`` (H, W, 3) and the reported masks ((N, H, W) bool, or a CompactMask)."""
        small = self._small(image)
        self.keys = [(c.view(np.uint8) * np.uint8(255), x, y) for c, x, y in crops(compact(masks))]
        self.areas = [int(np.count_nonzero(c)) for c, _, _ in self.keys]
        self.templates = [Template.cut(small, *_covered(c, x, y, image.shape[:2], small.shape[:2]))
                          for c, x, y in self.keys]

    def step(self, image: np.ndarray) -> tuple[sv.CompactMask, bool]:
        """The masks carried to BGR ``image``, and whether they all still fit (it stops at the first
        that does not, whose mask and the ones after it are left empty: the frame will be segmented)."""
        cfg = self.config
        small = self._small(image)
        hs, ws = small.shape[:2]
        coarse = cv2.resize(small, (ws // 2, hs // 2), interpolation=cv2.INTER_AREA) if min(hs, ws) >= 2 else None
        h, w = image.shape[:2]
        to_full = np.diag([w / ws, h / hs, 1.0])
        out: list[Crop] = [(np.zeros((0, 0), bool), 0, 0)] * len(self.keys)
        fits = True
        for i, t in enumerate(self.templates):
            if t is None or self.finder.find(t, small, coarse) > cfg.max_changed:
                fits = False
                break
            out[i] = _warp_crop(*self.keys[i], to_full @ _motion(t) @ np.linalg.inv(to_full), (h, w))
            if np.count_nonzero(out[i][0]) < cfg.min_inside * self.areas[i]:
                fits = False
                break
        return from_crops([c for c, _, _ in out], [(x, y) for _, x, y in out], (h, w)), fits


def _covered(crop: np.ndarray, x: int, y: int, shape: tuple[int, int], small: tuple[int, int]) -> Crop:
    """The uint8 (0/255) ``crop`` at (x, y) in a frame of ``shape`` (H, W), at the matching resolution
    (a frame of ``small``), and its corner there: the pixels an area-resize leaves above 0. Edge pixels
    (blended with the background when scaled) are kept: they place the object. Where the frame is a
    whole number of times the matching resolution, only the crop's blocks are resized."""
    k = shape[0] // small[0]
    if k == 1 and small == shape:
        return crop, x, y
    if k > 1 and small[0] * k == shape[0] and small[1] * k == shape[1]:
        x0, y0 = x - x % k, y - y % k
        cw, ch = -(-(x + crop.shape[1] - x0) // k), -(-(y + crop.shape[0] - y0) // k)
        region = np.zeros((ch * k, cw * k), np.uint8)
        region[y - y0:y - y0 + crop.shape[0], x - x0:x - x0 + crop.shape[1]] = crop
        covered = cv2.resize(region, (cw, ch), interpolation=cv2.INTER_AREA) > 0
        return covered.view(np.uint8) * np.uint8(255), x0 // k, y0 // k
    full = np.zeros(shape, np.uint8)
    full[y:y + crop.shape[0], x:x + crop.shape[1]] = crop
    covered = cv2.resize(full, small[::-1], interpolation=cv2.INTER_AREA) > 0
    return covered.view(np.uint8) * np.uint8(255), 0, 0


def _motion(t: Template) -> np.ndarray:
    """3x3: keyframe pixels -> now (matching resolution): turned about the object's centre, moved."""
    pivot = t.corner + t.centre
    turn = np.vstack([turn_matrix(pivot, t.angle), [0, 0, 1]])
    move = np.array([[1, 0, t.offset[0]], [0, 1, t.offset[1]], [0, 0, 1.0]])
    return move @ turn


def _warp_crop(mask: np.ndarray, x: int, y: int, move: np.ndarray, shape: tuple[int, int]) -> Crop:
    """uint8 ``mask`` (0/255, its corner at (x, y)) moved by 3x3 ``move``: the bool crop of the region
    of the (H, W) = ``shape`` frame that its box lands on, and that region's corner."""
    bh, bw = mask.shape
    corners = np.array([[x, y, 1], [x + bw, y, 1], [x, y + bh, 1], [x + bw, y + bh, 1]], float) @ move[:2].T
    h, w = shape
    x0, y0 = (max(int(np.floor(v)) - 1, 0) for v in corners.min(axis=0))
    x1, y1 = min(int(np.ceil(corners[:, 0].max())) + 2, w), min(int(np.ceil(corners[:, 1].max())) + 2, h)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((0, 0), bool), min(x0, w - 1), min(y0, h - 1)
    shifted = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1.0]]) @ move @ np.array([[1, 0, x], [0, 1, y], [0, 0, 1.0]])
    return cv2.warpAffine(mask, shifted[:2], (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR) > 127, x0, y0
