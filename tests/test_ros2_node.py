"""``--ros2``: rtseg as a ROS 2 node on rmw_zenoh, checked with no ROS installed.

The keys, tokens and attachments against rmw_zenoh's design document (ros2/rmw_zenoh,
docs/design.md at commit 99a6a2b: its examples are quoted below as they are written there); then
a run on Zenoh the way rmw_zenoh sets it up (a router, here an in-process Zenoh router, and the
shipped session config with only its router's port replaced) that a plain Zenoh subscriber decodes
with rosbags and the official message definitions: ids, boxes and mask pixels equal --save-json and
--save-masks frame for frame, and a prompt sent on the ROS topic is acquired on the next frame tracked.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import re
import socket
import threading

import cv2
import numpy as np
import pytest

import conftest
from conftest import SHOWCASE
from test_ros2 import check_frame
from rtseg.errors import RtsegError
from rtseg.output.publish import open_zenoh
from rtseg.output.sinks import JsonlSink, MaskSink, Sink
from rtseg.prompt.prompts import PointPrompt
from rtseg.ros2 import rmw, types
from rtseg.ros2.node import SESSION_CONFIG, Ros2Node, check_node
from rtseg.runner import run

DEADLINE = 120.0  # bounds a hang only
wait_until = functools.partial(conftest.wait_until, timeout=DEADLINE, poll=0.01)
STRING_HASH = "RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18"


def test_keys_and_tokens_are_the_design_documents_examples():
    # "Topic and Service name mapping to Zenoh key expressions"
    assert rmw.topic_key(0, "/chatter", types.STRING) == f"0/chatter/std_msgs::msg::dds_::String_/{STRING_HASH}"
    assert rmw.topic_key(0, "/robot1/chatter", types.STRING) == \
        f"0/robot1/chatter/std_msgs::msg::dds_::String_/{STRING_HASH}"
    # "Graph Cache": the listener node and its subscription, the talker's publisher (depth 7)
    listener = rmw.Node("aac3178e146ba6f1fc6e6a4085e77f21", 2, "/", "listener")
    assert listener.token() == "@ros2_lv/2/aac3178e146ba6f1fc6e6a4085e77f21/0/0/NN/%/%/listener"
    assert listener.endpoint_token(10, "MS", "/chatter", types.STRING, rmw.RELIABLE_10) == (
        f"@ros2_lv/2/aac3178e146ba6f1fc6e6a4085e77f21/0/10/MS/%/%/listener/%chatter/std_msgs::msg::dds_::String_/"
        f"{STRING_HASH}/::,10:,:,:,,")
    talker = rmw.Node("8b20917502ee955ac4476e0266340d5c", 2, "/", "talker")
    assert talker.endpoint_token(10, "MP", "/chatter", types.STRING, "::,7:,:,:,,") == (
        f"@ros2_lv/2/8b20917502ee955ac4476e0266340d5c/0/10/MP/%/%/talker/%chatter/std_msgs::msg::dds_::String_/"
        f"{STRING_HASH}/::,7:,:,:,,")
    assert rmw.Node("z", 0, "/robot1", "rtseg").topic("detections") == "/robot1/rtseg/detections"
    # "Publishers": 8 + 8 bytes little-endian, one byte of GID length (16), the GID
    data = rmw.attachment(5, 1_700_000_000_123_456_789, bytes(range(16)))
    assert len(data) == 33 and data[16] == 16
    assert rmw.read_attachment(data) == (5, 1_700_000_000_123_456_789, bytes(range(16)))
    assert len(rmw.gid(listener.token())) == 16


@pytest.mark.parametrize("namespace,domain,message", [
    ("robot-1", "0", "ROS 2 namespace 'robot-1': '-' is not allowed (letters, digits, _ and /)"),
    ("/", "300", "ROS_DOMAIN_ID='300': expected an integer from 0 to 232"),
    ("/", "x", "ROS_DOMAIN_ID='x': expected an integer from 0 to 232"),
])
def test_a_bad_namespace_or_domain_is_refused(monkeypatch, namespace, domain, message):
    monkeypatch.setenv("ROS_DOMAIN_ID", domain)
    with pytest.raises(RtsegError) as err:
        check_node(namespace)
    assert str(err.value) == message


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def graph(tmp_path):
    """A Zenoh router on 127.0.0.1 (rmw_zenohd's role) and the shipped session config pointed at it."""
    port = free_port()
    router = open_zenoh(write_config(tmp_path / "router.json5", f'{{mode: "router", listen: {{endpoints: '
                                                                   f'["tcp/127.0.0.1:{port}"]}}, scouting: '
                                                                   f'{{multicast: {{enabled: false}}}}}}'))
    text = SESSION_CONFIG.read_text()
    assert text.count("tcp/localhost:7447") == 1
    session = write_config(tmp_path / "session.json5", text.replace("tcp/localhost:7447", f"tcp/127.0.0.1:{port}"))
    yield session
    router.close()


def write_config(path, text: str):
    path.write_text(text)
    return path


class Graph:
    """A plain Zenoh session on the ROS 2 graph: every sample under the node's topics, and its tokens."""

    def __init__(self, config, domain: int, namespace: str) -> None:
        self.session = open_zenoh(config)
        self.samples: list[tuple[str, bytes, bytes]] = []
        self.tokens: set[str] = set()
        self.came = threading.Condition()
        self.subs = [self.session.declare_subscriber(f"{domain}/{namespace.strip('/')}/rtseg/**", self._sample),
                     self.session.liveliness().declare_subscriber(f"@ros2_lv/{domain}/**", self._token, history=True)]

    def _sample(self, sample) -> None:
        with self.came:
            self.samples.append((str(sample.key_expr), sample.payload.to_bytes(),
                                 sample.attachment.to_bytes() if sample.attachment is not None else b""))
            self.came.notify_all()

    def _token(self, sample) -> None:
        with self.came:
            self.tokens.add(str(sample.key_expr))
            self.came.notify_all()

    def wait(self, predicate) -> None:
        with self.came:
            assert self.came.wait_for(lambda: predicate(self), DEADLINE), "the graph never showed it"

    def of(self, topic: str) -> list[tuple[str, bytes, bytes]]:
        with self.came:
            return [s for s in self.samples if f"/rtseg/{topic}/" in s[0]]

    def close(self) -> None:
        for s in self.subs:
            s.undeclare()
        self.session.close()


class KnownNode(Ros2Node):
    """Starts once the test's subscriber is matched (its own wait is a second at most)."""

    def open(self, stream) -> None:
        super().open(stream)
        wait_until(lambda: all(self.pub[t].matching_status.matching for t in ("detections", "mask_image", "events")),
                   "the graph's subscriber")


def test_a_run_on_the_ros2_graph_equals_the_saved_outputs(graph, make_session, tmp_path, monkeypatch):
    from rtseg.capture.replay import Replay
    from rtseg.capture.sources import open_source

    monkeypatch.setenv("ROS_DOMAIN_ID", "7")
    namespace = f"/t{os.getpid()}"
    listener = Graph(graph, 7, namespace)
    with open_source(str(SHOWCASE / "video.mp4")) as src:
        images = [f.image for _, f in zip(range(24), src)]
    session = make_session()
    session.add(PointPrompt(((563, 300),), (1,)))
    node = KnownNode(session, namespace, graph, overlay_hz=1000)
    prompts = listener.session.declare_publisher(rmw.topic_key(7, f"{namespace}/rtseg/prompts", types.STRING))
    from rtseg.output.png import read_index_png

    gt = read_index_png(SHOWCASE / "gt" / "00012.png") == 1  # the purple square (the point above: the red one)
    inside = cv2.distanceTransform(gt.view(np.uint8), cv2.DIST_L2, 5)
    y, x = (int(v) for v in np.unravel_index(np.argmax(inside), inside.shape))  # deep inside it at frame 12
    sent = threading.Event()

    def at_10(i: int) -> None:  # frame 11 is read once the prompt, sent after frame 10 is out, is in
        if i == 11:
            listener.wait(lambda g: len(g.of("detections")) >= 11)
            wait_until(lambda: prompts.matching_status.matching, "the node's prompt subscription")
            payload = types.serialize(types.new(types.STRING, data=json.dumps({"point": [x, y], "request_id": "r"})),
                                      types.STRING)
            prompts.put(payload, attachment=rmw.attachment(1, 0, bytes(16)))
            prompts.put(b"\x00\x01not a String", attachment=rmw.attachment(2, 0, bytes(16)))  # answered with an error
            sent.set()
            wait_until(lambda: node.requests.qsize() >= 2, "the prompts at the node")  # no pump meanwhile

    try:
        run(Replay(images, 30.0, len(images), on_frame=at_10), session,
            [JsonlSink(tmp_path / "t.jsonl"), MaskSink(tmp_path / "masks"), node])
        listener.wait(lambda g: len(g.of("detections")) >= 24 and len(g.of("mask_image")) >= 24
                      and len(g.of("events")) >= 2)
        tokens = set(listener.tokens)
    finally:
        listener.close()
    assert sent.is_set()
    records = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    detections = [types.deserialize(p, types.DETECTIONS_2D) for _, p, _ in listener.of("detections")]
    masks = [types.deserialize(p, types.IMAGE) for _, p, _ in listener.of("mask_image")]
    assert len(detections) == len(masks) == len(records) == 24
    for record, msg, mask in zip(records, detections, masks):  # as test_ros2 checks the MCAP bag's frames
        check_frame(record, msg, mask, None, tmp_path / "masks")
    # the prompt on ~/prompts: answered on ~/events, its object in the detections within 2 frames
    event, error = (json.loads(types.deserialize(p, types.STRING).data) for _, p, _ in listener.of("events"))
    assert event["event"] == "added" and event["id"] == 2 and event["request_id"] == "r"
    assert error["event"] == "error" and error["error"].startswith("not a std_msgs/msg/String in CDR")
    first = min(i for i, r in enumerate(records) if any(o["id"] == 2 for o in r["objects"]))
    # it came while frame 11 was read, after the pump that followed frame 10: the pump after frame 11
    # took it, and frame 12, the next frame tracked, has the object
    assert first == 12, first
    # keys, attachments and tokens in rmw_zenoh's forms
    zid = next(t for t in tokens if t.endswith("/NN/%/%" + namespace[1:] + "/rtseg")).split("/")[2]
    mangled = namespace.replace("/", "%")
    expected = {f"@ros2_lv/7/{zid}/0/0/NN/%/{mangled}/rtseg"}
    for entity, (topic, typename, qos) in enumerate([
            ("detections", types.DETECTIONS_2D, "::,10:,:,:,,"), ("mask_image", types.IMAGE, "::,10:,:,:,,"),
            ("objects_3d", types.DETECTIONS_3D, "::,10:,:,:,,"), ("result_image", types.COMPRESSED, "2::,1:,:,:,,"),
            ("events", types.STRING, "::,10:,:,:,,"), ("prompts", types.STRING, "::,10:,:,:,,")], start=1):
        kind = "MS" if topic == "prompts" else "MP"
        expected.add(f"@ros2_lv/7/{zid}/0/{entity}/{kind}/%/{mangled}/rtseg/{mangled}%rtseg%{topic}/"
                     f"{types.dds_name(typename)}/{types.type_hash(typename)}/{qos}")
        if kind == "MP":
            keys = {key for key, _, _ in listener.of(topic)}
            assert keys <= {f"7/{namespace[1:]}/rtseg/{topic}/{types.dds_name(typename)}/{types.type_hash(typename)}"}
    assert expected <= tokens, sorted(expected - tokens)
    gid = rmw.gid(next(t for t in expected if "/MP/" in t and "%detections/" in t))
    stamps, sequences = [], []
    for (_, _, att), msg in zip(listener.of("detections"), detections):
        sequence, stamp, source = rmw.read_attachment(att)
        assert source == gid and stamp == msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        stamps.append(stamp)
        sequences.append(sequence)
    assert stamps == sorted(stamps) and sequences == list(range(1, 25))  # numbered per publisher
    overlay = types.deserialize(listener.of("result_image")[0][1], types.COMPRESSED)
    assert overlay.format == "jpeg" and cv2.imdecode(np.frombuffer(bytes(overlay.data), np.uint8), 1).shape == (
        480, 640, 3)
    assert re.fullmatch(r"[0-9a-f]+", zid)


class Frames(Sink):
    """Keeps each frame the run took."""

    def __init__(self) -> None:
        self.images: list[np.ndarray] = []

    def write(self, result) -> None:
        self.images.append(result.image)


@pytest.mark.parametrize("typename", [types.IMAGE, types.COMPRESSED])
def test_an_image_topic_is_a_live_source(graph, make_session, monkeypatch, typename):
    from rtseg.capture.sources import open_source
    from rtseg.ros2.source import open_topic

    monkeypatch.setenv("ROS_DOMAIN_ID", "8")
    topic = f"/cam{os.getpid()}/image_raw"
    with open_source(str(SHOWCASE / "video.mp4")) as src:
        images = [f.image for _, f in zip(range(6), src)]
    camera = open_zenoh(graph)
    tokens: set[str] = set()
    watch = camera.liveliness().declare_subscriber("@ros2_lv/8/**", lambda s: tokens.add(str(s.key_expr)), history=True)
    publisher = camera.declare_publisher(rmw.topic_key(8, topic, typename))
    stop = threading.Event()

    def publish() -> None:  # a camera at about 30 frames a second, rgb8 or JPEG
        for i in itertools.count():
            if stop.wait(1 / 30):
                return
            image = images[i % len(images)]
            header = types.new("std_msgs/msg/Header", stamp=types.new("builtin_interfaces/msg/Time", sec=0, nanosec=0),
                               frame_id="camera")
            if typename == types.IMAGE:
                msg = types.new(typename, header=header, height=480, width=640, encoding="rgb8", is_bigendian=0,
                                step=640 * 3, data=np.ascontiguousarray(image[:, :, ::-1]).reshape(-1))
            else:
                msg = types.new(typename, header=header, format="jpeg",
                                data=cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].reshape(-1))
            publisher.put(types.serialize(msg, typename))

    sender = threading.Thread(target=publish, daemon=True)
    frames = Frames()
    try:
        source = open_topic(f"ros2://{topic}", 60, graph)
        sender.start()
        with source:
            run(source, make_session(), [frames], max_frames=8)
        found = {t for t in tokens if f"/MS/%/%/rtseg_camera/{topic.replace('/', '%')}/" in t}
    finally:
        stop.set()
        sender.join()
        watch.undeclare()
        camera.close()
    assert len(frames.images) == 8
    for image in frames.images:  # each frame one of those sent: exactly for raw pixels, as JPEG decodes it else
        error = min(np.abs(image.astype(int) - sent).mean() for sent in images)
        assert error == 0 if typename == types.IMAGE else error < 2, error
    assert {t.split("/")[-3] for t in found} == {types.dds_name(types.IMAGE), types.dds_name(types.COMPRESSED)}


def test_a_bad_topic_is_refused():
    from rtseg.ros2.source import open_topic

    with pytest.raises(RtsegError, match="ROS 2 topic '/camera/image-raw': '-' is not allowed"):
        open_topic("ros2:///camera/image-raw")
    with pytest.raises(RtsegError, match="name a topic"):
        open_topic("ros2:///")
