"""ROS 2 without ROS: the message types (names, definitions, RIHS01 hashes), and ``--save-mcap``
read back with the two readers robotics users have (``mcap-ros2-support`` and ``rosbags``), equal
frame for frame to ``--save-json`` and ``--save-masks``; a run killed with SIGKILL leaves every
whole chunk readable; bad input is one line and exit 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv

from rtseg.cli import main
from rtseg.ros2 import types
from rtseg.output.rerun_view import RerunSink
from rtseg.ros2.bag import McapSink, recover
from rtseg.ros2.messages import mask_image

from conftest import DEMO_CONFIG, SHOWCASE, prompts_of, wait_until

# RIHS01 hashes of ROS 2 Jazzy's types, as `ros2 topic info -v` prints them (and rosidl's golden tests hold)
JAZZY = {
    "sensor_msgs/msg/Image": "RIHS01_d31d41a9a4c4bc8eae9be757b0beed306564f7526c88ea6a4588fb9582527d47",
    "sensor_msgs/msg/CompressedImage": "RIHS01_15640771531571185e2efc8a100baf923961a4d15d5569652e6cb6691e8e371a",
    "std_msgs/msg/Header": "RIHS01_f49fb3ae2cf070f793645ff749683ac6b06203e41c891e17701b1cb597ce6a01",
}
FRAMES = 12
NODE = "/robot1/seg/rtseg/"  # the topics of rtseg's node in the namespace /robot1/seg


def test_type_hashes_and_definitions_are_rosidls():
    for name, expected in JAZZY.items():
        assert types.type_hash(name) == expected
    text = types.definition(types.DETECTIONS_3D)
    assert "MSG: vision_msgs/BoundingBox3D\ngeometry_msgs/Pose center\ngeometry_msgs/Vector3 size" in text
    assert types.dds_name(types.IMAGE) == "sensor_msgs::msg::dds_::Image_"


def test_a_mask_image_is_mono8_until_an_id_needs_16_bits():
    mask = np.zeros((2, 6, 8), bool)
    mask[0, 1:3, 1:4], mask[1, 4:6, 5:8] = True, True
    stamp = types.new("std_msgs/msg/Header", stamp=types.new("builtin_interfaces/msg/Time", sec=1, nanosec=2),
                      frame_id="camera")
    for ids, encoding in (([3, 7], "mono8"), ([3, 300], "mono16")):
        d = sv.Detections(xyxy=np.array([[1, 1, 4, 3], [5, 4, 8, 6]], float), mask=mask, tracker_id=np.array(ids))
        msg = types.deserialize(types.serialize(mask_image(d, (6, 8), stamp), types.IMAGE), types.IMAGE)
        pixels = np.frombuffer(msg.data.tobytes(), "<u2" if encoding == "mono16" else np.uint8).reshape(6, 8)
        assert (msg.encoding, msg.step, msg.is_bigendian) == (encoding, 8 * (2 if encoding == "mono16" else 1), 0)
        assert pixels[1, 1] == ids[0] and pixels[5, 7] == ids[1] and (pixels > 0).sum() == mask.sum()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, demo_config, segmenter, text_scorer):
    """One point-prompted run over a synthetic scene with depth, to MCAP (with the source frames),
    a Rerun recording, JSON lines and mask PNGs at once: (folder, JSON records)."""
    from rtseg.capture.depth import with_depth
    from rtseg.capture.sources import open_source
    from rtseg.config import override
    from rtseg.output.sinks import JsonlSink, MaskSink
    from rtseg.runner import run
    from rtseg.session import Session
    from rtseg.synth.video import write_video

    out = tmp_path_factory.mktemp("mcap")
    meta = write_video(out / "scene", "occlusion", 103, frames=FRAMES, depth=True)
    session = Session.for_prompts(override(demo_config, camera=meta["intrinsics"]),
                                  prompts_of(out / "scene", "point"), segmenter=segmenter, text_scorer=text_scorer)
    with with_depth(open_source(str(out / "scene" / "video.mp4")), out / "scene" / "depth") as source:
        run(source, session, [JsonlSink(out / "t.jsonl"), MaskSink(out / "masks"),
                              McapSink(out / "t.mcap", "robot1/seg", frames=True), RerunSink(save=out / "t.rrd")])
    return out, [json.loads(line) for line in (out / "t.jsonl").read_text().splitlines()]


def check_frame(record: dict, detections, mask, objects_3d, masks_dir: Path) -> None:
    """One frame's messages against its JSON line and its mask PNG (``objects_3d`` None: a frame without depth)."""
    from rtseg.output.png import read_index_png

    assert [d.id for d in detections.detections] == [str(o["id"]) for o in record["objects"]]
    for d, o in zip(detections.detections, record["objects"]):
        x1, y1, x2, y2 = o["box"]
        assert (d.bbox.center.position.x, d.bbox.center.position.y) == ((x1 + x2) / 2, (y1 + y2) / 2)
        assert (d.bbox.size_x, d.bbox.size_y) == (x2 - x1, y2 - y1)
        assert (d.results[0].hypothesis.class_id, d.results[0].hypothesis.score) == (o["prompt"], o["score"])
    assert mask.encoding == "mono8" and (mask.height, mask.width) == (480, 640)
    pixels = np.frombuffer(bytes(mask.data), np.uint8).reshape(480, 640)
    assert np.array_equal(pixels, read_index_png(masks_dir / f"{record['index']:05d}.png"))
    if objects_3d is None:
        assert all("xyz" not in o for o in record["objects"])
        return
    deep = [o for o in record["objects"] if o["depth_pixels"]]
    assert [d.id for d in objects_3d.detections] == [str(o["id"]) for o in deep]
    for d, o in zip(objects_3d.detections, deep):
        p = d.bbox.center.position
        assert [p.x, p.y, p.z] == o["xyz"] and [d.bbox.size.x, d.bbox.size.y, d.bbox.size.z] == o["extent"]


