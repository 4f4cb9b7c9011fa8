"""Tracker life cycle with a fake segmenter that returns the ground-truth masks (no model)."""

from __future__ import annotations

import cv2
import numpy as np
import supervision as sv

from rtseg.prompt.prompts import BoxPrompt, PointPrompt
from rtseg.synth.world import SceneObject, make_background, render
from rtseg.config import TrackerConfig
from rtseg.track.tracker import PromptTracker

H, W = 240, 320


def frame(objects: list[SceneObject], seed: int = 0) -> tuple[np.ndarray, sv.Detections]:
    rng = np.random.default_rng(seed)
    image, labels = render(make_background(np.random.default_rng(1), H, W, "gradient"), objects, rng)
    ids = [o.id for o in objects if (labels == o.id).any()]
    masks = np.stack([labels == i for i in ids]) if ids else np.zeros((0, H, W), bool)
    return image, sv.Detections(xyxy=sv.mask_to_xyxy(masks).astype(float), mask=masks,
                                confidence=np.ones(len(ids)), class_id=np.zeros(len(ids), int))


def obj(i, colour, shape, x, y, r=20.0):
    return SceneObject(i, colour, shape, (float(x), float(y)), r, 0.0)


def ids_at(out: sv.Detections, x: int, y: int) -> list[int]:
    return [int(t) for t, m in zip(out.tracker_id, out.mask) if m[y, x]]


def test_crossing_objects_keep_their_ids():
    tracker = PromptTracker()
    a_id = tracker.add(PointPrompt(((40, 120),), (1,)))
    b_id = tracker.add(PointPrompt(((280, 120),), (1,)))
    for t in range(25):
        xa, xb = 40 + 10 * t, 280 - 10 * t
        image, dets = frame([obj(1, "red", "square", xa, 120), obj(2, "blue", "square", xb, 128)], t)
        out = tracker.update(image, dets)
        if abs(xa - xb) > 45:  # apart: each id is on its own object
            assert ids_at(out, xa, 120) == [a_id] and ids_at(out, xb, 128) == [b_id]


def test_occluded_object_is_lost_then_found_at_its_place():
    tracker = PromptTracker(TrackerConfig(coast=15))
    oid = tracker.add(BoxPrompt((80, 100, 120, 140)))
    occluder = obj(2, "green", "square", 100, 120, 45)
    for t in range(30):
        hidden = 10 <= t < 20
        objects = [obj(1, "yellow", "circle", 100, 120)] + ([occluder] if hidden else [])
        out = tracker.update(*frame(objects, t))
        assert ids_at(out, 100, 120) == ([] if hidden else [oid])  # never jumps to the occluder


def test_object_that_leaves_comes_back_with_its_id():
    tracker = PromptTracker(TrackerConfig(coast=3))
    oid = tracker.add(PointPrompt(((60, 60),), (1,)))
    other = obj(2, "blue", "star", 250, 180)
    seen = []
    for t in range(40):
        objects = [other] + ([obj(1, "orange", "hexagon", 60, 60)] if t < 5 else
                             [obj(1, "orange", "hexagon", 200, 60)] if t >= 25 else [])
        out = tracker.update(*frame(objects, t))
        seen.append(ids_at(out, 200 if t >= 25 else 60, 60))
    assert all(s == [oid] for s in seen[:5]) and all(s == [] for s in seen[5:25])
    assert seen[-1] == [oid]  # re-acquired far from where it left, by its colours
    assert all(not ids_at(tracker.update(*frame([other], 99)), 250, 180) for _ in range(3))


def test_prompt_on_nothing_waits_for_an_object():
    tracker = PromptTracker()
    oid = tracker.add(PointPrompt(((160, 120),), (1,)))
    assert len(tracker.update(*frame([obj(1, "red", "circle", 40, 40)]))) == 0
    out = tracker.update(*frame([obj(1, "red", "circle", 40, 40), obj(2, "white", "cross", 160, 120)]))
    assert ids_at(out, 160, 120) == [oid]


def test_everything_gives_each_segment_a_stable_id():
    tracker = PromptTracker(everything=True)
    ids = None
    for t in range(10):
        out = tracker.update(*frame([obj(1, "red", "circle", 40 + 5 * t, 60), obj(2, "blue", "cross", 250, 60 + 5 * t),
                                     obj(3, "white", "star", 160, 200)], t))
        now = sorted(out.tracker_id.tolist())
        assert len(now) == 3 and (ids is None or now == ids)
        ids = now


