"""``--save-mcap FILE``: the run as a ROS 2 bag in MCAP, as rosbag2's MCAP storage writes one
(profile ``ros2``, ``ros2msg`` schemas, ``cdr`` messages, each channel's QoS and type hash in its
metadata), so Foxglove, ``ros2 bag`` and the ``mcap`` / ``rosbags`` readers open it.

Topics, those of rtseg's ROS 2 node (:mod:`rtseg.ros2.node`), under ``NAMESPACE/rtseg`` (default
``/rtseg``): ``detections``, ``mask_image``, ``objects_3d``
(frames with depth) as :mod:`rtseg.ros2.messages` builds them, and with ``frames`` the source
frames as ``image/compressed`` (JPEG). Every message is logged at its frame's capture time, and
its header carries that time and ``frame_id`` (the camera's TF frame, default ``camera``).

Messages go into zstd chunks of whole frames, closed after the frame that brings one to
:data:`CHUNK_BYTES` or that comes :data:`FLUSH_S` seconds after the last one, and written
straight to the file (no buffer): a run killed with SIGKILL leaves every frame of every chunk
written before the kill readable (:func:`recover`); a run that ends, also by Ctrl-C or an error,
leaves a whole file with its index.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Iterator

from rtseg.errors import RtsegError
from rtseg.output.publish import wall_time
from rtseg.output.sinks import Sink, StreamInfo, check_writable, write_error
from rtseg.ros2.messages import TOPICS, compressed, header, nanoseconds, result_messages
from rtseg.ros2.rmw import NODE_NAME
from rtseg.ros2.types import check_namespace, definition, import_rosbags, serialize, type_hash
from rtseg.session import FrameResult

CHUNK_BYTES = 1 << 20  # a chunk is written once it holds this much (before compression)...
FLUSH_S = 1.0  # ... or once it is this old
# rosbag2's default for a recorded topic (ROS 2 Jazzy's YAML form of the offered QoS profile)
QOS = ("- history: keep_last\n  depth: 10\n  reliability: reliable\n  durability: volatile\n"
       "  deadline:\n    sec: 9223372036\n    nsec: 854775807\n  lifespan:\n    sec: 9223372036\n"
       "    nsec: 854775807\n  liveliness: automatic\n  liveliness_lease_duration:\n    sec: 9223372036\n"
       "    nsec: 854775807\n  avoid_ros_namespace_conventions: false\n")


def import_mcap() -> Any:
    try:
        import mcap.writer
    except ImportError:
        raise RtsegError("--save-mcap needs mcap: pip install -e '.[robot]' (or pip install mcap rosbags)") from None
    import_rosbags()
    return mcap.writer


class _Direct:
    """A file the MCAP writer writes to without a buffer (it buffers a raw file itself, and never
    flushes that on finish when it did not open the file): each record is on disk once written."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            view = view[self.raw.write(view):]
        return len(data)

    def tell(self) -> int:
        return self.raw.tell()

    def flush(self) -> None:
        pass


class McapSink(Sink):
    """Writes each frame's ROS 2 messages to the MCAP file ``path`` (see the module docstring)."""

    parallel = True

    def __init__(self, path: str | Path, namespace: str = "/", frames: bool = False,
                 frame_id: str = "camera") -> None:
        self.path, self.frames, self.frame_id = Path(path), frames, frame_id
        self.writer_module = import_mcap()
        self.prefix = f"{check_namespace(namespace)}/{NODE_NAME}"  # the topics of rtseg's ROS 2 node
        check_writable(self.path)
        self.file: Any = None
        self.writer: Any = None
        self.types: dict[str, str] = {}  # topic -> its message type, the channels' (set on open)
        self.channels: dict[str, int] = {}
        self.flushed, self.pending = 0.0, 0  # when the last chunk was written; bytes since

    def open(self, stream: StreamInfo) -> None:
        try:
            self.file = open(self.path, "wb", buffering=0)  # each record goes straight to the file
        except OSError as exc:
            raise write_error(exc, self.path) from exc
        # chunks are closed here, between frames (never by size inside one): a chunk holds whole frames
        self.writer = self.writer_module.Writer(_Direct(self.file), chunk_size=1 << 62)
        self.writer.start(profile="ros2", library="rtseg")
        self.types = {**{k: v for k, v in TOPICS.items() if k != "image"},
                      **({"image/compressed": TOPICS["image"]} if self.frames else {})}
        schemas: dict[str, int] = {}
        for topic, typename in self.types.items():
            if typename not in schemas:
                schemas[typename] = self.writer.register_schema(typename, "ros2msg", definition(typename).encode())
            self.channels[topic] = self.writer.register_channel(
                f"{self.prefix}/{topic}", "cdr", schemas[typename],
                {"offered_qos_profiles": QOS, "topic_type_hash": type_hash(typename)})
        self.flushed, self.pending = time.monotonic(), 0

    def write(self, result: FrameResult) -> None:
        stamp = nanoseconds(wall_time(result.read_at))  # the capture time
        shape = result.image.shape[:2]
        messages = result_messages(result.index, result.time, result.detections, shape, stamp, self.frame_id)
        if self.frames:
            messages["image/compressed"] = compressed(result.image, header(stamp, self.frame_id))
        try:
            for topic, message in messages.items():
                data = serialize(message, self.types[topic])
                self.writer.add_message(self.channels[topic], stamp, data, stamp, sequence=result.index)
                self.pending += len(data)
            if self.pending >= CHUNK_BYTES or time.monotonic() - self.flushed >= FLUSH_S:
                self.writer.flush()  # the chunk, compressed, goes to the file
                self.flushed, self.pending = time.monotonic(), 0
        except OSError as exc:
            raise write_error(exc, self.path) from exc

    def close(self) -> None:
        if self.file is None:
            return
        with contextlib.suppress(OSError):  # a full disk: what was written before stays readable (recover)
            self.writer.finish()
        self.file.close()
        self.file = None


def recover(path: str | Path) -> Iterator[tuple[str, int, bytes]]:
    """(topic, log time in ns, CDR bytes) of every message in the whole chunks of an MCAP file, also
    of one cut short (a run killed mid-way); what follows the last whole chunk is left out."""
    from mcap.exceptions import McapError
    from mcap.records import Channel, Message
    from mcap.stream_reader import StreamReader

    topics: dict[int, str] = {}
    with open(path, "rb") as f:
        records = StreamReader(f, skip_magic=False, emit_chunks=False).records
        while True:
            try:
                record = next(records)
            except (StopIteration, McapError, EOFError, ValueError):
                return
            if isinstance(record, Channel):
                topics[record.id] = record.topic
            elif isinstance(record, Message):
                yield topics[record.channel_id], record.log_time, record.data
