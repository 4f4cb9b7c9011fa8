"""DAVIS metrics: values worked out by hand on small fixtures, and every figure of ``evaluate_arrays``
against the official DAVIS 2017 evaluation on seeded synthetic sequences (tests/data/davis_official.json
says how those numbers were made)."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest

from rtseg.evaluate import (
    boundary,
    decay_bins,
    disk,
    evaluate_arrays,
    evaluate_folders,
    f_measure,
    jaccard,
    object_ids,
    statistics,
)
from rtseg.output.png import read_index_png, write_index_png

ROOT = Path(__file__).resolve().parent.parent
OFFICIAL = Path(__file__).with_name("data") / "davis_official.json"
Case = tuple[np.ndarray, np.ndarray]  # (T, H, W) uint8 prediction, (T, H, W) uint8 ground truth


def square(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


# Seeded cases scored by the official code. Changing one changes its crc32 and needs the reference
# numbers made again (see the note in tests/data/davis_official.json).

def ellipse(shape: tuple[int, int], cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    """(H, W) bool filled ellipse (may reach past the image border)."""
    y, x = np.ogrid[: shape[0], : shape[1]]
    return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1


def shift(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """(H, W) bool ``mask`` moved by (dy, dx) pixels, what leaves the image lost."""
    h, w = mask.shape
    out = np.zeros_like(mask)
    out[max(dy, 0): h + min(dy, 0), max(dx, 0): w + min(dx, 0)] = \
        mask[max(-dy, 0): h + min(-dy, 0), max(-dx, 0): w + min(-dx, 0)]
    return out


def grow(mask: np.ndarray, k: int) -> np.ndarray:
    """(H, W) bool ``mask`` dilated (k > 0) or eroded (k < 0) by a (2|k|+1)-square."""
    if k == 0:
        return mask
    op = cv2.dilate if k > 0 else cv2.erode
    return op(mask.astype(np.uint8), np.ones((2 * abs(k) + 1,) * 2, np.uint8)).astype(bool)


def jitter(mask: np.ndarray, rng: np.random.Generator, reach: int = 3) -> np.ndarray:
    """``mask`` shifted by up to ``reach`` px and grown or shrunk by up to 2 px, at random."""
    dy, dx = (int(v) for v in rng.integers(-reach, reach + 1, 2))
    return grow(shift(mask, dy, dx), int(rng.integers(-2, 3)))


def paint(shape: tuple[int, int], masks: dict[int, np.ndarray]) -> np.ndarray:
    """(H, W) uint8 label map of ``{id: (H, W) bool}``, later ids on top."""
    out = np.zeros(shape, np.uint8)
    for oid, m in masks.items():
        out[m] = oid
    return out


def case_border() -> Case:
    """Objects along the image border: a corner rectangle, a band across the image, an ellipse cut off
    by the bottom-right corner; the band leaves from frame 5 on."""
    rng, shape, gt, pred = np.random.default_rng(1), (60, 80), [], []
    for t in range(8):
        objs = {1: square(*shape, 0, 18 + t, 0, 25), 2: ellipse(shape, 55, 74, 14, 18)}
        if t < 5:
            objs[3] = square(*shape, 30, 38, 0, 80)
        gt.append(paint(shape, objs))
        pred.append(paint(shape, {oid: jitter(m, rng) for oid, m in objs.items()}))
    return np.stack(pred), np.stack(gt)


def case_short(frames: int, seed: int) -> Case:
    """``frames`` frames (so frames - 2 scored): a moving blob, and a second one missed now and then."""
    rng, shape, gt, pred = np.random.default_rng(seed), (40, 50), [], []
    for t in range(frames):
        objs = {1: ellipse(shape, 15 + 2 * t, 18, 8, 10), 2: square(*shape, 25, 36, 30 + t, 44 + t)}
        gt.append(paint(shape, objs))
        guess = {1: jitter(objs[1], rng, 4)}
        if rng.random() < 0.6:
            guess[2] = jitter(objs[2], rng)
        pred.append(paint(shape, guess))
    return np.stack(pred), np.stack(gt)


def case_long() -> Case:
    """40 frames at 240x320 (tolerance 4 px), three moving objects, the prediction drifting off over time."""
    rng, shape, gt, pred = np.random.default_rng(3), (240, 320), [], []
    for t in range(40):
        objs = {1: ellipse(shape, 60 + 2 * t, 50 + 3 * t, 30, 40),
                2: square(*shape, 150, 200, 200 - 2 * t, 260 - 2 * t), 3: ellipse(shape, 200 - t, 100 + t, 20, 12)}
        gt.append(paint(shape, objs))
        drift = t // 5
        pred.append(paint(shape, {oid: grow(shift(m, drift, -drift), int(rng.integers(-2, 3)))
                                  for oid, m in objs.items()}))
    return np.stack(pred), np.stack(gt)


def case_void() -> Case:
    """A void (255) band across both objects, in every ground-truth frame; the prediction covers part
    of it (the official semi-supervised score reads void as background, so that counts against it)."""
    rng, shape, gt, pred = np.random.default_rng(4), (64, 64), [], []
    for t in range(10):
        objs = {1: ellipse(shape, 30, 20 + t, 14, 12), 2: square(*shape, 10, 50, 44, 58)}
        g = paint(shape, objs)
        g[28:34, :] = 255
        g[:, 60:] = 255
        gt.append(g)
        pred.append(paint(shape, {oid: jitter(m, rng, 2) for oid, m in objs.items()}))
    return np.stack(pred), np.stack(gt)


def case_late() -> Case:
    """The first ground-truth frame holds ids 1 and 3: object 2 (scored, absent at first) enters at
    frame 4 and is found a frame late; object 4 enters at frame 2 and is not scored (above 3)."""
    rng, shape, gt, pred = np.random.default_rng(5), (48, 64), [], []
    for t in range(10):
        objs = {1: ellipse(shape, 12, 12 + t, 8, 8), 3: square(*shape, 30, 44, 40, 60)}
        if t >= 4:
            objs[2] = square(*shape, 28, 40, 4 + t, 16 + t)
        if t >= 2:
            objs[4] = ellipse(shape, 10, 50, 6, 6)
        gt.append(paint(shape, objs))
        pred.append(paint(shape, {oid: jitter(m, rng, 2) for oid, m in objs.items()
                                  if oid != 4 and (oid != 2 or t >= 5)}))
    return np.stack(pred), np.stack(gt)


def case_swap_delete() -> Case:
    """Three objects at 150x200 (tolerance 2 px): ids 1 and 2 swapped from frame 6 on, object 3 deleted
    in frames 3-5 and from frame 9 on."""
    rng, shape, gt, pred = np.random.default_rng(6), (150, 200), [], []
    for t in range(12):
        objs = {1: ellipse(shape, 50, 40 + 4 * t, 25, 20), 2: ellipse(shape, 100, 160 - 4 * t, 20, 25),
                3: square(*shape, 10, 40, 140, 190)}
        gt.append(paint(shape, objs))
        guess = {oid: jitter(m, rng, 2) for oid, m in objs.items()}
        if t >= 6:
            guess[1], guess[2] = guess[2], guess[1]
        if 3 <= t <= 5 or t >= 9:
            del guess[3]
        pred.append(paint(shape, guess))
    return np.stack(pred), np.stack(gt)


def case_showcase() -> Case:
    """The first 20 frames of samples/showcase/gt (640x480, ids 1-5, tolerance 7 px), each object
    dilated, shifted or eroded (object 4 at random per frame)."""
    rng = np.random.default_rng(7)
    gt = np.stack([read_index_png(p) for p in sorted((ROOT / "samples/showcase/gt").glob("*.png"))[:20]])
    change = {1: lambda m: grow(m, 3), 2: lambda m: shift(m, 4, -3), 3: lambda m: grow(m, -2),
              4: lambda m: jitter(m, rng, 6), 5: lambda m: grow(shift(m, -5, 2), 1)}
    pred = [paint(g.shape, {oid: f(g == oid) for oid, f in change.items()}) for g in gt]
    return np.stack(pred), gt


CASES: dict[str, Callable[[], Case]] = {
    "border": case_border, "short3": lambda: case_short(3, 21), "short4": lambda: case_short(4, 22),
    "short5": lambda: case_short(5, 23), "long": case_long, "void": case_void, "late": case_late,
    "swap_delete": case_swap_delete, "showcase": case_showcase,
}


def crc32(pred: np.ndarray, gt: np.ndarray) -> int:
    """Checksum of a case's arrays (shape, dtype and values), to tell a changed case from a changed metric."""
    return zlib.crc32(repr((pred.shape, pred.dtype.str, gt.shape, gt.dtype.str)).encode()
                      + pred.tobytes() + gt.tobytes())


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_official_davis(name):
    pred, gt = CASES[name]()
    official = json.loads(OFFICIAL.read_text())["cases"][name]
    assert crc32(pred, gt) == official["crc32"], "not the case the official numbers were made from"
    result = evaluate_arrays(pred, gt)
    assert sorted(result["objects"]) == sorted(official["objects"])
    for oid, scores in official["objects"].items():
        for key, value in scores.items():
            assert result["objects"][oid][key] == pytest.approx(value, abs=1e-4), (oid, key)
    for key, value in official["overall"].items():
        assert result["overall"][key] == pytest.approx(value, abs=1e-4), key


