"""What rmw_zenoh_cpp puts on the wire besides the CDR payload, written by hand (no library does
it): the key expression of a topic, the liveliness tokens that make a node and its publishers and
subscriptions visible to ``ros2 node list`` / ``ros2 topic list``, the compact QoS string in those
tokens, the GID, and the attachment of each message.

Matched against rmw_zenoh's design document (``docs/design.md``, sections "Topic and Service name
mapping to Zenoh key expressions", "Graph Cache" and "Publishers", at ros2/rmw_zenoh commit
99a6a2b) and its ``liveliness_utils.cpp`` (``qos_to_keyexpr``, ``mangle_name``, the GID as XXH3-128 of
the token): the rmw_zenoh_cpp of ROS 2 Jazzy and later. tests/test_ros2_node.py checks these
functions against the document's own examples.

>>> topic_key(0, "/robot1/chatter", "std_msgs/msg/String")
'0/robot1/chatter/std_msgs::msg::dds_::String_/RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18'
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from rtseg.errors import RtsegError
from rtseg.ros2.types import dds_name, type_hash

NODE_NAME = "rtseg"  # the node's name: its topics are /NAMESPACE/rtseg/...
# rmw_zenoh's QoS string for a profile, each field left empty where it is rmw_zenoh's default
# (reliable, volatile, keep last; deadline, lifespan and lease infinite; automatic liveliness)
RELIABLE_10 = "::,10:,:,:,,"  # reliable, keep last 10: what `ros2 topic echo` and rclpy's default ask for
BEST_EFFORT_1 = "2::,1:,:,:,,"  # best effort (RMW_QOS_POLICY_RELIABILITY_BEST_EFFORT = 2), keep last 1: sensor data


def domain_id() -> int:
    """``ROS_DOMAIN_ID`` (0 when unset), as ROS 2 reads it; RtsegError when it is not 0..232."""
    value = os.environ.get("ROS_DOMAIN_ID", "").strip() or "0"
    if not value.isdigit() or int(value) > 232:
        raise RtsegError(f"ROS_DOMAIN_ID={value!r}: expected an integer from 0 to 232")
    return int(value)


def topic_key(domain: int, name: str, typename: str) -> str:
    """``<domain_id>/<fully_qualified_name>/<type_name>/<type_hash>``: where a topic's messages go."""
    return f"{domain}/{name.strip('/')}/{dds_name(typename)}/{type_hash(typename)}"


def mangle(name: str) -> str:
    """A name in a liveliness token: each ``/`` replaced by ``%`` (``%`` alone for an empty name)."""
    return name.replace("/", "%") or "%"


@dataclass(frozen=True)
class Node:
    """A ROS 2 node as rmw_zenoh announces it: its Zenoh session id, domain, namespace and name."""

    zid: str
    domain: int
    namespace: str  # "/robot1" or "/" (rcl's form)
    name: str
    node_id: int = 0
    enclave: str = "/"

    def _prefix(self, entity_id: int, kind: str) -> str:
        return (f"@ros2_lv/{self.domain}/{self.zid}/{self.node_id}/{entity_id}/{kind}/{mangle(self.enclave)}/"
                f"{mangle(self.namespace)}/{self.name}")

    def token(self) -> str:
        """The node's liveliness token (entity kind ``NN``)."""
        return self._prefix(self.node_id, "NN")

    def endpoint_token(self, entity_id: int, kind: str, topic: str, typename: str, qos: str) -> str:
        """A publisher's (``MP``) or subscription's (``MS``) liveliness token."""
        return (f"{self._prefix(entity_id, kind)}/{mangle(topic)}/{dds_name(typename)}/{type_hash(typename)}/{qos}")

    def topic(self, relative: str) -> str:
        """The fully qualified name of a node-private topic ``~/relative``: ``/NAMESPACE/NODE/relative``."""
        return f"{self.namespace.rstrip('/')}/{self.name}/{relative}"


def gid(token: str) -> bytes:
    """An entity's 16-byte GID: XXH3-128 of its liveliness token, low then high 64 bits, little-endian."""
    import xxhash

    value = xxhash.xxh3_128_intdigest(token.encode())
    return struct.pack("<QQ", value & (2**64 - 1), value >> 64)


def attachment(sequence: int, stamp_ns: int, source_gid: bytes) -> bytes:
    """A message's attachment: sequence number and source timestamp (int64 little-endian each), the
    GID's length (one byte, 16) and the GID.

    >>> attachment(1, 2, bytes(range(16))).hex()
    '0100000000000000020000000000000010000102030405060708090a0b0c0d0e0f'
    """
    return struct.pack("<qqB", sequence, stamp_ns, len(source_gid)) + source_gid


def read_attachment(data: bytes) -> tuple[int, int, bytes]:
    """(sequence number, source timestamp in ns, GID) of an attachment; RtsegError for another layout."""
    if len(data) < 17 or len(data) != 17 + data[16]:
        raise RtsegError(f"not an rmw_zenoh attachment ({len(data)} bytes)")
    sequence, stamp = struct.unpack_from("<qq", data)
    return sequence, stamp, data[17:]