def test_duplicate_segments_are_merged_and_reset_forgets():
    tracker = PromptTracker(everything=True)
    image, dets = frame([obj(1, "red", "circle", 100, 100)])
    doubled = sv.Detections.merge([dets, dets])
    assert len(tracker.update(image, doubled)) == 1
    tracker.reset()
    assert tracker.tracks == [] and tracker.update(image, dets).tracker_id.tolist() == [1]


def merged(image: np.ndarray, dets: sv.Detections) -> tuple[np.ndarray, sv.Detections]:
    """The frame's segments as a model that merges touching objects gives them: one segment."""
    mask = np.asarray(dets.mask).any(axis=0)[None]
    return image, sv.Detections(xyxy=sv.mask_to_xyxy(mask).astype(float), mask=mask, confidence=np.ones(1),
                                class_id=np.zeros(1, int))


def test_touching_objects_merged_into_one_segment_keep_their_ids_and_masks():
    """Two objects meet, move on side by side as one segment (the model merges them), and part: the
    segment is shared out between them by their predicted masks; neither is lost, nor takes the other."""
    tracker = PromptTracker()
    a_id = tracker.add(PointPrompt(((110, 60),), (1,)))
    b_id = tracker.add(PointPrompt(((210, 60),), (1,)))
    for t in range(30):
        gap = 100 - 10 * min(t, 6) + 10 * max(t - 20, 0)  # 100 px apart, touching (40: edge to edge) from t = 6 to 20
        y = 60 + 6 * min(max(t - 6, 0), 14)  # ... and going down together meanwhile
        objects = [obj(1, "red", "square", 160 - gap / 2, y), obj(2, "blue", "hexagon", 160 + gap / 2, y)]
        image, dets = frame(objects, t)
        out = tracker.update(*(merged(image, dets) if gap <= 40 else (image, dets)))
        assert sorted(out.tracker_id.tolist()) == sorted([a_id, b_id]), t
        for oid, truth in zip((a_id, b_id), dets.mask):
            mask = np.asarray(out.mask)[out.tracker_id.tolist().index(oid)]
            assert (mask & truth).sum() / (mask | truth).sum() >= (0.8 if gap <= 40 else 0.9), (t, oid)


def test_an_object_passing_in_front_of_another_is_not_shared_out():
    """Both objects prompted: the one in front keeps its whole mask while it hides the other (the
    hidden one's predicted mask lies in the occluder's own, so it claims none of its segment)."""
    tracker = PromptTracker()
    small_id = tracker.add(PointPrompt(((100, 120),), (1,)))
    big_id = tracker.add(PointPrompt(((260, 120),), (1,)))
    for t in range(32):
        objects = [obj(1, "yellow", "circle", 100, 120, 18), obj(2, "green", "square", 260 - 8 * t, 124, 40)]
        image, dets = frame(objects, t)
        out = tracker.update(image, dets)
        ids = out.tracker_id.tolist()
        big = np.asarray(out.mask)[ids.index(big_id)]
        assert (big & dets.mask[-1]).sum() / (big | dets.mask[-1]).sum() >= 0.9, t
        if small_id in ids and len(dets) == 2:  # what the small one shows is its own (a part of its own segment)
            assert not (np.asarray(out.mask)[ids.index(small_id)] & ~dets.mask[0]).any(), t


def test_everything_object_hidden_longer_than_max_age_comes_back_with_its_id():
    """An object passes behind an occluder (hidden for 12 frames, more than ``max_age``) and comes
    out the other side: the lost track is re-identified by its path and colours, not born again."""
    tracker = PromptTracker(TrackerConfig(max_age=5), everything=True)
    seen: list[list[int]] = []
    every: set[int] = set()
    for t in range(60):
        x = 40 + 4 * t
        objects = [obj(1, "yellow", "circle", x, 120, 18), obj(2, "green", "square", 160, 120, 45)]
        out = tracker.update(*frame(objects, t))
        every |= set(out.tracker_id.tolist())
        if abs(x - 160) > 90:  # wholly in view
            seen.append(ids_at(out, x, 120))
    assert all(len(s) == 1 for s in seen) and len({s[0] for s in seen}) == 1, seen
    assert len(every) == 2  # the circle and the occluder


