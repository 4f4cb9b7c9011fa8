"""rtseg: real-time prompted video segmentation and tracking with FastSAM.

The Python API (see :mod:`rtseg.pipeline`)::

    from rtseg import Session, TextPrompt, load_config
    session = Session(load_config("configs/demo.yaml"))
    session.add(TextPrompt("the red circle"))
    for result in session.run("samples/showcase/video.mp4"):
        print(result.index, result.detections.tracker_id)
"""

from rtseg.config import Config, load_config
from rtseg.errors import RtsegError
from rtseg.pipeline import FrameResult, Session
from rtseg.prompts import BoxPrompt, PointPrompt, TextPrompt

__all__ = ["BoxPrompt", "Config", "FrameResult", "PointPrompt", "RtsegError", "Session", "TextPrompt", "load_config"]
__version__ = "0.1.0"
