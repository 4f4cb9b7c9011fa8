"""``rtseg bench`` on a short synthetic sample: every kind of row is produced and means what it says.

Only the shape and sense of the report are asserted here (timings belong in benchmarks, not tests).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from rtseg.bench.measure import steady_fps
from rtseg.capture.replay import Replay, ReplayCamera
from rtseg.capture.live import LiveSource
from rtseg.cli import main

from conftest import DEMO_CONFIG, SHOWCASE


@pytest.fixture(scope="module")
def report(synth_video, tmp_path_factory):
    sample = synth_video("crossing")
    out = tmp_path_factory.mktemp("bench")
    code = main(["bench", str(sample), "--config", str(DEMO_CONFIG), "--frames", "24", "--quiet",
                 "--runs", "forward,track-point,track-text,keyframes-point,ultralytics-point,ultralytics-text,"
                           "ultralytics-track,live", "--soak", "40", "--out", str(out / "runs"),
                 "--json", str(out / "r.json"), "--md", str(out / "r.md")])
    assert code == 0
    return json.loads((out / "r.json").read_text()), out / "runs" / sample.name


def test_every_run_has_a_row_with_its_measures(report):
    data, _ = report
    rows = {r["run"]: r for r in data["rows"]}
    assert set(rows) == {"forward", "track-point", "track-text", "keyframes-point", "ultralytics-point",
                         "ultralytics-text", "ultralytics-track", "live", "soak-40"}
    assert [i for i, _ in rows["soak-40"]["rss_trace"]] == [0, 40] and "growth_mb" in rows["soak-40"]
    for row in rows.values():
        assert row["fps"] > 0 and row["peak_rss_mb"] > 0
    assert rows["forward"]["mean_j"] is None  # no prompts, nothing to score
    for run in ("track-point", "track-text", "keyframes-point", "ultralytics-point", "ultralytics-track"):
        assert 0 <= rows[run]["mean_j"] <= 1
    assert rows["track-point"]["mean_j"] > 0.8  # the same pipeline the quality tests pin
    assert set(rows["track-point"]["ms"]) >= {"segment", "track", "frame", "output"}
    assert rows["track-point"]["segmented"] == 1.0
    assert rows["keyframes-point"]["segmented"] < 0.6 and "carry" in rows["keyframes-point"]["ms"]
    assert rows["live"]["latency_ms"]["p50"] > 0
    assert {"track_point_vs_forward", "track_text_vs_point", "keyframes_point_vs_track_point",
            "mean_j_min_rtseg_minus_best_peer"} <= set(data["summary"][rows["forward"]["sample"]])
    assert data["machine"]["cores"] and data["command"].startswith("rtseg bench")


def test_the_runs_write_what_rtseg_track_writes(report):
    _, runs = report
    assert "| track-point |" in (runs.parent.parent / "r.md").read_text()
    folder = runs / "track-point"
    assert (folder / "overlay.mp4").stat().st_size > 0
    assert len(list((folder / "masks").glob("*.png"))) == 24
    assert len((folder / "tracks.jsonl").read_text().splitlines()) == 24


def test_replay_sources_loop_and_keep_time():
    images = [np.full((8, 8, 3), i, np.uint8) for i in range(3)]
    frames = list(Replay(images, 10.0, 7))
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 1, 2, 0, 1, 2, 0]
    assert frames[5].time == pytest.approx(0.5)
    camera = ReplayCamera(images, 100.0)
    with LiveSource(0, "replay", capture=camera) as live:
        assert live.size == (8, 8) and live.fps == 100.0
        first = next(iter(live))
    assert first.image.shape == (8, 8, 3)
    assert steady_fps([0.1 * i for i in range(30)]) == pytest.approx(10.0)


def test_bad_bench_input_is_one_line(tmp_path, capsys):
    code = main(["bench", str(tmp_path / "nothing"), "--config", str(DEMO_CONFIG), "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "not a sample" in err[0]
    code = main(["bench", str(tmp_path), "--runs", "warp-speed", "--config", str(DEMO_CONFIG), "--out", str(tmp_path)])
    assert code == 2 and "unknown run" in capsys.readouterr().err


def test_a_stand_in_costs_one_model_and_answers_with_another():
    import supervision as sv

    from rtseg.bench.models import StandIn

    class Fake:
        device, path, model, kwargs = "cpu", "fake.pt", None, {}

        def __init__(self, n: int) -> None:
            self.n, self.calls = n, 0

        def __call__(self, image):
            self.calls += 1
            masks = np.zeros((self.n, *image.shape[:2]), bool)
            return sv.Detections(xyxy=np.zeros((self.n, 4)), mask=masks, confidence=np.ones(self.n))

    frames = [np.full((16, 16, 3), i, np.uint8) for i in range(3)]
    timed, answers = Fake(20), Fake(2)
    stand_in = StandIn(timed, answers, frames)
    assert answers.calls == 3 and timed.calls == 0  # answers computed before any timing
    out = stand_in(frames[1].copy())
    assert timed.calls == 1 and len(out) == 2
    out.mask[:] = True
    assert not stand_in(frames[1]).mask.any()  # each call gets its own copy


def test_premade_masks_are_the_prototypes_masks_made_before(segmenter):
    import cv2

    from rtseg.bench.models import Premade
    from rtseg.detections import PROTOTYPES, take

    ok, frame = cv2.VideoCapture(str(SHOWCASE / "video.mp4")).read()
    dets = segmenter(frame)
    assert ok and len(dets) >= 3
    protos = dets.metadata[PROTOTYPES]
    premade = Premade(protos, dets, frame.shape[:2])
    some = take(dets, np.array([len(dets) - 1, 0]))  # a subset, in another order
    for (a, ax, ay), (b, bx, by) in zip(premade.crops(some, frame.shape[:2]), protos.crops(some, frame.shape[:2])):
        assert (ax, ay) == (bx, by) and np.array_equal(a, b) and not a.flags.writeable
    assert np.array_equal(premade.full(some, frame.shape[:2]), protos.full(some, frame.shape[:2]))
    assert np.array_equal(premade.grid(some, frame.shape[:2], 4), protos.grid(some, frame.shape[:2], 4))


def test_a_waiting_forward_keeps_the_models_answers(report, synth_video, tmp_path):
    data, _ = report
    sample = synth_video("crossing")
    code = main(["bench", str(sample), "--config", str(DEMO_CONFIG), "--frames", "24", "--quiet",
                 "--forward-ms", "5", "--runs", "forward,track-point", "--out", str(tmp_path / "runs"),
                 "--json", str(tmp_path / "r.json")])
    assert code == 0
    waited = {r["run"]: r for r in json.loads((tmp_path / "r.json").read_text())["rows"]}
    plain = {r["run"]: r for r in data["rows"]}
    assert waited["forward"]["ms"]["forward"]["p50"] >= 5  # the wait, not the model
    assert waited["track-point"]["mean_j"] == plain["track-point"]["mean_j"]  # the same segments, tracked
    code = main(["bench", str(sample), "--config", str(DEMO_CONFIG), "--frames", "24", "--quiet", "--forward-ms",
                 "5", "--device-masks", "--runs", "track-point", "--out", str(tmp_path / "runs"),
                 "--json", str(tmp_path / "m.json")])
    (premade,) = json.loads((tmp_path / "m.json").read_text())["rows"]
    assert code == 0 and premade["mean_j"] == plain["track-point"]["mean_j"]  # the same masks, made before
    assert main(["bench", str(sample), "--device-masks", "--runs", "track-point", "--quiet",
                 "--out", str(tmp_path / "alone")]) == 2  # only beside a waiting forward
    assert main(["bench", str(sample), "--forward-ms", "5", "--runs", "ultralytics-point", "--quiet",
                 "--out", str(tmp_path / "peer")]) == 2  # a peer runs its own model: one line, no timing
