"""A ROS 2 image topic as a source: ``rtseg track ros2:///camera/image_raw``.

The topic's ``sensor_msgs/msg/Image`` (``bgr8``, ``rgb8``, ``bgra8``, ``rgba8``, ``mono8``,
``mono16``) or ``sensor_msgs/msg/CompressedImage`` messages, read from rmw_zenoh's key
``DOMAIN/TOPIC/TYPE/HASH`` by a subscription that the node ``rtseg_camera`` announces (its
liveliness tokens, :mod:`rtseg.ros2.rmw`), on the Zenoh session a ROS 2 node of rtseg opens
(:func:`~rtseg.ros2.node.session_config`). It is a live source (:class:`~rtseg.capture.live.LiveSource`):
the newest frame is taken, older ones are dropped, and a topic that goes quiet (also before its
first message) is waited for ``--reconnect`` seconds (default 30) before the run ends with an error.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from rtseg.capture.live import LiveSource
from rtseg.errors import RtsegError
from rtseg.output.publish import open_zenoh
from rtseg.ros2.node import check_node, session_config
from rtseg.ros2.rmw import BEST_EFFORT_1, Node, domain_id
from rtseg.ros2.types import COMPRESSED, IMAGE, check_namespace, dds_name, deserialize

PREFIX = "ros2://"
TYPES = {dds_name(IMAGE): IMAGE, dds_name(COMPRESSED): COMPRESSED}


def is_topic(spec: str) -> bool:
    return spec.lower().startswith(PREFIX)


def to_bgr(msg: Any, typename: str) -> np.ndarray:
    """A BGR uint8 image of an Image or CompressedImage message; RtsegError for an encoding rtseg does not read."""
    if typename == COMPRESSED:
        image = cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise RtsegError(f"a CompressedImage rtseg cannot decode (format {msg.format!r})")
        return image
    channels = {"bgr8": 3, "rgb8": 3, "bgra8": 4, "rgba8": 4, "mono8": 1, "mono16": 2}.get(msg.encoding)
    if channels is None:
        raise RtsegError(f"Image encoding {msg.encoding!r}: rtseg reads bgr8, rgb8, bgra8, rgba8, mono8, mono16")
    width_bytes = msg.width * channels
    data = np.frombuffer(bytes(msg.data), np.uint8)
    if msg.step < width_bytes or len(data) < msg.step * msg.height:
        raise RtsegError(f"an Image of {len(data)} bytes for {msg.width}x{msg.height} {msg.encoding}, step {msg.step}")
    rows = data[: msg.step * msg.height].reshape(msg.height, msg.step)[:, :width_bytes]
    if msg.encoding == "mono16":
        values = rows.copy().view(">u2" if msg.is_bigendian else "<u2").reshape(msg.height, msg.width)
        return cv2.cvtColor((values >> 8).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    pixels = rows.reshape(msg.height, msg.width, channels) if channels > 1 else rows
    convert = {"rgb8": cv2.COLOR_RGB2BGR, "bgra8": cv2.COLOR_BGRA2BGR, "rgba8": cv2.COLOR_RGBA2BGR,
               "mono8": cv2.COLOR_GRAY2BGR}.get(msg.encoding)
    return cv2.cvtColor(pixels, convert) if convert is not None else np.ascontiguousarray(pixels)


class TopicCapture:
    """What :class:`LiveSource` reads (OpenCV's capture interface): the newest image of a topic, a
    read waiting ``wait`` seconds at most for one newer than the last."""

    def __init__(self, topic: str, config_file: str | Path | None = None, wait: float = 0.1) -> None:
        self.topic, self.wait = topic, wait
        domain = domain_id()
        self.zenoh = open_zenoh(session_config(config_file))
        self._cond = threading.Condition()
        self._sample: tuple[str, bytes] | None = None
        self.sub = self.zenoh.declare_subscriber(f"{domain}/{topic.strip('/')}/*/*", self._receive)
        node = Node(str(self.zenoh.info.zid()), domain, "/", "rtseg_camera")
        liveliness = self.zenoh.liveliness()
        self.tokens = [liveliness.declare_token(node.token())] + [
            liveliness.declare_token(node.endpoint_token(k, "MS", topic, typename, BEST_EFFORT_1))
            for k, typename in enumerate(TYPES.values(), start=1)]

    def _receive(self, sample: Any) -> None:
        with self._cond:
            self._sample = (str(sample.key_expr).split("/")[-2], sample.payload.to_bytes())
            self._cond.notify_all()

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return self.zenoh is not None

    def get(self, prop: int) -> float:
        return 0.0  # frame rate and size: unknown until the first message

    def read(self) -> tuple[bool, np.ndarray | None]:
        with self._cond:
            if self._sample is None:
                self._cond.wait(self.wait)
            sample, self._sample = self._sample, None
        if sample is None:
            return False, None
        dds, payload = sample
        typename = TYPES.get(dds)
        if typename is None:
            raise RtsegError(f"{self.topic}: messages of type {dds}; rtseg reads sensor_msgs Image or CompressedImage")
        return True, to_bgr(deserialize(payload, typename), typename)

    def release(self) -> None:
        if self.zenoh is not None:
            for token in self.tokens:
                token.undeclare()
            self.sub.undeclare()
            self.zenoh.close()
            self.zenoh = None


def open_topic(spec: str, reconnect: float | None = None, config_file: str | Path | None = None) -> LiveSource:
    """The source ``ros2:///TOPIC`` (see the module docstring)."""
    topic = check_namespace(spec[len(PREFIX):], "topic")  # a topic name follows a namespace's rules
    if not topic:
        raise RtsegError(f"{spec}: name a topic, e.g. ros2:///camera/image_raw")
    check_node("/")
    capture = TopicCapture(topic, config_file)
    # Zenoh keeps the subscription across a publisher that goes and comes back: a quiet topic is
    # read (waited for) for ``reconnect`` seconds, then the run ends with an error
    quiet = 30.0 if reconnect is None else reconnect
    return LiveSource(spec, f"ROS 2 topic {topic}", capture=capture, reconnect=0,
                      max_failures=max(1, round(quiet / capture.wait)))
