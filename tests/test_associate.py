"""Property tests for the association maths (hypothesis)."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rtseg.detections import downscale
from rtseg.track.associate import centroids, iou_matrix, match, shift

# The same examples every run, no example database written into the repository, and nothing decided on
# the clock: no per-example deadline, no "data generation is slow" health check (a busy machine is slow).
SETTINGS = settings(derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])

masks = st.integers(1, 4).flatmap(lambda n: arrays(bool, (n, 6, 7)))


@SETTINGS
@given(masks, masks)
def test_iou_is_symmetric_and_bounded(a, b):
    ab, ba = iou_matrix(a, b), iou_matrix(b, a)
    assert ab.shape == (len(a), len(b))
    assert np.allclose(ab, ba.T)
    assert ((ab >= 0) & (ab <= 1)).all()


@SETTINGS
@given(masks)
def test_iou_with_itself_is_one_unless_empty(a):
    diag = np.diag(iou_matrix(a, a))
    nonempty = a.any(axis=(1, 2))
    assert np.allclose(diag[nonempty], 1.0)
    assert np.allclose(diag[~nonempty], 0.0)


@SETTINGS
@given(arrays(bool, (6, 7)))
def test_iou_of_disjoint_masks_is_zero(m):
    assert iou_matrix(m[None], (~m)[None])[0, 0] == 0


def test_iou_empty_shapes():
    assert iou_matrix(np.zeros((0, 4, 4), bool), np.ones((3, 4, 4), bool)).shape == (0, 3)
    assert iou_matrix(np.ones((2, 4, 4), bool), np.zeros((0, 4, 4), bool)).shape == (2, 0)


@settings(SETTINGS, max_examples=200)
@given(arrays(float, st.tuples(st.integers(0, 6), st.integers(0, 6)), elements=st.floats(0, 1)),
       st.floats(0, 1))
def test_match_is_one_to_one_and_above_threshold(iou, threshold):
    rows, cols = match(iou, threshold)
    assert len(set(rows.tolist())) == len(rows) and len(set(cols.tolist())) == len(cols)
    assert (iou[rows, cols] >= threshold).all()


@SETTINGS
@given(arrays(float, (4, 4), elements=st.floats(0, 1)))
def test_match_maximises_total_iou(iou):
    rows, cols = match(iou, 0.0)
    # No single swap of two pairs improves the total.
    total = iou[rows, cols].sum()
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            before = iou[rows[i], cols[i]] + iou[rows[j], cols[j]]
            swapped = total - before + iou[rows[i], cols[j]] + iou[rows[j], cols[i]]
            assert swapped <= total + 1e-9


@SETTINGS
@given(arrays(bool, (2, 9, 11)), st.integers(1, 5))
def test_downscale_keeps_every_pixel(m, f):
    small = downscale(m, f)
    assert small.shape == (2, -(-9 // f), -(-11 // f))
    ys, xs = np.nonzero(m[0])
    assert small[0][ys // f, xs // f].all()


@SETTINGS
@given(arrays(bool, (1, 8, 8)), st.integers(-10, 10), st.integers(-10, 10))
def test_shift_moves_pixels_and_cuts_at_the_border(m, dx, dy):
    out = shift(m, np.array([dx]), np.array([dy]))
    ys, xs = np.nonzero(m[0])
    inside = (xs + dx >= 0) & (xs + dx < 8) & (ys + dy >= 0) & (ys + dy < 8)
    assert out[0].sum() == inside.sum()
    assert out[0][ys[inside] + dy, xs[inside] + dx].all()


def test_centroids():
    m = np.zeros((2, 5, 5), bool)
    m[0, 1:4, 2] = True
    c = centroids(m)
    assert np.allclose(c[0], [2, 2]) and np.isnan(c[1]).all()
