"""Carrying masks between keyframes (rtseg/track/keyframes.py, rtseg/track/templates.py) on rendered
shapes, and the keyframe loop."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import supervision as sv

from rtseg.config import Config
from rtseg.evaluate import jaccard
from rtseg.config import KeyframeConfig
from rtseg.track.keyframes import MaskCarrier
from rtseg.track.templates import Finder, Template
from rtseg.session import Session
from rtseg.prompt.prompts import PointPrompt
from rtseg.synth.world import SceneObject, make_background, render

H, W = 240, 320
BACKGROUND = make_background(np.random.default_rng(3), H, W, "gradient")


def scene(*objects: SceneObject, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return render(BACKGROUND, list(objects), np.random.default_rng(seed))


def shape(x: float, y: float, angle: float = 0.0, i: int = 1, colour: str = "red", kind: str = "star",
          r: float = 28.0) -> SceneObject:
    return SceneObject(i, colour, kind, (x, y), r, angle)


def carry(frames: list[SceneObject], config: KeyframeConfig = KeyframeConfig(every=8)) -> list[tuple[float, bool]]:
    """(J against the truth, fits) for each frame after the first, carrying frame 0's true mask."""
    image, labels = scene(frames[0])
    carrier = MaskCarrier(config)
    carrier.start(image, (labels == 1)[None])
    out = []
    for k, o in enumerate(frames[1:], 1):
        image, labels = scene(o, seed=k)
        masks, fits = carrier.step(image)
        out.append((jaccard(masks[0], labels == 1), fits))
    return out


def test_a_moving_object_is_carried_to_its_new_place():
    steps = carry([shape(60 + 9 * t, 100 + 4 * t) for t in range(6)])
    assert all(fits for _, fits in steps)
    assert min(j for j, _ in steps) > 0.9


def test_a_turning_object_is_carried_with_its_turn():
    steps = carry([shape(150 + 3 * t, 120, angle=5.0 * t) for t in range(6)])
    assert all(fits for _, fits in steps)
    assert min(j for j, _ in steps) > 0.88


def test_a_jump_beyond_the_fine_search_is_found_coarse_to_fine():
    """A first move of 22, -14 px (no motion known yet): 11, -7 px at the matching resolution, past the
    2 px of the fine search, so only the half-resolution search over the whole window finds it."""
    steps = carry([shape(120, 120, kind="square", colour="green"), shape(142, 106, kind="square", colour="green")])
    assert steps[0][1] is True and steps[0][0] > 0.9


def test_a_turned_and_moved_object_is_found_at_its_angle():
    """Turned 9 degrees and moved at once: matched unturned first, then turned where that put it."""
    steps = carry([shape(150, 120), shape(156, 124, angle=9.0)])
    assert steps[0][1] is True and steps[0][0] > 0.9


