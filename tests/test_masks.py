"""Masks as box crops (rtseg/masks.py) give exactly what the full-frame masks give: the dense masks,
the tracker's grid, the COCO RLE strings, the label map of the PNGs and the overlay."""

from __future__ import annotations

import numpy as np
import supervision as sv
from hypothesis import given, settings
from hypothesis import strategies as st

from rtseg.detections import downscale
from rtseg.masks import coco_rle, compact, crops, grid, label_map
from rtseg.output.render import Renderer, paint_masks

SETTINGS = settings(max_examples=150, derandomize=True, database=None, deadline=None)


@st.composite
def frame_masks(draw) -> np.ndarray:
    """(N, H, W) bool masks: random pixels, rectangles (touching the borders too), full and empty."""
    h, w, n = draw(st.integers(1, 37)), draw(st.integers(1, 37)), draw(st.integers(0, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    masks = np.zeros((n, h, w), bool)
    for i in range(n):
        kind = draw(st.sampled_from(["noise", "rect", "full", "empty"]))
        if kind == "noise":
            masks[i] = rng.random((h, w)) < draw(st.floats(0.05, 0.95))
        elif kind == "rect":
            y, x = rng.integers(0, h), rng.integers(0, w)
            masks[i, y:y + rng.integers(1, h + 1), x:x + rng.integers(1, w + 1)] = True
        elif kind == "full":
            masks[i] = True
    return masks


@SETTINGS
@given(frame_masks(), st.integers(1, 9))
def test_crops_give_what_the_full_masks_give(masks, factor):
    m = compact(masks)
    assert isinstance(m, sv.CompactMask) and m.shape == masks.shape
    assert np.array_equal(np.asarray(m), masks)
    assert np.array_equal(grid(m, factor), downscale(masks, factor))
    for i, (crop, x, y) in enumerate(crops(m)):
        if masks[i].any():  # cut to the mask's bounding box
            ys, xs = np.nonzero(masks[i])
            assert (x, y, *crop.shape) == (xs.min(), ys.min(), ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)
            assert coco_rle(crop, x, y, masks.shape[1:]) == sv.mask_to_rle(masks[i], compressed=True)
    ids = np.arange(1, len(masks) + 1) * 97  # wraps past 255, as ids do in the PNGs
    expected = np.zeros(masks.shape[1:], np.uint8)
    for i in np.argsort(-masks.sum(axis=(1, 2))):
        expected[masks[i]] = ids[i] % 256
    assert np.array_equal(label_map(m, ids), expected)


def test_a_crop_is_the_masks_bounding_box():
    masks = np.zeros((2, 1080, 1920), bool)
    masks[0, 100:180, 1500:1620] = True
    m = compact(masks)
    assert [c.shape for c, _, _ in crops(m)] == [(80, 120), (1, 1)]
    assert m.offsets[0].tolist() == [1500, 100] and m.area.tolist() == [80 * 120, 0]


@SETTINGS
@given(frame_masks(), st.sampled_from([0.5, 0.3, 0.77, 1.0]), st.integers(1, 40))
def test_the_overlay_is_supervisions_from_crops(masks, opacity, first_id):
    """rtseg's mask painting (from the crops) draws what sv.MaskAnnotator draws from the full masks."""
    h, w = masks.shape[1:]
    rng = np.random.default_rng(len(masks) * 1000 + h * w)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    xyxy = np.array([sv.mask_to_xyxy(m[None])[0] if m.any() else [0, 0, 0, 0] for m in masks], float).reshape(-1, 4)
    ids = np.arange(first_id, first_id + len(masks))
    dense = sv.Detections(xyxy=xyxy, mask=masks, tracker_id=ids)
    cropped = sv.Detections(xyxy=xyxy, mask=compact(masks), tracker_id=ids)
    expected = sv.MaskAnnotator(opacity=opacity, color_lookup=sv.ColorLookup.TRACK).annotate(image.copy(), dense)
    painted = image.copy()
    paint_masks(painted, cropped, sv.ColorPalette.DEFAULT, opacity)
    assert np.array_equal(painted, expected)
    renderer = Renderer()
    assert np.array_equal(renderer.annotate(image, dense), renderer.annotate(image, cropped))
