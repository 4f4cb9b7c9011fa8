"""Masks as box crops (rtseg/masks.py) give exactly what the full-frame masks give: the dense masks,
the tracker's grid, the COCO RLE strings, the label map of the PNGs and the overlay."""

from __future__ import annotations

import cv2
import numpy as np
import supervision as sv
from hypothesis import given, settings
from hypothesis import strategies as st

from rtseg.detections import downscale
from rtseg.masks import column_runs, compact, crops, grid, label_map, resized, runs_rle
from rtseg.output.records import frame_record
from rtseg.output.render import Renderer, paint_masks

SETTINGS = settings(max_examples=150, derandomize=True, database=None, deadline=None)


@st.composite
def frame_masks(draw) -> np.ndarray:
    """(N, H, W) bool masks: random pixels, rectangles (touching the borders too), single pixels, full
    and empty."""
    h, w, n = draw(st.integers(1, 37)), draw(st.integers(1, 37)), draw(st.integers(0, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    masks = np.zeros((n, h, w), bool)
    for i in range(n):
        kind = draw(st.sampled_from(["noise", "rect", "dot", "full", "empty"]))
        if kind == "noise":
            masks[i] = rng.random((h, w)) < draw(st.floats(0.05, 0.95))
        elif kind == "rect":
            y, x = rng.integers(0, h), rng.integers(0, w)
            masks[i, y:y + rng.integers(1, h + 1), x:x + rng.integers(1, w + 1)] = True
        elif kind == "dot":  # one pixel: a cell of 24x24 (a 4K frame's) with one pixel on is on
            masks[i, rng.integers(0, h), rng.integers(0, w)] = True
        elif kind == "full":
            masks[i] = True
    return masks


@SETTINGS
@given(frame_masks(), st.integers(1, 30))  # 4 at 640x480, 12 at 1920x1080, 24 at 3840x2160
def test_crops_give_what_the_full_masks_give(masks, factor):
    m = compact(masks)
    assert isinstance(m, sv.CompactMask) and m.shape == masks.shape
    assert np.array_equal(np.asarray(m), masks)
    n, h, w = masks.shape
    gh, gw = -(-h // factor), -(-w // factor)
    cells = np.zeros((n, gh * factor, gw * factor), bool)
    cells[:, :h, :w] = masks
    any_on = cells.reshape(n, gh, factor, gw, factor).any(axis=(2, 4))  # a cell is on when any pixel in it is
    assert np.array_equal(grid(m, factor), any_on) and np.array_equal(downscale(masks, factor), any_on)
    for i, (crop, x, y) in enumerate(crops(m)):
        if masks[i].any():  # cut to the mask's bounding box
            ys, xs = np.nonzero(masks[i])
            assert (x, y, *crop.shape) == (xs.min(), ys.min(), ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)
            runs, drawn = column_runs(m, i), np.zeros(masks.shape[1:], bool)  # the runs read off the RLE
            for c, a, b in zip(*runs):
                drawn[y + a:y + b, x + c] = True
            assert np.array_equal(drawn, masks[i])
            assert runs_rle(runs, x, y, masks.shape[1:]) == sv.mask_to_rle(masks[i], compressed=True)
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


@SETTINGS
@given(frame_masks())
def test_json_records_measure_the_masks_pixels(masks):
    dets = sv.Detections(xyxy=np.zeros((len(masks), 4)), mask=compact(masks), tracker_id=np.arange(1, len(masks) + 1))
    for record, mask in zip(frame_record(0, 0.0, dets)["objects"], masks):
        if not mask.any():
            assert record["area"] == 0 and record["centroid"] is None and record["mask"] is None
            continue
        x, y, w, h = cv2.boundingRect(mask.view(np.uint8))  # the centroid as OpenCV's moments give it
        moments = cv2.moments(mask[y:y + h, x:x + w].view(np.uint8), binaryImage=True)
        assert record["area"] == mask.sum() == moments["m00"]
        assert record["centroid"] == [round(x + moments["m10"] / moments["m00"], 1),
                                      round(y + moments["m01"] / moments["m00"], 1)]
        assert record["mask"] == {"size": list(mask.shape), "counts": sv.mask_to_rle(mask, compressed=True)}


@SETTINGS
@given(frame_masks(), st.integers(1, 60), st.integers(1, 60))
def test_masks_resized_from_their_runs_are_supervisions(masks, h, w):
    m = compact(masks)
    ours, theirs = resized(m, (h, w)), m.resize((h, w))
    assert np.array_equal(np.asarray(ours), np.asarray(theirs))  # cv2.INTER_NEAREST of each full mask
    assert np.array_equal(ours.area, theirs.area)
