import numpy as np
import pytest

from rtseg.errors import RtsegError
from rtseg.prompt.prompts import (
    BoxPrompt,
    PointPrompt,
    TextPrompt,
    load_prompts_file,
    parse_xy,
    validate,
    with_negative,
)
from rtseg.prompt.select import box_mask_iou, select_box, select_point


@pytest.fixture
def masks():
    m = np.zeros((3, 20, 20), bool)
    m[0, 2:8, 2:8] = True  # small object
    m[1, 0:12, 0:12] = True  # larger region holding it
    m[2, 14:18, 14:18] = True  # elsewhere
    return m


def test_point_picks_the_smallest_mask_under_the_click(masks):
    assert select_point(masks, PointPrompt(((4, 4),), (1,))) == 0


def test_negative_point_excludes(masks):
    prompt = PointPrompt(((4, 4), (5, 5)), (1, 0))
    assert select_point(masks, prompt) is None  # both masks under the click hold the negative point
    assert select_point(masks, PointPrompt(((4, 4), (10, 10)), (1, 0))) == 0
    assert select_point(masks, PointPrompt(((10, 10), (4, 4)), (1, 0))) is None


def test_most_positive_points_wins(masks):
    assert select_point(masks, PointPrompt(((4, 4), (10, 10)), (1, 1))) == 1


def test_point_on_background(masks):
    assert select_point(masks, PointPrompt(((19, 0),), (1,))) is None
    assert select_point(masks[:0], PointPrompt(((1, 1),), (1,))) is None


def test_box_picks_best_iou(masks):
    assert select_box(masks, BoxPrompt((2, 2, 8, 8))) == 0
    assert select_box(masks, BoxPrompt((0, 0, 12, 12))) == 1
    assert select_box(masks, BoxPrompt((13, 13, 19, 19))) == 2
    assert np.isclose(box_mask_iou(masks, (2, 2, 8, 8))[0], 1.0)
    assert select_box(masks, BoxPrompt((0, 0, 12, 12), negatives=((11, 11),))) == 0


def test_validate_rejects_out_of_frame():
    validate(PointPrompt(((0, 0),), (1,)), 10, 10)
    for bad in (PointPrompt(((10, 3),), (1,)), PointPrompt(((-1, 3),), (1,)), BoxPrompt((20, 20, 30, 30)),
                BoxPrompt((5, 5, 2, 8)), TextPrompt("x", negatives=((3, 11),))):
        with pytest.raises(RtsegError):
            validate(bad, 10, 10)


def test_parse_xy():
    assert parse_xy("3,4.5", 2, "point") == (3.0, 4.5)
    for bad in ("3", "a,b", "1,2,3", ""):
        with pytest.raises(RtsegError, match="point"):
            parse_xy(bad, 2, "point")


def test_with_negative_keeps_kind():
    assert with_negative(PointPrompt(((1, 1),), (1,)), (2, 2)).labels == (1, 0)
    assert with_negative(BoxPrompt((0, 0, 5, 5)), (2, 2)).negatives == ((2, 2),)
    assert with_negative(TextPrompt("red"), (2, 2)).text == "red"
    assert str(with_negative(BoxPrompt((0, 0, 5, 5)), (2, 3))) == "box 0,0,5,5 -2,3"
    assert str(with_negative(PointPrompt(((1, 1),), (1,)), (2, 3))) == "point +1,1 -2,3"
    assert str(with_negative(TextPrompt("red"), (2, 3))) == "red -2,3"


def test_prompts_file(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("objects:\n  - points: [[1, 2], [3, 4]]\n    neg: [[5, 6]]\n"
                 "  - box: [0, 0, 4, 4]\n  - text: the red circle\n")
    a, b, c = load_prompts_file(f)
    assert a == PointPrompt(((1, 2), (3, 4), (5, 6)), (1, 1, 0))
    assert b == BoxPrompt((0, 0, 4, 4)) and c == TextPrompt("the red circle")


@pytest.mark.parametrize("text", [
    "objects: 3", "objects:\n  - box: [1, 2]", "objects:\n  - colour: red", "objects:\n  - text: a\n    box: [0,0,1,1]",
    "objects: [", "objects:\n  - points: []"])
def test_malformed_prompts_file(tmp_path, text):
    f = tmp_path / "p.yaml"
    f.write_text(text)
    with pytest.raises(RtsegError, match="prompts file"):
        load_prompts_file(f)


def test_masked_crop_keeps_the_masks_pixels_and_greys_the_rest():
    from rtseg.prompt.crops import FILL, masked_crop

    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (60, 80, 3), np.uint8)
    mask = np.zeros((60, 80), bool)
    mask[5:40, 50:80] = rng.random((35, 30)) < 0.7  # cut by the frame's right edge: the square pads past it
    out = masked_crop(image, mask, pad=0.1)
    side = out.shape[0]
    ox, oy = (50 + 80) // 2 - side // 2, (5 + 40) // 2 - side // 2  # the square's corner in the frame
    ys, xs = np.mgrid[0:side, 0:side]
    fy, fx = ys + oy, xs + ox
    inside = (fy >= 0) & (fy < 60) & (fx >= 0) & (fx < 80)
    on = np.zeros((side, side), bool)
    on[inside] = mask[fy[inside], fx[inside]]
    assert on.sum() == mask.sum()
    assert np.array_equal(out[on], image[fy[on], fx[on]]) and (out[~on] == FILL).all()
