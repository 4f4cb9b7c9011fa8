"""The ROS 2 message types rtseg writes: Jazzy's standard ones and ``vision_msgs`` 4.1.1, in one
``rosbags`` type store, which serializes them to CDR, writes their ``ros2msg`` definitions (MCAP
schemas) and computes their RIHS01 type hashes (rmw_zenoh's key expressions).

>>> type_hash(IMAGE)  # ROS 2 Jazzy's sensor_msgs/msg/Image, as `ros2 topic info -v` shows it
'RIHS01_d31d41a9a4c4bc8eae9be757b0beed306564f7526c88ea6a4588fb9582527d47'
>>> definition(DETECTIONS_2D).splitlines()[:2]
['std_msgs/Header header', 'vision_msgs/Detection2D[] detections']
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from rtseg.errors import RtsegError

DETECTIONS_2D = "vision_msgs/msg/Detection2DArray"
DETECTIONS_3D = "vision_msgs/msg/Detection3DArray"
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
STRING = "std_msgs/msg/String"
MSG_DIR = Path(__file__).parent / "msg"  # definitions rosbags does not ship: vision_msgs/*.msg


def import_rosbags() -> Any:
    try:
        import rosbags.typesys
    except ImportError:
        raise RtsegError("ROS 2 messages need rosbags: pip install -e '.[robot]' (or pip install rosbags mcap)") \
            from None
    return rosbags.typesys


@functools.cache
def store() -> Any:
    """Jazzy's types plus ``vision_msgs`` (rosbags' ``Typestore``), made once."""
    typesys = import_rosbags()
    types: dict[str, Any] = {}
    for path in sorted(MSG_DIR.glob("*/*.msg")):
        types.update(typesys.get_types_from_msg(path.read_text(), f"{path.parent.name}/msg/{path.stem}"))
    typestore = typesys.get_typestore(typesys.Stores.ROS2_JAZZY)
    typestore.register(types)
    return typestore


def new(typename: str, **fields: Any) -> Any:
    """A message of ``typename`` (e.g. ``"std_msgs/msg/Header"``) with ``fields``."""
    return store().types[typename](**fields)


def serialize(message: Any, typename: str) -> bytes:
    """``message`` as CDR (little-endian, with its 4-byte encapsulation header), as ROS 2 sends it."""
    return bytes(store().serialize_cdr(message, typename))


def deserialize(data: bytes, typename: str) -> Any:
    return store().deserialize_cdr(data, typename)


def definition(typename: str) -> str:
    """The ``ros2msg`` text of ``typename`` with every type it uses (an MCAP schema, as rosbag2 writes it)."""
    return store().generate_msgdef(typename, ros_version=2)[0]


def type_hash(typename: str) -> str:
    """ROS 2's RIHS01 hash of ``typename`` (REP 2011): part of rmw_zenoh's key expressions."""
    return store().hash_rihs01(typename)


def dds_name(typename: str) -> str:
    """The DDS form of a type name that rmw_zenoh puts in its keys.

    >>> dds_name("vision_msgs/msg/Detection2DArray")
    'vision_msgs::msg::dds_::Detection2DArray_'
    """
    package, kind, name = typename.split("/")
    return f"{package}::{kind}::dds_::{name}_"


def check_namespace(namespace: str, what: str = "namespace") -> str:
    """``namespace`` (or a topic name, ``what``) as ROS 2 takes one (``/a/b``: tokens of letters,
    digits and underscores, none starting with a digit); RtsegError naming what is wrong.

    >>> check_namespace("robot1/seg"), check_namespace("/")
    ('/robot1/seg', '')
    >>> check_namespace("my-robot")
    Traceback (most recent call last):
    ...
    rtseg.errors.RtsegError: ROS 2 namespace 'my-robot': '-' is not allowed (letters, digits, _ and /)
    """
    bad = next((c for c in namespace if not (c.isascii() and (c.isalnum() or c in "_/"))), None)
    if bad is not None:
        raise RtsegError(f"ROS 2 {what} {namespace!r}: {bad!r} is not allowed (letters, digits, _ and /)")
    tokens = namespace.strip("/").split("/") if namespace.strip("/") else []
    if any(not t for t in tokens):
        raise RtsegError(f"ROS 2 {what} {namespace!r}: repeated '/'")
    if any(t[0].isdigit() for t in tokens):
        raise RtsegError(f"ROS 2 {what} {namespace!r}: a name starts with a digit")
    return "/" + "/".join(tokens) if tokens else ""
