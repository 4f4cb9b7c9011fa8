"""A segment that two tracked objects claim: touching objects that the model merges into one
segment. Which objects claim a segment, and how its grid cells and its pixels are shared out
between them by their regions (each object's motion-predicted mask, or its own segment this frame).

An object claims a segment when most of its region lies inside the segment and outside every other
claimant's region: the segment has grown over it. An object hidden behind another does not claim the
occluder's segment (its predicted mask lies inside the occluder's own predicted mask, not outside it).

>>> seg = np.zeros((6, 10), bool); seg[1:5, 1:9] = True   # one segment over two touching objects
>>> regions = np.zeros((2, 6, 10), bool); regions[0, 1:5, 1:5] = True; regions[1, 1:5, 5:9] = True
>>> claimants(seg, regions).tolist()
[0, 1]
>>> share_cells(seg, regions)[2].tolist()
[-1, 0, 0, 0, 0, 1, 1, 1, 1, -1]
"""

from __future__ import annotations

import cv2
import numpy as np

from rtseg.masks import crops
from rtseg.track.state import SegmentFrame, Track

SHARE = 0.5  # a claimant has at least this fraction of its region in the segment, outside the other claimants'
COVER = 0.6  # the claimants' regions cover at least this fraction of the segment (not a background region)
RECENT = 5  # an object unmatched this frame claims only when seen this many frames ago at most


def claimants(segment: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """Indices (ascending) of the regions (K, h, w) bool that claim the (h, w) bool ``segment``: at
    least ``SHARE`` of each one's cells inside it and in no other claimant's region; empty unless two
    or more claim it."""
    inside = regions & segment
    area = np.maximum(regions.sum(axis=(1, 2)), 1)
    keep = np.nonzero(inside.sum(axis=(1, 2)) >= SHARE * area)[0]
    while len(keep) >= 2:
        alone = inside[keep] & (inside[keep].sum(axis=0) == 1)
        ok = alone.sum(axis=(1, 2)) >= SHARE * area[keep]
        if ok.all():
            return keep
        keep = keep[ok]
    return np.zeros(0, int)


def covered(segment: np.ndarray, regions: np.ndarray) -> bool:
    """Whether the regions (K, h, w) cover at least ``COVER`` of ``segment`` (h, w)."""
    return bool((segment & regions.any(axis=0)).sum() >= COVER * max(int(segment.sum()), 1))


def depths(regions: np.ndarray) -> np.ndarray:
    """(K, h, w) float32: each cell's distance outside region k minus its depth inside it (lower:
    more surely k's)."""
    out = np.zeros(regions.shape, np.float32)
    for k, r in enumerate(regions):
        u = r.astype(np.uint8)
        out[k] = cv2.distanceTransform(1 - u, cv2.DIST_L2, 3) - cv2.distanceTransform(u, cv2.DIST_L2, 3)
    return out


def share_cells(segment: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """(h, w) int: which region (0..K-1) each cell of ``segment`` goes to (the one it lies deepest
    in, or nearest to), -1 outside the segment."""
    return np.where(segment, np.argmin(depths(regions), axis=0), -1)


def share_pixels(crop: np.ndarray, x: int, y: int, factor: int, regions: np.ndarray) -> list[np.ndarray]:
    """The segment's frame-size mask ``crop`` (placed at ``x``, ``y``) shared out between the grid
    regions (K, h, w) of a grid ``factor`` times coarser: K bool crops of ``crop``'s shape, each
    pixel going where :func:`share_cells` sends it, with the depths interpolated between cells."""
    hc, wc = crop.shape
    if crop.size == 0:
        return [crop.copy() for _ in regions]
    gx = ((x + np.arange(wc, dtype=np.float32) + 0.5) / factor - 0.5)[None, :].repeat(hc, 0)
    gy = ((y + np.arange(hc, dtype=np.float32) + 0.5) / factor - 0.5)[:, None].repeat(wc, 1)
    at = np.stack([cv2.remap(d, gx, gy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) for d in depths(regions)])
    best = np.argmin(at, axis=0)
    return [crop & (best == k) for k in range(len(regions))]


def share_unions(frame: SegmentFrame, live: list[Track], predicted: np.ndarray, claims: dict[int, Track],
             now: int, factor: int) -> dict[int, Track]:
    """``claims`` (segment -> track) with each segment that two or more prompted objects claim
    (touching objects merged into one segment) shared out between them: the objects it holds or
    that are unmatched get their parts as segments of their own (added to ``frame``); one matched to
    a segment of its own this frame keeps it, and only takes its place (its segment) out of the
    shared one. ``now``: the tracker's frame count; ``factor``: how much coarser its grid is."""
    held = {id(t): c for c, t in claims.items()}
    objs = [k for k, t in enumerate(live) if t.prompt is not None
            and (id(t) in held or now - t.seen <= RECENT)]
    if len(objs) < 2:
        return claims
    n = len(frame.small)
    regions = np.stack([frame.small[held[id(live[k])]] if id(live[k]) in held else predicted[k] for k in objs])
    on = regions.reshape(len(objs), -1).any(axis=0)  # the cells of any object's region
    inside = regions.reshape(len(objs), -1)[:, on].astype(np.float32) @ \
        frame.small.reshape(n, -1)[:, on].T.astype(np.float32)  # (objects, segments) cells in common
    area = np.maximum(regions.sum(axis=(1, 2)), 1)[:, None]
    for c in np.nonzero((inside >= SHARE * area).sum(axis=0) >= 2)[0].tolist():
        owner = claims.get(c)
        here = regions.copy()  # the track holding segment c is where it was predicted to be
        for j, k in enumerate(objs):
            if live[k] is owner:
                here[j] = predicted[k]
        if not covered(frame.small[c], here):  # a region around the objects, not their union
            continue
        who = claimants(frame.small[c], here)
        tracks = [live[objs[j]] for j in who]
        gain = [j for j, t in zip(who, tracks) if t is owner or id(t) not in held]
        if not gain or (owner is not None and owner.prompt is not None and all(t is not owner for t in tracks)) \
                or not covered(frame.small[c], here[who]):
            continue
        cells = share_cells(frame.small[c], here[who])
        crop, x, y = crops(frame.compact(np.array([c])))[0]
        pixels = share_pixels(crop, x, y, factor, here[who])
        if owner is not None and owner.prompt is not None:
            del claims[c]
        for i, (j, t) in enumerate(zip(who, tracks)):
            if j in gain and (cells == i).any() and pixels[i].any():
                part = frame.add_part(c, cells == i, (pixels[i], x, y))
                claims[part], held[id(t)] = t, part
                regions[j] = frame.small[part]
    return claims