def test_official_cases_cover_every_case():
    assert sorted(json.loads(OFFICIAL.read_text())["cases"]) == sorted(CASES)


def test_jaccard_known_values():
    a, b = square(10, 10, 0, 4, 0, 4), square(10, 10, 0, 4, 2, 6)  # 16 px each, 8 shared
    assert jaccard(a, b) == pytest.approx(8 / 24)
    assert jaccard(a, np.zeros_like(a)) == 0
    assert jaccard(np.zeros_like(a), np.zeros_like(a)) == 1


def test_boundary_is_drawn_half_a_pixel_towards_the_origin():
    # A 4x4 square at rows/columns 1-4: pixels differing from their east, south or south-east
    # neighbour make the 5x5 ring from (0, 0) to (4, 4), 16 px; nothing inside it.
    b = boundary(square(6, 6, 1, 5, 1, 5))
    assert b.sum() == 16 and b[0, :5].all() and b[:5, 0].all() and b[4, :5].all() and b[:5, 4].all()
    assert not b[1:4, 1:4].any() and not b[5].any() and not b[:, 5].any()


def test_boundary_never_marks_the_image_border():
    assert not boundary(np.ones((6, 8), bool)).any()
    left = square(6, 8, 0, 6, 0, 3)  # columns 0-2 of every row
    assert (np.argwhere(boundary(left))[:, 1] == 2).all() and boundary(left).sum() == 6


