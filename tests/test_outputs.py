"""What `rtseg track` writes: indexed PNG masks, JSON lines and the overlay video agree."""

from __future__ import annotations

import json

import cv2
import numpy as np
import supervision as sv
from PIL import Image

from rtseg.cli import main
from rtseg.output.png import read_index_png

from conftest import DEMO_CONFIG, ground_truth


def test_masks_json_and_video_agree(synth_video, tmp_path, capsys):
    video = synth_video("crossing")
    meta = json.loads((video / "objects.json").read_text())
    a, b, c = meta["objects"]
    out = tmp_path / "run"
    code = main(["track", str(video / "video.mp4"), "--config", str(DEMO_CONFIG), "--quiet",
                 "--text", a["prompts"]["text"], "--point", "{},{}".format(*b["prompts"]["point"]),
                 "--box", ",".join(map(str, c["prompts"]["box"])), "--max-frames", "30",
                 "--output", str(out / "o.mp4"), "--save-masks", str(out / "m"), "--save-json", str(out / "t.jsonl")])
    assert code == 0, capsys.readouterr().err
    names = sorted(p.name for p in (out / "m").iterdir())
    assert names == [f"{i:05d}.png" for i in range(30)]
    with Image.open(out / "m" / "00000.png") as im:
        assert im.mode == "P" and im.size == (640, 480)
    records = [json.loads(line) for line in (out / "t.jsonl").read_text().splitlines()]
    assert [r["index"] for r in records] == list(range(30))
    assert np.allclose([r["time"] for r in records], np.arange(30) / meta["fps"], atol=1e-3)
    gt = ground_truth(video)
    for r in records:
        labels = read_index_png(out / "m" / f"{r['index']:05d}.png")
        assert set(np.unique(labels)) <= {0, 1, 2, 3}
        for o in r["objects"]:
            assert set(o) == {"id", "prompt", "box", "score", "area", "centroid", "mask"}
            mask = sv.rle_to_mask(o["mask"]["counts"], o["mask"]["size"][::-1])
            assert mask.sum() == o["area"]
            assert ((labels == o["id"]) <= mask).all()  # the PNG paints each object inside its mask
            x1, y1, x2, y2 = o["box"]
            ys, xs = np.nonzero(mask)
            assert x1 - 1 <= xs.min() and xs.max() <= x2 + 1 and y1 - 1 <= ys.min() and ys.max() <= y2 + 1
            assert abs(o["centroid"][0] - xs.mean()) < 0.1 and abs(o["centroid"][1] - ys.mean()) < 0.1
            g = gt[r["index"]] == o["id"]
            assert (mask & g).sum() / (mask | g).sum() > 0.6  # ids in command-line order
    prompts = {o["id"]: o["prompt"] for o in records[0]["objects"]}
    assert prompts == {1: a["prompts"]["text"], 2: "point +{},{}".format(*b["prompts"]["point"]),
                       3: "box " + ",".join(map(str, c["prompts"]["box"]))}
    cap = cv2.VideoCapture(str(out / "o.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 30
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (640, 480)

    assert main(["eval", str(out / "m"), str(video / "gt"), "--json", str(out / "scores.json")]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == ["object", "J&F", "J", "J_recall", "J_decay", "F", "F_recall", "F_decay"]
    scores = json.loads((out / "scores.json").read_text())
    # Frames 1-29 of the 88 scored ones (DAVIS leaves out the first and last) are predicted; the
    # missing masks count as empty predictions, so J is at most 29/88.
    assert set(scores["objects"]) == {"1", "2", "3"} and 0.25 < scores["overall"]["J"] <= 29 / 88 + 1e-9


def test_everything_and_image_sources(tmp_path, capsys):
    from conftest import SHOWCASE

    first = cv2.VideoCapture(str(SHOWCASE / "video.mp4")).read()[1]
    image = tmp_path / "one.png"
    cv2.imwrite(str(image), first)
    out = tmp_path / "t.jsonl"
    assert main(["track", str(image), "--config", str(DEMO_CONFIG), "--everything", "--save-json", str(out),
                 "--quiet"]) == 0
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(record["objects"]) >= 5 and sorted(o["id"] for o in record["objects"]) == list(
        range(1, len(record["objects"]) + 1))
    assert all(o["prompt"] == "everything" for o in record["objects"])


def test_live_overlay_video_plays_in_real_time(tmp_path):
    from rtseg.output.sinks import VideoFile

    image = np.zeros((48, 64, 3), np.uint8)
    with VideoFile(tmp_path / "v.mp4", 30, (64, 48)) as video:
        for t in (0.0, 0.1, 0.15, 0.5, 0.5):  # frames processed at these camera times
            video.write(image, at=t)
    assert video.frames == 16  # 0.5 s at 30 fps, plus the first frame
    cap = cv2.VideoCapture(str(tmp_path / "v.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 16


def test_the_overlay_video_is_scaled_to_output_size(synth_video, tmp_path, capsys):
    """A 1920x1080 source: the overlay video fits --output-size (aspect kept) or is full size with
    ``full``; masks and JSON stay at the source's size, and the overlay shows the object where the
    masks have it."""
    video = synth_video("crowd", size=(1920, 1080), frames=6)
    point = json.loads((video / "objects.json").read_text())["objects"][0]["prompts"]["point"]
    sizes = {}
    for size in ("800x800", "full"):
        out = tmp_path / size
        code = main(["track", str(video / "video.mp4"), "--config", str(DEMO_CONFIG), "--quiet", "--no-show",
                     "--point", "{},{}".format(*point), "--output", str(out / "o.mp4"), "--output-size", size,
                     "--save-masks", str(out / "m"), "--save-json", str(out / "t.jsonl")])
        assert code == 0, capsys.readouterr().err
        cap = cv2.VideoCapture(str(out / "o.mp4"))
        frames = []
        while (ok := cap.read())[0]:
            frames.append(ok[1])
        sizes[size] = frames[0].shape[:2]
        assert len(frames) == 6
        labels = read_index_png(out / "m" / "00005.png")
        assert labels.shape == (1080, 1920) and (labels == 1).sum() > 1000
        record = json.loads((out / "t.jsonl").read_text().splitlines()[-1])
        assert record["objects"][0]["mask"]["size"] == [1080, 1920]
        # the overlay differs from the source frame where the object is (its colour blended in)
        source = cv2.VideoCapture(str(video / "video.mp4"))
        for _ in range(6):
            image = source.read()[1]
        small = cv2.resize(image, frames[-1].shape[1::-1], interpolation=cv2.INTER_AREA)
        inside = cv2.resize((labels == 1).astype(np.uint8), frames[-1].shape[1::-1],
                            interpolation=cv2.INTER_NEAREST) > 0
        changed = np.abs(frames[-1].astype(int) - small.astype(int)).max(axis=2) > 25
        assert changed[inside].mean() > 0.8 and changed[~inside].mean() < 0.1
    assert sizes == {"800x800": (450, 800), "full": (1080, 1920)}


def test_a_live_video_is_written_at_the_loops_rate(tmp_path):
    """A loop at 4 FPS on a 30 FPS camera: the video is 4 FPS (not each frame encoded 7-8 times) and
    still plays in real time; a loop as fast as the camera keeps the camera's rate."""
    import supervision as sv

    from rtseg.output.sinks import StreamInfo, VideoSink
    from rtseg.session import FrameResult

    for rate, expected_fps in ((4, 4), (30, 30)):
        path = tmp_path / f"live-{rate}.mp4"
        sink = VideoSink(path)
        sink.open(StreamInfo("camera", 30.0, live=True))
        times = [i / rate for i in range(3 * rate)] + [3.0]  # 3 s of camera time
        for i, t in enumerate(times):
            image = np.full((48, 64, 3), i % 255, np.uint8)
            result = FrameResult(i, t, image, sv.Detections.empty())
            result.overlay = image
            sink.write(result)
        sink.close()
        cap = cv2.VideoCapture(str(path))
        assert round(cap.get(cv2.CAP_PROP_FPS)) == expected_fps
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3 * expected_fps + 1  # 3 s of it, plus the first frame
