"""``--ros2``: rtseg as a ROS 2 node, as rmw_zenoh_cpp nodes see one, with no ROS install.

The node ``NAMESPACE/rtseg`` (``--ros-namespace``, default ``/``) publishes, per frame, the node's
private topics as ROS 2 segmentation nodes do (:mod:`rtseg.ros2.messages`):

- ``~/detections`` (vision_msgs/msg/Detection2DArray), ``~/mask_image`` (sensor_msgs/msg/Image),
  ``~/objects_3d`` (vision_msgs/msg/Detection3DArray, frames with depth): reliable, keep last 10;
- ``~/result_image`` (sensor_msgs/msg/CompressedImage, the overlay in JPEG, at most ``overlay_hz``
  a second): best effort;

and takes prompts on ``~/prompts`` (std_msgs/msg/String holding the JSON prompt messages of
``--publish``, :func:`~rtseg.output.messages.parse_prompt`), answered on ``~/events`` (String, JSON).
For example, with ROS 2 and rmw_zenoh_cpp::

    ros2 topic pub --once /rtseg/prompts std_msgs/msg/String "{data: '{\\"text\\": \\"the red cup\\"}'}"

Each entity has its liveliness token (:mod:`rtseg.ros2.rmw`), each message its attachment
(sequence number, capture time, GID) and its key ``DOMAIN/TOPIC/TYPE/HASH``. ``ROS_DOMAIN_ID``
chooses the domain. The Zenoh session is rmw_zenoh's: ``--zenoh-config`` or, as rmw_zenoh reads it,
``ZENOH_SESSION_CONFIG_URI``; else ``rtseg/ros2/session.json5`` (a peer that connects to the
Zenoh router ``ros2 run rmw_zenoh_cpp rmw_zenohd`` on this machine, as rmw_zenoh's default does).
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path
from typing import Any

from rtseg.errors import RtsegError
from rtseg.output.messages import MAX_MESSAGE_BYTES
from rtseg.output.publish import Publisher, import_zenoh, open_zenoh, wall_time
from rtseg.output.sinks import StreamInfo
from rtseg.ros2.messages import TOPICS, compressed, header, nanoseconds, result_messages
from rtseg.ros2.rmw import BEST_EFFORT_1, NODE_NAME, RELIABLE_10, Node, attachment, domain_id, gid, topic_key
from rtseg.ros2.types import STRING, check_namespace, deserialize, new, serialize
from rtseg.session import FrameResult, Session

SESSION_CONFIG = Path(__file__).with_name("session.json5")  # rmw_zenoh's default session (package data)
PUBLISHED = {**TOPICS, "result_image": TOPICS["image"], "events": STRING}
PUBLISHED.pop("image")


def session_config(config_file: str | Path | None) -> str | Path | None:
    """The Zenoh config a ROS 2 node of rtseg opens: ``config_file``, else ``ZENOH_SESSION_CONFIG_URI``,
    else the shipped one, rmw_zenoh's default (:data:`SESSION_CONFIG`)."""
    return config_file or os.environ.get("ZENOH_SESSION_CONFIG_URI") or SESSION_CONFIG