def test_disk_is_skimage_disk():
    assert disk(7.0).shape == (15, 15) and disk(7.0).sum() == 149  # the tolerance disk at 640x480
    assert disk(1.0).tolist() == [[0, 1, 0], [1, 1, 1], [0, 1, 0]]


def test_f_measure_known_values():
    a = square(100, 100, 20, 60, 20, 60)
    assert f_measure(a, a) == 1.0
    # Shifted by 1 px: within the tolerance (ceil(0.008 * 141.4) = 2 px), so a perfect boundary score.
    assert f_measure(np.roll(a, 1, axis=1), a) == 1.0
    # Shifted by 10 px: the two vertical sides are off, most of the horizontal ones match.
    assert 0.4 < f_measure(np.roll(a, 10, axis=1), a) < 0.8
    assert f_measure(a, np.zeros_like(a)) == 0.0
    assert f_measure(np.zeros_like(a), np.zeros_like(a)) == 1.0
    # A mask filling the image has no boundary at all.
    assert f_measure(np.ones_like(a), np.ones_like(a)) == 1.0 and f_measure(np.ones_like(a), a) == 0.0


def test_statistics_recall_and_decay():
    # 8 frames: bin edges 0, 2, 4, 5, 7, so the first bin is frames 0-2 and the last frames 5-7.
    s = statistics(np.array([1.0, 1.0, 0.8, 0.6, 0.4, 0.4, 0.2, 0.0]))
    assert s["mean"] == pytest.approx(0.55)
    assert s["recall"] == pytest.approx(4 / 8)
    assert s["decay"] == pytest.approx(2.8 / 3 - 0.6 / 3)


def test_decay_bins_overlap_and_exist_under_four_frames():
    assert decay_bins(1) == [slice(0, 1)] * 4
    assert decay_bins(2) == [slice(0, 1), slice(0, 2), slice(1, 2), slice(1, 2)]
    assert decay_bins(3) == [slice(0, 2), slice(1, 2), slice(1, 3), slice(2, 3)]
    assert statistics(np.array([1.0, 0.5]))["decay"] == pytest.approx(0.5)