def test_everything_object_that_left_the_frame_comes_back_with_its_id():
    tracker = PromptTracker(TrackerConfig(max_age=5), everything=True)
    seen: list[list[int]] = []
    for t in range(50):
        x = 60 - 8 * t if t < 15 else -100 if t < 35 else -60 + 8 * (t - 35)  # out from t = 11 to 37
        objects = [obj(1, "orange", "hexagon", x, 100), obj(2, "blue", "star", 250, 180)]
        out = tracker.update(*frame(objects, t))
        if x >= 20:
            seen.append(ids_at(out, x, 100))
    assert len(seen) > 10 and len({tuple(s) for s in seen}) == 1 and len(seen[0]) == 1, seen


def test_everything_second_mask_of_an_object_is_not_a_new_object():
    """The model gives one object a second, smaller mask (IoU 0.69: not a duplicate by IoU) from frame 3,
    and from frame 8 only that one: one id throughout."""
    tracker = PromptTracker(everything=True)
    ids = []
    for t in range(12):
        image, dets = frame([obj(1, "red", "circle", 100 + 3 * t, 100, 30), obj(2, "blue", "cross", 250, 160)], t)
        inner = cv2.erode(dets.mask[0].astype(np.uint8), np.ones((11, 11), np.uint8)).astype(bool)[None]
        second = sv.Detections(xyxy=sv.mask_to_xyxy(inner).astype(float), mask=inner, confidence=np.array([0.9]),
                               class_id=np.zeros(1, int))
        if t >= 3:
            dets = sv.Detections.merge([dets if t < 8 else dets[1:], second])
        out = tracker.update(image, dets)
        ids.append(ids_at(out, 100 + 3 * t, 100))
    assert all(i == ids[0] for i in ids) and len(ids[0]) == 1, ids


class _LooksByPlace:
    """A fake embedder: a segment looks like ``looks[x // 16]`` by its left edge's column x (unit vectors)."""

    def __init__(self, looks: list[np.ndarray]) -> None:
        self.looks = [v / np.linalg.norm(v) for v in looks]

    def encode_crops(self, image: np.ndarray, masks: np.ndarray) -> np.ndarray:
        return np.stack([self.looks[int(np.nonzero(m.any(axis=0))[0][0]) // 16] for m in masks])


def test_a_lost_object_is_found_where_its_motion_puts_it_by_looks_alone_elsewhere():
    from rtseg.track.acquire import NEAR, reacquire
    from rtseg.track.state import SegmentFrame, Track

    masks = np.zeros((2, 48, 64), bool)
    masks[0, 10:20, 2:12] = True  # where the lost object's motion puts it (columns 0-15)
    masks[1, 10:20, 34:44] = True  # elsewhere (columns 32-47)
    dets = sv.Detections(xyxy=sv.mask_to_xyxy(masks).astype(float), mask=masks, confidence=np.ones(2))
    cfg = TrackerConfig()
    mine, other = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])
    # both candidates 0.62 alike: below appearance_min (0.75), above NEAR * 0.75 (0.525)
    look = 0.62 * mine + np.sqrt(1 - 0.62 ** 2) * np.array([0.0, 1.0, 0.0])
    assert NEAR * cfg.appearance_min < float(look @ mine) < cfg.appearance_min
    lost = Track(mask=masks[0], centroid=np.array([6.5, 14.5]), area=100, id=1,
                 prompt=PointPrompt(((6, 14),), (1,)), lost=2, appearance=mine)
    image = np.zeros((48, 64, 3), np.uint8)

    def found(predicted, others_lost: int, others_look: np.ndarray = other) -> int | None:
        held = Track(mask=np.zeros((48, 64), bool), centroid=np.zeros(2), area=50, id=2,
                     prompt=PointPrompt(((60, 40),), (1,)), lost=others_lost, appearance=others_look)
        frame = SegmentFrame(image, dets, masks.copy())
        embedder = _LooksByPlace([look, look, look, look])
        return reacquire(lost, frame, [lost, held], embedder, cfg, predicted)

    assert found(masks[0], others_lost=0) == 0  # where it should be: found on lesser likeness
    assert found(None, others_lost=0) is None  # anywhere else it needs appearance_min
    shifted = np.roll(masks[0], 32, axis=1)
    assert found(shifted, others_lost=0) == 1  # the candidate at the predicted place, not the other one
    # another object that looks more like the candidate: it can only be that one if that one is missing too
    assert found(masks[0], others_lost=0, others_look=look) == 0
    assert found(masks[0], others_lost=3, others_look=look) is None
