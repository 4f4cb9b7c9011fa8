"""Concept prompts (``--concept``): every instance of a phrase, each an object with its own id.

The decision rule on scenes whose CLIP verdicts the test sets (a fake CLIP that reads a square's
colour), then the bundled concept sample through ``rtseg track`` against its ground truth."""

from __future__ import annotations

import json

import numpy as np
import pytest
import supervision as sv

from rtseg.cli import main
from rtseg.config import override
from rtseg.errors import RtsegError
from rtseg.evaluate import load_folder
from rtseg.mot import evaluate_mot
from rtseg.prompt.prompts import BoxPrompt, ConceptPrompt, PointPrompt, load_prompts_file
from rtseg.session import Session
from rtseg.track.concepts import OTHER, UNSURE, Judge

from conftest import DEMO_CONFIG, ROOT

CONCEPT = ROOT / "samples" / "concept"
FLOORS = json.loads((ROOT / "tests" / "quality.json").read_text())
COLOURS = {"red": (0, 0, 255), "blue": (255, 0, 0), "green": (0, 255, 0)}  # BGR


class FakeClip:
    """Texts and crops in one space by colour: a crop is the colour its mask holds most of."""

    logit_scale = 100.0

    def __init__(self) -> None:
        self.crops = 0

    def encode_text(self, text: str) -> np.ndarray:
        return np.eye(4)[list(COLOURS).index(text)] if text in COLOURS else np.eye(4)[3]

    def encode_crops(self, image: np.ndarray, masks: np.ndarray) -> np.ndarray:
        self.crops += len(masks)
        out = []
        for m in masks:
            bgr = image[m].mean(axis=0)
            out.append(np.eye(4)[[1, 2, 0][int(np.argmax(bgr))]])  # B, G, R channel -> blue, green, red
        return np.array(out).reshape(-1, 4)


class Squares:
    """A fake segmenter of a scripted scene: ``script[t]`` lists frame t's squares as (x, y, colour)."""

    device = "cpu"

    def __init__(self, script: list[list[tuple[int, int, str]]]) -> None:
        self.script, self.t = script, 0

    def image(self, t: int) -> np.ndarray:
        out = np.full((100, 200, 3), 128, np.uint8)
        for x, y, colour in self.script[t]:
            out[y: y + 20, x: x + 20] = COLOURS[colour]
        return out

    def __call__(self, image: np.ndarray) -> sv.Detections:
        squares = self.script[self.t]
        self.t += 1
        masks = np.zeros((len(squares), 100, 200), bool)
        for k, (x, y, _) in enumerate(squares):
            masks[k, y: y + 20, x: x + 20] = True
        return sv.Detections(xyxy=sv.mask_to_xyxy(masks).astype(float), mask=masks, confidence=np.ones(len(squares)))


def follow(demo_config, script, **concepts) -> tuple[list[dict[int, tuple[int, int]]], FakeClip]:
    """Each frame's reported objects (id -> top-left corner of its box) for the concept "red"."""
    config = override(demo_config, concepts={"contrast": ["blue", "green"], **concepts}, tracker={"coast": 3})
    segmenter, clip = Squares(script), FakeClip()
    session = Session(config, segmenter=segmenter, text_scorer=clip)
    assert session.add(ConceptPrompt("red")) == 0
    out = []
    for t in range(len(script)):
        dets, _ = session.process(segmenter.image(t))
        assert set(dets.data["prompt"]) <= {"red"}
        out.append({int(i): (int(b[0]), int(b[1])) for i, b in zip(dets.tracker_id, dets.xyxy)})
    return out, clip


def test_a_segment_is_an_instance_after_two_agreeing_frames_and_a_flicker_never(demo_config):
    script = [[(10, 10, "red"), (150, 10, "blue")] + ([(80, 60, "red")] if t == 3 else []) for t in range(8)]
    frames, clip = follow(demo_config, script)
    assert frames[0] == {} and all(f == {1: (10, 10)} for f in frames[1:]), frames  # the one-frame red: never
    assert clip.crops == 2 + 1 + 1  # the two segments once, the red one again to agree, the flicker once


def test_instances_that_come_later_get_ids_of_their_own(demo_config):
    script = [[(10, 10, "red")] + ([(80, 60, "red")] if t >= 4 else []) + ([(150, 60, "red")] if t >= 6 else [])
              for t in range(10)]
    frames, _ = follow(demo_config, script)
    assert frames[5] == {1: (10, 10), 2: (80, 60)} and frames[9] == {1: (10, 10), 2: (80, 60), 3: (150, 60)}, frames


