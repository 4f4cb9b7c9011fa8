"""``--rerun`` (spawn a viewer), ``--rerun-connect ADDR`` (a viewer that runs), ``--rerun-save
FILE.rrd``: the run in Rerun, on the timelines ``frame`` (the frame index) and ``capture_time``.

- ``camera/image``: the frame (JPEG, as Rerun's EncodedImage);
- ``camera/objects``: a SegmentationImage, pixel = track id, coloured and labelled by the
  AnnotationContext at ``/`` (id -> ``"ID PROMPT"``, the overlay's colour), sent again as ids appear;
- ``camera/boxes``: labelled Boxes2D, ``class_ids`` = track ids;
- ``area/ID`` and ``score/ID``: each object's time series (one line per object, in its colour);
- ``world/objects``: Points3D of the 3D centroids and Boxes3D of their extents (frames with depth).

Needs the ``robot`` extra (``rerun-sdk``); ``rerun-sdk[catalog]`` reads a saved file back.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import cv2
import numpy as np
import supervision as sv
from supervision.annotators.utils import resolve_color

from rtseg.detections import XYZ
from rtseg.errors import RtsegError
from rtseg.output.publish import wall_time
from rtseg.output.records import frame_record, id_image
from rtseg.output.sinks import Sink, StreamInfo, check_writable, write_error
from rtseg.session import FrameResult

DEFAULT_PORT = 9876  # the viewer's gRPC port (``rerun`` and ``rr.spawn()``)


def import_rerun() -> Any:
    try:
        import rerun
    except ImportError:
        raise RtsegError("Rerun output needs rerun-sdk: pip install -e '.[robot]' (or pip install rerun-sdk)") from None
    return rerun


def viewer_url(addr: str) -> str:
    """A viewer's gRPC URL from ``HOST:PORT`` or a ``rerun+http://`` URL.

    >>> viewer_url("127.0.0.1:9876"), viewer_url("rerun+http://robot.local:9000/proxy")
    ('rerun+http://127.0.0.1:9876/proxy', 'rerun+http://robot.local:9000/proxy')
    """
    if "://" not in addr:
        addr = f"rerun+http://{addr}/proxy"
    url = urlparse(addr)
    if url.scheme not in ("rerun+http", "rerun+https", "rerun") or not url.hostname:
        raise RtsegError(f"--rerun-connect {addr!r}: give HOST:PORT or rerun+http://HOST:PORT/proxy")
    return addr


def check_viewer(url: str, timeout: float = 2.0) -> None:
    """RtsegError when nothing listens at the viewer URL (Rerun would queue the data for ever)."""
    parsed = urlparse(url)
    port = parsed.port or DEFAULT_PORT
    try:
        socket.create_connection((parsed.hostname, port), timeout=timeout).close()
    except OSError as exc:
        raise RtsegError(f"no Rerun viewer at {parsed.hostname}:{port} ({exc.strerror or exc}): start one with "
                         "`rerun`, or use --rerun") from None


def blueprint(rr: Any, name: str) -> Any:
    """The viewer's layout: the frame with its objects and boxes; each object's area and score
    over the frames; the 3D centroids."""
    import rerun.blueprint as rrb

    return rrb.Blueprint(rrb.Horizontal(
        rrb.Spatial2DView(origin="camera", name=name),
        rrb.Vertical(rrb.TimeSeriesView(origin="area", name="area (pixels)"),
                     rrb.TimeSeriesView(origin="score", name="score"),
                     rrb.Spatial3DView(origin="world", name="3D (metres)")),
        column_shares=[3, 2]), collapse_panels=True)


class RerunSink(Sink):
    """Logs each frame to Rerun (see the module docstring): a spawned viewer (``spawn``), a running
    one (``connect``: HOST:PORT or a URL) and/or a file (``save``)."""

    def __init__(self, spawn: bool = False, connect: str | None = None, save: str | Path | None = None,
                 jpeg_quality: int = 80) -> None:
        self.rr = import_rerun()
        self.spawn, self.save = spawn, Path(save) if save else None
        if spawn and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise RtsegError("--rerun starts a viewer and needs a display (DISPLAY is not set): use --rerun-save "
                             "FILE.rrd, or --rerun-connect to a viewer elsewhere")
        self.url = viewer_url(connect) if connect else None
        if self.url:
            check_viewer(self.url)
        if self.save:
            check_writable(self.save)
        self.quality = jpeg_quality
        self.rec: Any = None
        self.labels: dict[int, str] = {}  # the ids in the annotation context, and their labels...
        self.colours: dict[int, tuple[int, int, int]] = {}  # ... and colours
        self.palette = sv.ColorPalette.DEFAULT

    def open(self, stream: StreamInfo) -> None:
        rr = self.rr
        self.rec = rr.RecordingStream("rtseg")
        sinks = []
        if self.save:
            sinks.append(rr.FileSink(str(self.save)))
        if self.spawn:
            try:
                self.rec.spawn(connect=False)
            except Exception as exc:  # noqa: BLE001 (no viewer binary, no display...)
                raise RtsegError(f"cannot start the Rerun viewer: {str(exc).splitlines()[0]}") from exc
            sinks.append(rr.GrpcSink(f"rerun+http://127.0.0.1:{DEFAULT_PORT}/proxy"))
        if self.url:
            sinks.append(rr.GrpcSink(self.url))
        try:
            self.rec.set_sinks(*sinks, default_blueprint=blueprint(rr, stream.name))
        except Exception as exc:  # noqa: BLE001
            raise RtsegError(f"cannot open the Rerun outputs: {str(exc).splitlines()[0]}") from exc
        self.rec.log("world", rr.ViewCoordinates.RDF, static=True)  # x right, y down, z forward (the camera's)

    def write(self, result: FrameResult) -> None:
        rr, rec, dets = self.rr, self.rec, result.detections
        rec.set_time("frame", sequence=result.index)
        rec.set_time("capture_time", timestamp=wall_time(result.read_at))
        ok, jpeg = cv2.imencode(".jpg", result.image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        rec.log("camera/image", rr.EncodedImage(contents=jpeg.tobytes(), media_type="image/jpeg"))
        record = frame_record(result.index, result.time, dets, rle=False)  # the masks go as an image
        objects = record["objects"]
        self._annotate(dets, objects)
        ids = [o["id"] for o in objects]
        labels = [self.labels[i] for i in ids]
        rec.log("camera/objects", rr.SegmentationImage(id_image(dets, result.image.shape[:2])))
        rec.log("camera/boxes", rr.Boxes2D(array=np.array([o["box"] for o in objects], float).reshape(-1, 4),
                                           array_format=rr.Box2DFormat.XYXY, class_ids=ids, labels=labels))
        for o in objects:
            rec.log(f"area/{o['id']}", rr.Scalars([float(o["area"])]))
            if o["score"] is not None:
                rec.log(f"score/{o['id']}", rr.Scalars([float(o["score"])]))
        if XYZ in dets.data:  # a frame with depth: its objects with depth (none: the last frame's go)
            deep = [o for o in objects if o.get("depth_pixels")]
            centers = np.array([o["xyz"] for o in deep], float).reshape(-1, 3)
            sizes = np.array([[v or 0.0 for v in o["extent"]] for o in deep], float).reshape(-1, 3)
            rec.log("world/objects", rr.Points3D(centers, class_ids=[o["id"] for o in deep],
                                                 labels=[self.labels[o["id"]] for o in deep]),
                    rr.Boxes3D(centers=centers, sizes=sizes, class_ids=[o["id"] for o in deep]))

    def _annotate(self, dets: sv.Detections, objects: list[dict[str, Any]]) -> None:
        """Send the annotation context again when an id is new (its label and the overlay's colour)."""
        new = [(k, o) for k, o in enumerate(objects) if o["id"] not in self.labels]
        if not new:
            return
        for k, o in new:
            colour = resolve_color(self.palette, dets, k, sv.ColorLookup.TRACK).as_rgb()
            self.labels[o["id"]], self.colours[o["id"]] = f"{o['id']} {o['prompt']}", colour
            for series in ("area", "score"):  # its lines in the overlay's colour, named by its label
                self.rec.log(f"{series}/{o['id']}", self.rr.SeriesLines(colors=[colour], names=[self.labels[o["id"]]]),
                             static=True)
        context: list[tuple[int, str, tuple[int, ...]]] = [(0, "background", (0, 0, 0, 0))]  # the frame shows through
        context += [(i, label, self.colours[i]) for i, label in self.labels.items()]
        self.rec.log("/", self.rr.AnnotationContext(context), static=True)

    def close(self) -> None:
        if self.rec is None:
            return
        with contextlib.suppress(Exception):
            self.rec.flush()
        try:
            self.rec.disconnect()  # the file is finished (its footer written) here
        except OSError as exc:
            raise write_error(exc, self.save or Path("rerun")) from exc
        self.rec = None