@pytest.mark.parametrize("dx,dy", [(7, -11), (-16, 3), (0, 0)])
def test_the_finder_recovers_a_translation(dx, dy):
    """Coarse to fine alone (``give_up=1``: never the thorough search) puts the template within half
    a pixel of where it moved, with no pixel changed."""
    image, labels = scene(shape(160, 120, kind="cross", colour="orange"))
    ys, xs = np.nonzero(labels == 1)
    x0, y0 = int(xs.min()), int(ys.min())
    weight = (labels[y0:ys.max() + 1, x0:xs.max() + 1] == 1).astype(np.uint8) * 255
    template = Template.cut(image, weight, x0, y0)
    assert template is not None
    moved = np.roll(image, (dy, dx), axis=(0, 1))
    coarse = cv2.resize(moved, (W // 2, H // 2), interpolation=cv2.INTER_AREA)
    changed = Finder(radius=20, give_up=1.0).find(template, moved, coarse)
    assert changed < 0.01 and abs(template.angle) < 1.0
    assert np.allclose(template.offset, (dx, dy), atol=0.5)


def test_carried_masks_are_box_crops():
    image, labels = scene(shape(100, 120, kind="square"))
    carrier = MaskCarrier(KeyframeConfig(every=8))
    carrier.start(image, sv.CompactMask.from_dense((labels == 1)[None], sv.mask_to_xyxy((labels == 1)[None]),
                                                   image_shape=(H, W)))
    image, labels = scene(shape(108, 124, kind="square"), seed=1)
    masks, fits = carrier.step(image)
    assert fits and isinstance(masks, sv.CompactMask) and masks.shape == (1, H, W)
    h, w = masks.crop(0).shape
    assert w < W // 4 and h < H // 4
    assert jaccard(masks[0], labels == 1) > 0.9
    assert masks.bbox_xyxy.tolist() == sv.mask_to_xyxy(np.asarray(masks)).tolist()


def test_a_matching_resolution_of_a_pixel_or_two_gives_up_instead_of_failing():
    image, labels = scene(shape(100, 120, kind="square"))
    carrier = MaskCarrier(KeyframeConfig(every=8, scale=0.005))  # 320x240 -> 2x1: no half of it to search
    carrier.start(image, (labels == 1)[None])
    masks, fits = carrier.step(image)
    assert fits is False and masks.shape == (1, H, W)


def test_a_covered_object_no_longer_fits():
    image, labels = scene(shape(100, 120))
    carrier = MaskCarrier(KeyframeConfig(every=8))
    carrier.start(image, (labels == 1)[None])
    cover = SceneObject(2, "blue", "square", (100.0, 120.0), 24.0, 0.0)  # in front, over its middle
    image, _ = scene(shape(100, 120), cover, seed=1)
    assert carrier.step(image)[1] is False


def test_an_object_leaving_the_frame_no_longer_fits():
    steps = carry([shape(260 + 12 * t, 120, kind="square") for t in range(5)])
    assert steps[0][1] is True
    assert steps[-1][1] is False


@pytest.mark.parametrize("key,value", [("every", 0), ("scale", 0.0), ("search", 0), ("max_changed", 1.5),
                                       ("min_inside", -0.1)])
def test_bad_keyframe_settings_are_rejected(key, value):
    with pytest.raises(ValueError, match=f"keyframes.{key}"):
        KeyframeConfig(**{key: value})


class TruthSegmenter:
    """Segments with the ground truth of a rendered sequence, counting its calls."""

    def __init__(self) -> None:
        self.labels: np.ndarray | None = None
        self.calls = 0

    def __call__(self, image: np.ndarray) -> sv.Detections:
        self.calls += 1
        assert self.labels is not None
        ids = [i for i in np.unique(self.labels) if i]
        masks = np.stack([self.labels == i for i in ids]) if ids else np.zeros((0, H, W), bool)
        return sv.Detections(xyxy=sv.mask_to_xyxy(masks).astype(float), mask=masks,
                             confidence=np.ones(len(ids)), class_id=np.zeros(len(ids), int))


def run(session: Session, segmenter: TruthSegmenter, objects) -> list[sv.Detections]:
    out = []
    for t, objs in enumerate(objects):
        image, segmenter.labels = scene(*objs, seed=t)
        out.append(session.process(image)[0])
    return out


def keyframe_session(every: int) -> tuple[Session, TruthSegmenter]:
    segmenter = TruthSegmenter()
    config = Config(keyframes=KeyframeConfig(every=every))
    return Session(config, segmenter=segmenter), segmenter


def test_keyframe_loop_segments_every_kth_frame_and_keeps_the_id():
    session, segmenter = keyframe_session(4)
    oid = session.add(PointPrompt(((60, 100),), (1,)))
    path = [[shape(60 + 6 * t, 100, kind="square", colour="green"),
             shape(250, 60 + 3 * t, i=2, kind="circle", colour="blue")] for t in range(12)]
    results = run(session, segmenter, path)
    assert segmenter.calls == 3  # frames 0, 4, 8
    for t, dets in enumerate(results):
        assert dets.tracker_id.tolist() == [oid]
        truth = scene(*path[t], seed=t)[1] == 1
        assert jaccard(dets.mask[0], truth) > 0.9
        assert dets.data["prompt"][0].startswith("point")


def test_a_misfit_forces_a_keyframe_and_a_new_prompt_is_segmented_at_once():
    session, segmenter = keyframe_session(8)
    session.add(PointPrompt(((100, 120),), (1,)))
    cover = SceneObject(2, "blue", "square", (100.0, 120.0), 24.0, 0.0)
    run(session, segmenter, [[shape(100, 120)], [shape(100, 120)], [shape(100, 120), cover]])
    assert segmenter.calls == 2  # frame 0, then frame 2 where the carried star stopped fitting
    session.add(PointPrompt(((250, 60),), (1,)))
    out = run(session, segmenter, [[shape(100, 120), shape(250, 60, i=3, kind="circle", colour="blue")]])
    assert segmenter.calls == 3 and len(out[0]) == 2
