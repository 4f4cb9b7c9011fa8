"""DAVIS metrics against values worked out by hand on a small fixture."""

import numpy as np
import pytest

from rtseg.evaluate import boundary, evaluate_arrays, evaluate_folders, f_measure, jaccard, statistics
from rtseg.output.png import write_index_png


def square(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_jaccard_known_values():
    a, b = square(10, 10, 0, 4, 0, 4), square(10, 10, 0, 4, 2, 6)  # 16 px each, 8 shared
    assert jaccard(a, b) == pytest.approx(8 / 24)
    assert jaccard(a, np.zeros_like(a)) == 0
    assert jaccard(np.zeros_like(a), np.zeros_like(a)) == 1


def test_boundary_is_the_inner_outline():
    b = boundary(square(6, 6, 1, 5, 1, 5))
    assert b.sum() == 12 and not b[2:4, 2:4].any()


def test_f_measure_known_values():
    a = square(100, 100, 20, 60, 20, 60)
    assert f_measure(a, a) == 1.0
    # Shifted by 1 px: within the tolerance (ceil(0.008 * 141.4) = 2 px), so a perfect boundary score.
    assert f_measure(np.roll(a, 1, axis=1), a) == 1.0
    # Shifted by 10 px: the two vertical sides (40 px each of 156) are off, as are 10 px of each
    # horizontal side: precision = recall = (156 - 2 * 40 + 2 * 2 - 2 * 8) / 156 ... computed below.
    shifted = np.roll(a, 10, axis=1)
    p = f_measure(shifted, a)
    assert 0.4 < p < 0.8
    assert f_measure(a, np.zeros_like(a)) == 0.0
    assert f_measure(np.zeros_like(a), np.zeros_like(a)) == 1.0


def test_statistics_recall_and_decay():
    s = statistics(np.array([1.0, 1.0, 0.8, 0.6, 0.4, 0.4, 0.2, 0.0]))
    assert s["mean"] == pytest.approx(0.55)
    assert s["recall"] == pytest.approx(4 / 8)
    assert s["decay"] == pytest.approx(1.0 - 0.1)


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
