"""One frame's results as ROS 2 messages, on the topics ROS 2 segmentation nodes publish:

- ``detections``: ``vision_msgs/msg/Detection2DArray``; per object ``id`` = its track id,
  ``results[0].hypothesis`` = (``class_id``: the prompt it answers, ``score``), ``bbox`` in pixels;
- ``mask_image``: ``sensor_msgs/msg/Image``, pixel = track id, 0 = background: ``mono8`` (the
  pixels ``--save-masks`` writes) while every id fits in 8 bits, else ``mono16``;
- ``objects_3d``: ``vision_msgs/msg/Detection3DArray``, on frames with depth: the objects with
  depth, ``bbox.center`` their 3D centroid and ``bbox.size`` their extent (metres, camera frame);
- ``image``: ``sensor_msgs/msg/CompressedImage`` (JPEG) of the source frame or of the overlay.

Every header carries the frame's capture time and ``frame_id``.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import supervision as sv

from rtseg.detections import XYZ
from rtseg.output.records import frame_record, id_image
from rtseg.ros2.types import COMPRESSED, DETECTIONS_2D, DETECTIONS_3D, IMAGE, new

TOPICS = {"detections": DETECTIONS_2D, "mask_image": IMAGE, "objects_3d": DETECTIONS_3D, "image": COMPRESSED}


def nanoseconds(seconds: float) -> int:
    """Unix ``seconds`` as integer nanoseconds: the one stamp of a frame's header and log time."""
    return int(round(seconds * 1e9))


def header(stamp_ns: int, frame_id: str) -> Any:
    """A ``std_msgs/Header`` stamped ``stamp_ns`` (Unix nanoseconds)."""
    sec, nanosec = divmod(stamp_ns, 1_000_000_000)
    return new("std_msgs/msg/Header", stamp=new("builtin_interfaces/msg/Time", sec=sec, nanosec=nanosec),
               frame_id=frame_id)


def _pose(x: float = 0.0, y: float = 0.0, z: float = 0.0) -> Any:
    """A ``geometry_msgs/Pose`` at (x, y, z), not rotated."""
    return new("geometry_msgs/msg/Pose", position=new("geometry_msgs/msg/Point", x=x, y=y, z=z),
               orientation=new("geometry_msgs/msg/Quaternion", x=0.0, y=0.0, z=0.0, w=1.0))


def _hypotheses(prompt: str, score: float | None, position: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> list:
    return [new("vision_msgs/msg/ObjectHypothesisWithPose",
                hypothesis=new("vision_msgs/msg/ObjectHypothesis", class_id=prompt,
                               score=float("nan") if score is None else float(score)),
                pose=new("geometry_msgs/msg/PoseWithCovariance", pose=_pose(*position), covariance=np.zeros(36)))]


def frame_messages(record: dict[str, Any], stamp: Any, depth: bool) -> dict[str, Any]:
    """``detections`` and, when the frame had ``depth``, ``objects_3d``, from a frame's record
    (:func:`~rtseg.output.records.frame_record`: the numbers ``--save-json`` writes)."""
    boxes = []
    for obj in record["objects"]:
        x1, y1, x2, y2 = obj["box"]
        center = new("vision_msgs/msg/Pose2D", position=new("vision_msgs/msg/Point2D", x=(x1 + x2) / 2,
                                                            y=(y1 + y2) / 2), theta=0.0)
        boxes.append(new("vision_msgs/msg/Detection2D", header=stamp, results=_hypotheses(obj["prompt"], obj["score"]),
                         bbox=new("vision_msgs/msg/BoundingBox2D", center=center, size_x=x2 - x1, size_y=y2 - y1),
                         id=str(obj["id"])))
    out = {"detections": new(DETECTIONS_2D, header=stamp, detections=boxes)}
    if depth:
        out["objects_3d"] = new(DETECTIONS_3D, header=stamp, detections=[
            _detection_3d(obj, stamp) for obj in record["objects"] if obj.get("depth_pixels")])
    return out


def _detection_3d(obj: dict[str, Any], stamp: Any) -> Any:
    x, y, z = obj["xyz"]
    center = _pose(x, y, z)
    size = new("geometry_msgs/msg/Vector3", **dict(zip("xyz", (v if v is not None else 0.0 for v in obj["extent"]))))
    return new("vision_msgs/msg/Detection3D", header=stamp, results=_hypotheses(obj["prompt"], obj["score"], (x, y, z)),
               bbox=new("vision_msgs/msg/BoundingBox3D", center=center, size=size), id=str(obj["id"]))


def mask_image(dets: sv.Detections, shape: tuple[int, int], stamp: Any) -> Any:
    """The frame's ids as an image: ``mono8`` while they fit, else ``mono16`` (little-endian)."""
    labels = id_image(dets, shape)
    wide = labels.dtype == np.uint16
    data = labels.astype("<u2" if wide else np.uint8, copy=False).reshape(-1).view(np.uint8)
    return new(IMAGE, header=stamp, height=shape[0], width=shape[1], encoding="mono16" if wide else "mono8",
               is_bigendian=0, step=shape[1] * (2 if wide else 1), data=data)


def compressed(image: np.ndarray, stamp: Any, quality: int = 80) -> Any:
    """``image`` (BGR) as a ``sensor_msgs/CompressedImage`` in JPEG."""
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return new(COMPRESSED, header=stamp, format="jpeg", data=jpeg.reshape(-1))


def result_messages(index: int, time_s: float, dets: sv.Detections, shape: tuple[int, int], stamp_ns: int,
                    frame_id: str) -> dict[str, Any]:
    """Every topic's message of one frame but ``image``: topic -> message (types in :data:`TOPICS`)."""
    stamp = header(stamp_ns, frame_id)
    record = frame_record(index, time_s, dets, rle=False)  # the masks go as mask_image
    return {**frame_messages(record, stamp, XYZ in dets.data), "mask_image": mask_image(dets, shape, stamp)}