def test_one_odd_crop_does_not_drop_an_instance_two_in_a_row_do(demo_config):
    odd = {5}
    script = [[(10, 10, "blue" if t in odd else "red")] for t in range(9)]
    frames, _ = follow(demo_config, script, every=1)  # judged every frame
    assert all(f == {1: (10, 10)} for f in frames[1:]), frames
    script = [[(10, 10, "blue" if t in (5, 6) else "red")] for t in range(10)]
    frames, _ = follow(demo_config, script, every=1)
    assert frames[5] == {1: (10, 10)} and frames[6] == {} and frames[7] == {}  # dropped on the second
    assert frames[9] == {2: (10, 10)}, frames  # red again, two agreeing frames: an instance anew


def test_an_instance_that_leaves_is_retired_and_one_that_comes_later_is_new(demo_config):
    script = [[(10, 10, "red")] if t < 4 or t >= 12 else [] for t in range(15)]
    frames, _ = follow(demo_config, script)
    assert frames[3] == {1: (10, 10)} and frames[8] == {} and frames[13] == {2: (10, 10)}, frames


def test_the_judge_calibrates_against_the_other_phrases(demo_config):
    judge = Judge(FakeClip(), override(demo_config, concepts={"contrast": ["blue", "red", "green"]}).concepts)
    assert judge.add("red") == 0 and judge.add("red") == 0  # the same phrase twice is one concept
    votes, _ = judge.vote(np.array([np.eye(4)[0], np.eye(4)[1], np.ones(4) / 2]))
    assert votes.tolist() == [0, OTHER, UNSURE]  # red; blue (a contrast phrase); nothing sure
    assert len(judge.probabilities(np.eye(4)[:1])[0]) == 3  # "red" is a concept, not also a contrast


def test_several_concepts_cost_one_embedding_per_segment(demo_config):
    script = [[(10, 10, "red"), (150, 10, "blue"), (80, 60, "green")] for _ in range(6)]
    config = override(demo_config, concepts={"contrast": ["green"]}, tracker={"coast": 3})
    segmenter, clip = Squares(script), FakeClip()
    session = Session(config, segmenter=segmenter, text_scorer=clip)
    session.add(ConceptPrompt("red"))
    session.add(ConceptPrompt("blue"))
    for t in range(6):
        dets, _ = session.process(segmenter.image(t))
    assert sorted(dets.data["prompt"]) == ["blue", "red"] and clip.crops == 3 + 2  # once each, and the agreeing two


# -- bad input -------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, words", [
    (["--concept", " "], "empty --concept phrase"),
    (["--concept", "the red circle", "--everything"], "give one"),
    (["--concept", "the red circle", "--clip-model", ""], "a concept prompt needs a CLIP model"),
    (["--concept", "the red circle", "--neg", "5,5"], "comes before any --point, --box or --text"),
])
def test_bad_concept_options_are_one_line_and_exit_2(argv, words, capsys):
    code = main(["track", str(CONCEPT / "video.mp4"), "--config", str(DEMO_CONFIG), "--max-frames", "1", *argv])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and words in lines[0], lines


@pytest.mark.parametrize("entry", ["concept: ''", "concept: [1]", "concept: x\n    neg: [[1, 2]]"])
def test_a_bad_concept_in_a_prompts_file_is_refused(tmp_path, entry):
    path = tmp_path / "prompts.yaml"
    path.write_text(f"objects:\n  - {entry}\n")
    with pytest.raises(RtsegError, match="concept takes a phrase alone"):
        load_prompts_file(path)


# -- the bundled sample ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("concept")
    code = main(["track", str(CONCEPT / "video.mp4"), "--config", str(DEMO_CONFIG), "--prompts",
                 str(CONCEPT / "prompts.yaml"), "--no-show", "--quiet", "--save-masks", str(out / "masks"),
                 "--save-json", str(out / "tracks.jsonl")])
    assert code == 0
    return out


def test_every_instance_is_found_and_followed_as_pinned(sample_run):
    floors = FLOORS
    names, gt = load_folder(CONCEPT / "gt")
    _, pred = load_folder(sample_run / "masks", names)
    visible, every = evaluate_mot(pred, gt, min_visible=0.5), evaluate_mot(pred, gt)
    for key, value in (("concept/HOTA", visible["HOTA"]), ("concept/precision", visible["precision"]),
                       ("concept/recall", visible["recall"]), ("concept/HOTA-all", every["HOTA"])):
        print(key, round(value, 4))
        assert value >= floors.get(key, 1.0) - floors["margin"], (key, value, floors.get(key))


def test_records_name_the_phrase_and_later_instances_get_new_ids(sample_run):
    records = [json.loads(line) for line in (sample_run / "tracks.jsonl").read_text().splitlines()]
    assert len(records) == 150
    first: dict[int, int] = {}
    for r in records:
        assert len({o["id"] for o in r["objects"]}) == len(r["objects"])
        for o in r["objects"]:
            assert o["prompt"] == "the orange hexagon"
            first.setdefault(o["id"], r["index"])
    entered = sorted(json.loads((CONCEPT / "objects.json").read_text())["objects"], key=lambda o: o["id"])
    assert len(entered) == 8 and len(first) >= 8 and max(first.values()) >= 95, first  # the last enters at 95


