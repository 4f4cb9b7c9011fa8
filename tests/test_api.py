"""The Python API: a Session iterated over a source, and fed frame by frame."""

from __future__ import annotations

import numpy as np
import supervision as sv

from rtseg import PointPrompt, Session, TextPrompt
from rtseg.capture.sources import open_source

from conftest import SHOWCASE, ground_truth


def test_session_run_yields_detections_per_frame(make_session):
    session = make_session()
    assert session.add(TextPrompt("the red star")) == 1
    assert session.add(PointPrompt(((563, 300),), (1,))) == 2
    gt = ground_truth(SHOWCASE)
    results = []
    for result in session.run(str(SHOWCASE / "video.mp4")):
        results.append(result)
        if result.index == 19:
            break
    assert [r.index for r in results] == list(range(20))
    for r in results:
        d = r.detections
        assert isinstance(d, sv.Detections) and d.mask.shape[1:] == (480, 640)
        assert set(d.tracker_id.tolist()) == {1, 2}
        assert set(r.timings) == {"segment", "track"}
        star = d.mask[d.tracker_id.tolist().index(1)]
        assert (star & (gt[r.index] == 3)).sum() / (star | (gt[r.index] == 3)).sum() > 0.7
    assert list(results[0].detections.data["prompt"]) in (["the red star", "point +563,300"],
                                                           ["point +563,300", "the red star"])


def test_session_process_one_frame_at_a_time(make_session):
    session = make_session(everything=True)
    with open_source(str(SHOWCASE / "video.mp4")) as src:
        frames = [f.image for _, f in zip(range(5), src)]
    ids = [set(session.process(image)[0].tracker_id.tolist()) for image in frames]
    assert ids[0] and all(len(ids[0] & later) >= len(ids[0]) - 1 for later in ids[1:])


class MovingSquare:
    """A fake segmenter: one square moving right, and a still one."""

    device = "cpu"

    def __init__(self) -> None:
        self.t = 0

    def __call__(self, image: np.ndarray) -> sv.Detections:
        masks = np.zeros((2, 100, 200), bool)
        masks[0, 40:60, 10 + 5 * self.t: 30 + 5 * self.t] = True
        masks[1, 70:90, 150:170] = True
        self.t += 1
        return sv.Detections(xyxy=sv.mask_to_xyxy(masks).astype(float), mask=masks, confidence=np.ones(2))


def test_any_segmenter_fits_the_loop(demo_config, text_scorer):
    session = Session(demo_config, segmenter=MovingSquare(), text_scorer=text_scorer)
    session.add(PointPrompt(((20, 50),), (1,)))
    for t in range(20):
        dets, _ = session.process(np.zeros((100, 200, 3), np.uint8))
        assert dets.tracker_id.tolist() == [1]
        assert dets.mask[0][50, 20 + 5 * t]