def test_mcap_read_by_mcap_ros2_equals_json_and_masks(recorded):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    out, records = recorded
    assert len(records) == FRAMES and sum(len(r["objects"]) for r in records) >= FRAMES
    by_topic: dict[str, list] = {}
    with open(out / "t.mcap", "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        assert reader.get_header().profile == "ros2"
        for schema, channel, message, msg in reader.iter_decoded_messages():
            assert schema.encoding == "ros2msg" and channel.message_encoding == "cdr"
            assert message.log_time == msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            by_topic.setdefault(channel.topic, []).append(msg)
    assert sorted(by_topic) == [NODE + t for t in ("detections", "image/compressed", "mask_image", "objects_3d")]
    assert {len(v) for v in by_topic.values()} == {FRAMES}
    for i, record in enumerate(records):
        check_frame(record, by_topic[NODE + "detections"][i], by_topic[NODE + "mask_image"][i],
                    by_topic[NODE + "objects_3d"][i], out / "masks")
    frame = cv2.imdecode(np.frombuffer(bytes(by_topic[NODE + "image/compressed"][0].data), np.uint8),
                         cv2.IMREAD_COLOR)
    source = cv2.VideoCapture(str(out / "scene" / "video.mp4")).read()[1]
    assert frame.shape == source.shape and np.abs(frame.astype(int) - source).mean() < 3  # JPEG of the frame


def test_mcap_read_by_rosbags_equals_json_and_masks(recorded):
    from rosbags.rosbag2 import Reader

    out, records = recorded
    with Reader(out / "t.mcap") as reader:
        found = {c.topic: (c.msgtype, c.msgcount) for c in reader.connections}
        assert found[NODE + "detections"] == (types.DETECTIONS_2D, FRAMES)
        assert found[NODE + "mask_image"] == (types.IMAGE, FRAMES)
        assert reader.connections[0].ext.offered_qos_profiles[0].depth == 10  # rosbag2's QoS metadata read
        frames: dict[str, list] = {}
        stamps = []
        for connection, stamp, raw in reader.messages():
            msg = types.deserialize(raw, connection.msgtype)
            frames.setdefault(connection.topic, []).append(msg)
            stamps.append(stamp)
    assert stamps == sorted(stamps)
    for i, record in enumerate(records):
        check_frame(record, frames[NODE + "detections"][i], frames[NODE + "mask_image"][i],
                    frames[NODE + "objects_3d"][i], out / "masks")


def test_the_rerun_recording_has_the_3d_centroids_and_extents(recorded):
    from test_rerun import query

    out, records = recorded
    world = query(out / "t.rrd", "/world/objects").set_index("frame")
    checked = 0
    for r in records:
        deep = [o for o in r["objects"] if o["depth_pixels"]]
        if not deep:
            continue
        row = world.loc[r["index"]]
        assert row["/world/objects:Points3D:class_ids"].tolist() == [o["id"] for o in deep]
        np.testing.assert_allclose(np.stack(row["/world/objects:Points3D:positions"]), [o["xyz"] for o in deep],
                                   atol=1e-6)
        np.testing.assert_allclose(np.stack(row["/world/objects:Boxes3D:half_sizes"]) * 2,
                                   [o["extent"] for o in deep], atol=1e-6)
        checked += 1
    assert checked >= FRAMES - 2


def test_a_run_killed_with_sigkill_leaves_its_whole_chunks(tmp_path):
    from rtseg.ros2.messages import TOPICS

    from test_window import still_frames

    first = cv2.VideoCapture(str(SHOWCASE / "video.mp4")).read()[1]
    frames = still_frames(tmp_path / "frames", first, 20000)
    out = tmp_path / "t.mcap"
    proc = subprocess.Popen([sys.executable, "-m", "rtseg.cli", "track", str(frames), "--config", str(DEMO_CONFIG),
                             "--everything", "--no-show", "--quiet", "--save-mcap", str(out), "--mcap-frames",
                             "--save-json", str(tmp_path / "t.jsonl")], stderr=subprocess.PIPE)
    try:
        # at least two chunks on disk (a chunk is closed each second, or each MiB)
        wait_until(lambda: proc.poll() is not None or (out.exists() and chunks(out) >= 2), "two chunks", 600)
        assert proc.poll() is None, proc.stderr.read().decode()
        seen = sum(1 for topic, _, _ in recover(out) if topic.endswith("/detections"))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    got: dict[str, list] = {}
    for topic, _, data in recover(out):
        got.setdefault(topic.split("/rtseg/", 1)[1], []).append(data)
    records = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    n = len(got["detections"])
    assert n >= seen >= 2 and len(records) >= n  # every frame of a whole chunk; the JSON line is written first
    assert len(got["mask_image"]) == len(got["image/compressed"]) == n
    for record, data in zip(records, got["detections"]):
        msg = types.deserialize(data, TOPICS["detections"])
        assert [d.id for d in msg.detections] == [str(o["id"]) for o in record["objects"]]


def chunks(path: Path) -> int:
    """Whole chunks in an MCAP file being written."""
    from mcap.exceptions import McapError
    from mcap.records import Chunk
    from mcap.stream_reader import StreamReader

    count = 0
    with open(path, "rb") as f:
        try:
            for record in StreamReader(f, emit_chunks=True).records:
                count += isinstance(record, Chunk)
        except (McapError, EOFError, ValueError):
            pass
    return count


@pytest.mark.parametrize("options,message", [
    (["--ros-namespace", "my-robot"],
     "rtseg: error: ROS 2 namespace 'my-robot': '-' is not allowed (letters, digits, _ and /)"),
    (["--ros-namespace", "robot/1st"], "rtseg: error: ROS 2 namespace 'robot/1st': a name starts with a digit"),
])
def test_bad_namespaces_are_one_line_and_exit_2(tmp_path, capsys, options, message):
    code = main(["track", str(SHOWCASE / "video.mp4"), "--config", str(DEMO_CONFIG), "--everything", "--no-show",
                 "--save-mcap", str(tmp_path / "t.mcap"), "--save-json", str(tmp_path / "t.jsonl"), *options])
    assert code == 2 and capsys.readouterr().err.strip() == message
    assert not (tmp_path / "t.mcap").exists() and not (tmp_path / "t.jsonl").exists()


def test_an_unwritable_mcap_path_is_one_line_and_exit_2(tmp_path, capsys):
    if os.geteuid() == 0:  # root writes anywhere: a folder in the way instead
        target, expected = tmp_path / "t.mcap", f"rtseg: error: cannot write {tmp_path / 't.mcap'}: it is a folder"
        target.mkdir()
    else:
        (tmp_path / "ro").mkdir()
        (tmp_path / "ro").chmod(0o500)
        target = tmp_path / "ro" / "t.mcap"
        expected = f"rtseg: error: cannot write to {tmp_path / 'ro'}: permission denied"
    code = main(["track", str(SHOWCASE / "video.mp4"), "--config", str(DEMO_CONFIG), "--everything", "--no-show",
                 "--max-frames", "2", "--save-mcap", str(target), "--save-json", str(tmp_path / "t.jsonl")])
    if (tmp_path / "ro").exists():
        (tmp_path / "ro").chmod(0o700)
    assert code == 2 and capsys.readouterr().err.strip() == expected
    assert not (tmp_path / "t.jsonl").exists()  # refused before anything was written