# -- corrections to a running object ---------------------------------------------------------------

def run_with(demo_config, script, fixes: dict[int, tuple], **concepts):
    """``follow`` with ``fixes[t] = (oid, prompt)`` given to ``Session.correct`` before frame t."""
    config = override(demo_config, concepts={"contrast": ["blue", "green"], **concepts}, tracker={"coast": 3})
    segmenter, clip = Squares(script), FakeClip()
    session = Session(config, segmenter=segmenter, text_scorer=clip)
    session.add(ConceptPrompt("red"))
    out = []
    for t in range(len(script)):
        if t in fixes:
            session.correct(*fixes[t])
        dets, _ = session.process(segmenter.image(t))
        out.append({int(i): (int(b[0]), int(b[1])) for i, b in zip(dets.tracker_id, dets.xyxy)})
        assert set(dets.data["prompt"]) <= {"red"}  # an instance corrected stays the concept's
    return out, session


def test_a_new_box_moves_an_instance_to_what_the_user_says_at_once_and_keeps_its_id(demo_config):
    script = [[(10, 10, "red"), (150, 60, "blue")] for _ in range(10)]
    frames, _ = run_with(demo_config, script, {4: (1, BoxPrompt((148.0, 58.0, 172.0, 82.0)))}, every=1)
    assert frames[3] == {1: (10, 10)} and frames[4][1] == (150, 60), frames  # on the frame it was given for
    assert all(f[1] == (150, 60) for f in frames[4:]), frames  # kept: CLIP says blue, the user said otherwise


def test_a_negative_point_takes_the_bled_part_off_an_instance(demo_config):
    # the object (a red square) came as one segment with the grey beside it; from frame 3 also alone
    wide = np.zeros((100, 200), bool)
    wide[10:30, 10:50] = True

    class Bleeding(Squares):
        def __call__(self, image):
            t, self.t = self.t, self.t + 1
            masks = [wide] + ([np.pad(np.ones((20, 20), bool), ((10, 70), (10, 170)))] if t >= 3 else [])
            masks = np.stack(masks)
            return sv.Detections(xyxy=sv.mask_to_xyxy(masks).astype(float), mask=masks, confidence=np.ones(len(masks)))

    config = override(demo_config, concepts={"contrast": ["blue", "green"]}, tracker={"coast": 3})

    def widths_with(*fixes) -> list[dict[int, int]]:
        segmenter = Bleeding([[(10, 10, "red")] for _ in range(8)])
        session = Session(config, segmenter=segmenter, text_scorer=FakeClip())
        session.add(ConceptPrompt("red"))
        widths = []
        for t in range(8):
            if t == 5:
                for fix in fixes:
                    fix(session)
            dets, _ = session.process(segmenter.image(t))
            widths.append({int(i): int(b[2] - b[0]) for i, b in zip(dets.tracker_id, dets.xyxy)})
        return widths

    widths = widths_with(lambda s: s.add_negative(1, (45.0, 20.0)))  # on the grey the mask bled into
    assert widths[4] == {1: 39} and widths[5] == {1: 19} and widths[7] == {1: 19}, widths  # boxes: inclusive
    # two negative points at once, and two clicks between the same two frames: the same outcome
    assert widths_with(lambda s: s.correct(1, PointPrompt(((45.0, 20.0), (40.0, 25.0)), (0, 0)))) == widths
    assert widths_with(lambda s: s.add_negative(1, (45.0, 20.0)), lambda s: s.add_negative(1, (40.0, 25.0))) == widths


def test_a_correction_for_no_such_object_or_outside_the_frame_changes_nothing(demo_config):
    script = [[(10, 10, "red")] for _ in range(4)]
    frames, session = run_with(demo_config, script, {})
    before = [(t.id, t.prompt) for t in session.tracker.tracks]
    with pytest.raises(RtsegError, match="no object 7"):
        session.correct(7, PointPrompt(((5.0, 5.0),), (0,)))
    with pytest.raises(RtsegError, match="outside the 200x100 frame"):
        session.correct(1, BoxPrompt((300.0, 10.0, 320.0, 30.0)))
    assert [(t.id, t.prompt) for t in session.tracker.tracks] == before and not session.tracker.pending