class Ros2Node(Publisher):
    """The ROS 2 node sink (see the module docstring); prompts are handled as :class:`Publisher` does."""

    def __init__(self, session: Session, namespace: str = "/", config_file: str | Path | None = None,
                 overlay_hz: float = 5.0) -> None:
        check_node(namespace)
        self.namespace, self.domain = check_namespace(namespace) or "/", domain_id()
        super().__init__(NODE_NAME, session, session_config(config_file), overlay_hz)
        self.tokens: list[Any] = []
        self.keys: dict[str, str] = {}  # topic -> its key expression
        self.gids: dict[str, bytes] = {}
        self.sequence: dict[str, itertools.count] = {}  # per publisher, as rmw_zenoh numbers them
        self.node: Node | None = None

    def open(self, stream: StreamInfo) -> None:
        self.frame_id = "camera"
        self.zenoh = open_zenoh(self.config_file)
        zenoh = import_zenoh()
        self.node = node = Node(str(self.zenoh.info.zid()), self.domain, self.namespace, NODE_NAME)
        liveliness = self.zenoh.liveliness()
        self.tokens = [liveliness.declare_token(node.token())]
        block, drop = zenoh.CongestionControl.BLOCK, zenoh.CongestionControl.DROP
        self.pub = {}
        for entity, (topic, typename) in enumerate(PUBLISHED.items(), start=1):
            name = node.topic(topic)
            self.keys[topic] = topic_key(self.domain, name, typename)
            best_effort = topic == "result_image"
            token = node.endpoint_token(entity, "MP", name, typename, BEST_EFFORT_1 if best_effort else RELIABLE_10)
            self.gids[topic] = gid(token)
            self.pub[topic] = self.zenoh.declare_publisher(
                self.keys[topic], congestion_control=drop if best_effort else block,
                reliability=zenoh.Reliability.BEST_EFFORT if best_effort else zenoh.Reliability.RELIABLE)
            self.tokens.append(liveliness.declare_token(token))
        prompts = node.topic("prompts")
        self.keys["prompts"] = topic_key(self.domain, prompts, STRING)
        self.sub = self.zenoh.declare_subscriber(self.keys["prompts"], self._receive)
        self.tokens.append(liveliness.declare_token(
            node.endpoint_token(len(PUBLISHED) + 1, "MS", prompts, STRING, RELIABLE_10)))
        end = time.monotonic() + self.discovery
        while not self.pub["detections"].matching_status.matching and time.monotonic() < end:
            time.sleep(0.01)  # a subscriber started before the node gets the first frame too

    def _put(self, topic: str, message: Any, stamp_ns: int) -> None:
        self.pub[topic].put(serialize(message, PUBLISHED[topic]),
                            attachment=attachment(next(self.sequence.setdefault(topic, itertools.count(1))), stamp_ns,
                                                  self.gids[topic]))

    def write(self, result: FrameResult) -> None:
        stamp = nanoseconds(wall_time(result.read_at))  # the capture time
        messages = result_messages(result.index, result.time, result.detections, result.image.shape[:2], stamp,
                                   self.frame_id)
        for topic, message in messages.items():
            self._put(topic, message, stamp)
        now = time.monotonic()
        if self.overlay_every is not None and now - self.last_overlay >= self.overlay_every:
            self.last_overlay = now
            overlay = result.overlay if result.overlay is not None else self.renderer.annotate(
                result.image, result.detections, result.stats)
            self._put("result_image", compressed(overlay, header(stamp, self.frame_id)), stamp)
        self.published += 1

    def _receive(self, sample: Any) -> None:
        """Zenoh's thread: a std_msgs/String in CDR, its text the JSON prompt message."""
        size = len(sample.payload)
        if size > MAX_MESSAGE_BYTES + 8:  # the CDR header and the string's length come before the text
            return super()._receive(sample)  # answered with the size error, not read
        try:
            text = deserialize(sample.payload.to_bytes(), STRING).data
        except Exception as exc:  # noqa: BLE001 (what rosbags raises on bytes that are not a String)
            self._queue(RtsegError(f"not a std_msgs/msg/String in CDR ({type(exc).__name__})"))
            return
        self._queue(text.encode())

    def _send_event(self, text: str) -> None:
        self._put("events", new(STRING, data=text), time.time_ns())

    def close(self) -> None:
        if self.zenoh is not None:
            for token in self.tokens:
                token.undeclare()
        super().close()


def check_node(namespace: str) -> None:
    """What a ROS 2 node needs, checked before any model is loaded: its namespace, ``ROS_DOMAIN_ID``
    and the libraries (RtsegError naming what is wrong or missing)."""
    from rtseg.ros2.types import import_rosbags

    check_namespace(namespace)
    domain_id()
    import_zenoh()
    import_rosbags()
    try:
        import xxhash  # noqa: F401
    except ImportError:
        raise RtsegError("--ros2 needs xxhash: pip install -e '.[robot]' (or pip install xxhash)") from None