def test_decay_bins_past_255_frames_are_not_wrapped():
    # The official code stores the edges as uint8 and gets NaN here; rtseg keeps the intended bins.
    assert decay_bins(298) == [slice(0, 75), slice(74, 150), slice(149, 224), slice(223, 298)]
    values = np.r_[np.ones(149), np.zeros(149)]
    assert statistics(values)["decay"] == pytest.approx(1.0)


def test_objects_are_one_to_max_of_the_first_frame_void_aside():
    gt = np.zeros((3, 8, 8), np.uint8)
    gt[0, 0, 0], gt[0, 1, 1], gt[0, 2, 2] = 1, 3, 255
    gt[1, 5, 5] = 4  # only later: not scored
    assert object_ids(gt) == [1, 2, 3]
    assert object_ids(np.full((2, 4, 4), 255, np.uint8)) == []
    pred = gt.copy()
    pred[1:, 6, 6] = 9  # an id above the scored ones: ignored
    assert sorted(evaluate_arrays(pred, gt, skip_ends=False)["objects"]) == ["1", "2", "3"]


def test_void_reads_as_background():
    gt = np.zeros((1, 8, 8), np.uint8)
    gt[0, 2:6, 2:6] = 1
    gt[0, 2:6, 6] = 255
    pred = gt.copy()
    pred[0, 2:6, 6] = 1  # the void column predicted as the object: 4 false-positive pixels
    assert evaluate_arrays(pred, gt, skip_ends=False)["objects"]["1"]["J"] == pytest.approx(16 / 20)


def test_fixture_folders(tmp_path):
    """Four frames, two objects; object 2 is lost on frame 2. First and last frames are skipped."""
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir(), pred.mkdir()
    for t in range(4):
        g = np.zeros((40, 40), np.uint8)
        g[5:15, 5:15] = 1
        g[20:30, 20:30] = 2
        p = g.copy()
        p[5:15, 5:10] = 0  # object 1 half found: J = 0.5
        if t == 2:
            p[p == 2] = 0  # object 2 missed
        write_index_png(gt / f"{t:05d}.png", g)
        write_index_png(pred / f"{t:05d}.png", p)
    res = evaluate_folders(pred, gt)
    assert res["objects"]["1"]["J"] == pytest.approx(0.5)
    assert res["objects"]["1"]["frames"] == 2
    assert res["objects"]["2"]["J"] == pytest.approx(0.5)  # frames 1 and 2: 1.0 and 0.0
    assert res["objects"]["2"]["F"] == pytest.approx(0.5)
    assert res["objects"]["2"]["J_recall"] == pytest.approx(0.5)
    assert res["overall"]["J"] == pytest.approx(0.5)
    assert res["overall"]["J&F"] == pytest.approx((res["overall"]["J"] + res["overall"]["F"]) / 2)
    all_frames = evaluate_folders(pred, gt, skip_ends=False)
    assert all_frames["objects"]["2"]["J"] == pytest.approx(0.75)


def test_missing_prediction_frames_count_as_empty(tmp_path):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir(), pred.mkdir()
    for t in range(3):
        write_index_png(gt / f"{t:05d}.png", np.ones((8, 8), np.uint8))
    write_index_png(pred / "00000.png", np.ones((8, 8), np.uint8))
    res = evaluate_folders(pred, gt, skip_ends=False)
    assert res["objects"]["1"]["J"] == pytest.approx(1 / 3)


def test_evaluate_arrays_rejects_shape_mismatch():
    from rtseg.errors import RtsegError

    with pytest.raises(RtsegError):
        evaluate_arrays(np.zeros((2, 4, 4), np.uint8), np.zeros((2, 4, 5), np.uint8))


def test_eval_json_has_no_nan(tmp_path):
    """Ground truth without objects scores NaN overall: the JSON file says null (NaN is not JSON)."""
    import json as _json

    from rtseg.cli import main

    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    labels = np.zeros((8, 8), np.uint8)
    labels[1:3, 1:3] = 1
    for k in range(4):
        write_index_png(gt / f"{k:05d}.png", np.zeros((8, 8), np.uint8))
        write_index_png(pred / f"{k:05d}.png", labels)
    assert main(["eval", str(pred), str(gt), "--json", str(tmp_path / "s.json")]) == 0
    text = (tmp_path / "s.json").read_text()
    assert "NaN" not in text and _json.loads(text)["overall"]["J"] is None