def test_window_gestures_correct_the_object_clicked_on(demo_config):
    import cv2

    from rtseg.output.window import Window, _Frame

    script = [[(10, 10, "red"), (80, 60, "red")] for _ in range(4)]
    frames, session = run_with(demo_config, script, {})
    image = Squares(script).image(0)
    dets, _ = session.process(image, Squares(script)(image))
    window = Window(session)
    window.shown = _Frame(np.zeros((100, 200, 3), np.uint8), (200, 100), dets)
    window._on_mouse(cv2.EVENT_RBUTTONDOWN, 85, 65, 0, None)  # a negative point on object 2
    assert [(i, str(p)) for i, p in session.tracker.pending] == [(2, "box 80,60,100,80 -85,65")]
    window._on_mouse(cv2.EVENT_LBUTTONDOWN, 12, 12, cv2.EVENT_FLAG_SHIFTKEY, None)  # Shift + drag from object 1
    window._on_mouse(cv2.EVENT_LBUTTONUP, 60, 40, cv2.EVENT_FLAG_SHIFTKEY, None)
    assert (1, "box 12,12,60,40") in [(i, str(p)) for i, p in session.tracker.pending]
    window._on_mouse(cv2.EVENT_MBUTTONDOWN, 15, 15, 0, None)  # middle click: forget object 1
    assert 1 not in session.tracker.prompts and window.messages == []


def test_a_prompts_file_correction_applies_on_the_frame_it_names(tmp_path, capsys):
    from rtseg.output.png import read_index_png

    from conftest import SHOWCASE

    def track(name: str, entries: str) -> tuple[int, list[str]]:
        (tmp_path / f"{name}.yaml").write_text("objects:\n  - points: [[563, 300]]\n" + entries)
        code = main(["track", str(SHOWCASE / "video.mp4"), "--config", str(DEMO_CONFIG), "--prompts",
                     str(tmp_path / f"{name}.yaml"), "--max-frames", "10", "--no-show", "--quiet",
                     "--save-masks", str(tmp_path / name)])
        return code, [line for line in capsys.readouterr().err.splitlines() if line.strip()]

    assert track("plain", "")[0] == 0
    assert track("fixed", "  - {id: 1, at: 6, box: [6, 114, 59, 167]}\n")[0] == 0  # another object's box
    plain, fixed = ([read_index_png(tmp_path / n / f"{k:05d}.png") for k in range(10)] for n in ("plain", "fixed"))
    assert all(np.array_equal(a, b) for a, b in zip(plain[:6], fixed[:6]))
    box = np.zeros_like(fixed[6], bool)
    box[114:167, 6:59] = True
    assert (fixed[6] == 1).any() and ((fixed[6] == 1) & box).sum() > 0.8 * (fixed[6] == 1).sum()  # moved there on 6
    assert not ((plain[6] == 1) & box).any()
    code, lines = track("bad", "  - {id: 5, at: 3, neg: [[1, 1]]}\n")
    assert code == 2 and len(lines) == 1 and "prompts file entry at frame 3: no object 5" in lines[0], lines
    assert sorted(p.name for p in (tmp_path / "bad").iterdir())[:3] == ["00000.png", "00001.png", "00002.png"]


@pytest.mark.parametrize("entry, words", [
    ("{id: 1, at: -1, neg: [[1, 2]]}", "at is a frame index"),
    ("{id: 1, at: 3}", "exactly one of points, neg, box, forget"),
    ("{id: 1, at: 3, forget: false}", "exactly one of points, neg, box, forget"),
    ("{id: x, at: 3, box: [1, 2, 3, 4]}", "id is an object id"),
])
def test_bad_timed_entries_are_refused(tmp_path, entry, words):
    from rtseg.prompt.prompts import load_timeline

    path = tmp_path / "p.yaml"
    path.write_text(f"objects:\n  - {entry}\n")
    with pytest.raises(RtsegError, match=words):
        load_timeline(path)
    with pytest.raises(RtsegError, match="taken by rtseg track only"):
        path.write_text("objects:\n  - {id: 1, at: 3, box: [1, 2, 30, 40]}\n")
        load_prompts_file(path)


def test_rtseg_eval_gives_the_same_figures_with_the_visibility_rule(sample_run, capsys):
    names, gt = load_folder(CONCEPT / "gt")
    _, pred = load_folder(sample_run / "masks", names)
    assert main(["eval", str(sample_run / "masks"), str(CONCEPT / "gt"), "--mot", "--min-visible", "0.5",
                 "--json", str(sample_run / "scores.json")]) == 0
    mot = json.loads((sample_run / "scores.json").read_text())["mot"]
    expected = evaluate_mot(pred, gt, min_visible=0.5)
    assert {k: mot[k] for k in ("HOTA", "precision", "recall")} == pytest.approx(
        {k: expected[k] for k in ("HOTA", "precision", "recall")})
    assert mot["HOTA"] > evaluate_mot(pred, gt)["HOTA"]  # what the rule leaves out: slivers, hidden parts
