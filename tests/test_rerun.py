"""Rerun output: a saved recording read back with Rerun's own dataframe API (its catalog server)
holds, frame for frame, the ids and boxes of --save-json, each object's area series, and the
annotation context's labels; a viewer that is not there is one line and exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rtseg.cli import main
from rtseg.output.rerun_view import RerunSink

from conftest import DEMO_CONFIG, SHOWCASE

FRAMES = 15


@pytest.fixture(scope="module")
def recording(tmp_path_factory, make_session):
    from rtseg.capture.sources import open_source
    from rtseg.output.sinks import JsonlSink
    from rtseg.runner import run

    out = tmp_path_factory.mktemp("rerun")
    session = make_session(everything=True)
    with open_source(str(SHOWCASE / "video.mp4")) as source:
        run(source, session, [JsonlSink(out / "t.jsonl"), RerunSink(save=out / "t.rrd")], max_frames=FRAMES)
    return out / "t.rrd", [json.loads(line) for line in (out / "t.jsonl").read_text().splitlines()]


def query(path, contents: str):
    """The rows of ``contents`` (entity paths) in the recording ``path``, by frame: Rerun's catalog
    server and dataframe API (the client is held while the query runs: DataFusion needs it)."""
    import rerun as rr

    with rr.server.Server(host="127.0.0.1", datasets={"run": [str(path)]}) as server:
        client = server.client()
        dataset = client.get_dataset("run")
        return dataset.filter_contents(contents).reader(index="frame").to_pandas()


def test_a_saved_recording_holds_the_ids_and_boxes_of_every_frame(recording):
    path, records = recording
    assert len(records) == FRAMES and min(len(r["objects"]) for r in records) >= 3
    boxes = query(path, "/camera/boxes").set_index("frame")
    assert sorted(boxes.index) == list(range(FRAMES))
    for r in records:
        row = boxes.loc[r["index"]]
        assert row["/camera/boxes:Boxes2D:class_ids"].tolist() == [o["id"] for o in r["objects"]]
        centers = np.stack(row["/camera/boxes:Boxes2D:centers"])
        half = np.stack(row["/camera/boxes:Boxes2D:half_sizes"])
        np.testing.assert_allclose(np.hstack([centers - half, centers + half]), [o["box"] for o in r["objects"]],
                                   atol=1e-3)
        assert list(row["/camera/boxes:Boxes2D:labels"]) == [f"{o['id']} {o['prompt']}" for o in r["objects"]]


def test_each_object_has_its_area_series_and_images_are_there(recording):
    path, records = recording
    oid = records[0]["objects"][0]["id"]
    series = query(path, f"/area/{oid}").set_index("frame")
    expected = {r["index"]: o["area"] for r in records for o in r["objects"] if o["id"] == oid}
    assert {k: float(series.loc[k][f"/area/{oid}:Scalars:scalars"][0]) for k in expected} == expected
    images = query(path, "/camera/**")
    assert images["frame"].nunique() == FRAMES
    assert any(c.startswith("/camera/objects:SegmentationImage") for c in images.columns)
    assert any(c.startswith("/camera/image:EncodedImage") for c in images.columns)


def test_no_viewer_to_connect_to_is_one_line_and_exit_2(tmp_path, capsys):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = main(["track", str(SHOWCASE / "video.mp4"), "--config", str(DEMO_CONFIG), "--everything", "--no-show",
                 "--rerun-connect", f"127.0.0.1:{port}", "--save-json", str(tmp_path / "t.jsonl")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith(f"rtseg: error: no Rerun viewer at 127.0.0.1:{port}") and "\n" not in err
    assert not (tmp_path / "t.jsonl").exists()


def test_a_viewer_to_start_needs_a_display(monkeypatch):
    from rtseg.errors import RtsegError

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(RtsegError, match="--rerun starts a viewer and needs a display"):
        RerunSink(spawn=True)
