"""End-to-end quality through the bundled models, pinned to stored numbers (tests/quality.json).

Each floor is the value measured when it was stored minus a small margin, and never below what the
product promises (mean J >= 0.85 per scenario and prompt kind, >= 0.75 for an object that leaves
the frame and comes back).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rtseg.track.associate import iou_matrix
from rtseg.evaluate import evaluate_arrays

from conftest import SHOWCASE, ground_truth, prompts_of, run_labels

FLOORS = json.loads((Path(__file__).with_name("quality.json")).read_text())
PROMISE = {"occlusion": 0.85, "crossing": 0.85, "fast": 0.85, "shake": 0.85, "exit": 0.85}
KINDS = ("point", "box", "text")


def floor(key: str, promise: float) -> float:
    return max(promise, FLOORS[key] - FLOORS["margin"])


def track(tracked, video: Path, kind: str) -> tuple[np.ndarray, np.ndarray]:
    return tracked(video, kind), ground_truth(video)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scenario", sorted(PROMISE))
def test_mean_j_per_scenario(tracked, synth_video, scenario, kind):
    pred, gt = track(tracked, synth_video(scenario), kind)
    result = evaluate_arrays(pred, gt)
    j = result["overall"]["J"]
    assert j >= floor(f"{scenario}/{kind}", PROMISE[scenario]), result["objects"]
    if scenario == "exit":  # object 3 leaves the frame and comes back
        assert result["objects"]["3"]["J"] >= floor(f"exit-object/{kind}", 0.75)


@pytest.mark.parametrize("kind", KINDS)
def test_showcase_sample(tracked, kind):
    pred, gt = track(tracked, SHOWCASE, kind)
    result = evaluate_arrays(pred, gt)
    assert result["overall"]["J"] >= floor(f"showcase/{kind}", 0.85), result["objects"]


# A segment that two objects claim (#14): at imgsz 320 the model merges the showcase's purple square
# (object 1) with the red square as they touch; the segment is shared out between the two by their
# predicted masks instead of going to one of them (object 1 was lost from there on: J 0.35).
SHOWCASE_320 = "showcase-320/object-1"


def track_showcase_at_320(config, text_scorer) -> np.ndarray:
    """Label maps of the showcase's own prompts (samples/showcase/prompts.yaml) tracked at imgsz 320."""
    from rtseg.config import override
    from rtseg.prompt.prompts import load_prompts_file
    from rtseg.session import Session

    session = Session.for_prompts(override(config, model={"imgsz": 320}), load_prompts_file(SHOWCASE / "prompts.yaml"),
                                  text_scorer=text_scorer)
    return run_labels(session, SHOWCASE)


def test_touching_objects_merged_at_imgsz_320_are_both_kept(demo_config, text_scorer):
    pred, gt = track_showcase_at_320(demo_config, text_scorer), ground_truth(SHOWCASE)
    result = evaluate_arrays(pred, gt)
    assert result["objects"]["1"]["J"] >= floor(SHOWCASE_320, 0.85), result["objects"]
    assert id_switches(pred, gt) == 0


# Camera resolutions (#15): one scene, 7 objects that overlap and occlude each other (crowd, seed 11,
# 30 frames), made at 640x480 and at the 16:9 camera sizes, where the generator scales objects, speeds
# and textures with the frame (scale_for: x1.5 at 1280x720, x2.25 at 1920x1080). Floors only: the
# demo model sees a 16:9 frame at imgsz 640 with objects at 0.75 of their 640x480 size.
CAMERA_SCENE = ("crowd", 11, 30)  # scenario, seed, frames
CAMERA_SIZES = ((640, 480), (1280, 720), (1920, 1080))


def camera_key(size: tuple[int, int], kind: str) -> str:
    return f"{CAMERA_SCENE[0]}-{size[0]}x{size[1]}/{kind}"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", CAMERA_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_quality_at_camera_resolutions(tracked, synth_video, size, kind):
    scenario, seed, frames = CAMERA_SCENE
    pred, gt = track(tracked, synth_video(scenario, seed, size, frames), kind)
    assert pred.shape == gt.shape == (frames, size[1], size[0])  # masks at the frame's own size
    result = evaluate_arrays(pred, gt)
    assert result["overall"]["J"] >= FLOORS[camera_key(size, kind)] - FLOORS["margin"], result["objects"]


def swaps(pred: np.ndarray, gt: np.ndarray, a: int, b: int) -> int:
    """Frames where the track of object a covers object b better than a (or the other way round)."""
    n = 0
    for p, g in zip(pred, gt):
        iou = iou_matrix(np.stack([p == a, p == b]), np.stack([g == a, g == b]))
        n += int(iou[0, 1] > iou[0, 0] or iou[1, 0] > iou[1, 1])
    return n


@pytest.mark.parametrize("kind", KINDS)
def test_no_identity_swap_when_same_shapes_cross(tracked, synth_video, kind):
    video = synth_video("crossing")  # the same runs as test_mean_j_per_scenario's
    meta = json.loads((video / "objects.json").read_text())
    assert meta["objects"][0]["shape"] == meta["objects"][1]["shape"]
    pred, gt = track(tracked, video, kind)
    assert swaps(pred, gt, 1, 2) == 0


def id_switches(pred: np.ndarray, gt: np.ndarray) -> int:
    """For each ground-truth object, how often the track id covering it (IoU > 0.5) changes."""
    total = 0
    for oid in [int(i) for i in np.unique(gt) if i]:
        last = None
        for p, g in zip(pred, gt):
            ids, counts = np.unique(p[g == oid], return_counts=True)
            best = None
            for tid, c in zip(ids, counts):
                if tid and c / ((p == tid) | (g == oid)).sum() > 0.5:
                    best = int(tid)
            if best is not None:
                total += int(last is not None and best != last)
                last = best
    return total


EVERYTHING_VIDEOS = ["crossing", "occlusion", "fast", "shake", "showcase"]


@pytest.mark.parametrize("scenario", EVERYTHING_VIDEOS)
def test_everything_keeps_ids(tracked, synth_video, scenario):
    video = SHOWCASE if scenario == "showcase" else synth_video(scenario)
    pred, gt = tracked(video, "everything"), ground_truth(video)
    assert id_switches(pred, gt) <= FLOORS[f"everything-idsw/{scenario}"]


@pytest.mark.parametrize("scenario", EVERYTHING_VIDEOS)
def test_everything_hota_is_pinned(tracked, synth_video, scenario):
    """rtseg's HOTA in ``--everything`` mode (TrackEval through rtseg.mot), on the same runs as the
    identity check above (moved here from tests/test_mot.py, which made each run again)."""
    from rtseg.mot import evaluate_mot

    video = SHOWCASE if scenario == "showcase" else synth_video(scenario)
    m = evaluate_mot(tracked(video, "everything"), ground_truth(video), scenario)
    assert m["HOTA"] >= FLOORS[f"everything-hota/{scenario}"] - FLOORS["margin"], m


def test_text_runs_clip_only_on_acquisition(make_session, synth_video, text_scorer):
    video = synth_video("crossing")
    session = make_session()
    for prompt in prompts_of(video, "text"):
        session.add(prompt)
    before_crops, texts_before = text_scorer.crops_encoded, set(text_scorer._texts)
    segments = 0
    for result in session.run(video / "video.mp4"):
        segments += len(session.segmenter(result.image))
    crops = text_scorer.crops_encoded - before_crops
    assert 0 < crops < 0.1 * segments  # CLIP saw a few crops, not every mask of every frame
    assert set(text_scorer._texts) - texts_before <= {p.text for p in prompts_of(video, "text")}


KEYFRAME_VIDEOS = (*sorted(PROMISE), "showcase")


def track_keyframes(make_session, video: Path, every: int) -> tuple[np.ndarray, float]:
    """Label maps of a point-prompted run in keyframe mode, and the fraction of frames segmented."""
    from rtseg.output.records import label_map

    session = make_session(keyframes=every)
    for prompt in prompts_of(video, "point"):
        session.add(prompt)
    labels, segmented = [], 0
    for r in session.run(video / "video.mp4"):
        labels.append(label_map(r.detections, r.image.shape[:2]))
        segmented += "segment" in r.timings
    return np.stack(labels), segmented / len(labels)


@pytest.mark.parametrize("name", KEYFRAME_VIDEOS)
def test_keyframe_mode_keeps_quality(make_session, synth_video, name):
    """Segmenting every 4th frame at most (objects carried in between) stays within 0.05 mean J of
    segmenting every frame, and skips frames: the share segmented is pinned as a maximum."""
    video = SHOWCASE if name == "showcase" else synth_video(name)
    pred, segmented = track_keyframes(make_session, video, 4)
    j = evaluate_arrays(pred, ground_truth(video))["overall"]["J"]
    assert j >= FLOORS[f"{name}/point"] - 0.05
    assert j >= FLOORS[f"keyframes/{name}"] - FLOORS["margin"]
    assert segmented <= FLOORS[f"keyframes-segmented/{name}"] + 0.05
