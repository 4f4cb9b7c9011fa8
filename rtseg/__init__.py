"""rtseg: real-time prompted video segmentation and tracking with FastSAM.

The Python API (see :mod:`rtseg.session` and :mod:`rtseg.runner`)::

    from rtseg import ConceptPrompt, Session, TextPrompt, load_config
    session = Session(load_config("configs/demo.yaml"))
    session.add(TextPrompt("the red circle"))      # one object
    session.add(ConceptPrompt("the blue square"))  # every instance, each with its own id
    for result in session.run("samples/showcase/video.mp4"):
        print(result.index, result.detections.tracker_id)
"""

import os

# FFmpeg inside OpenCV prints its own lines about damaged files; rtseg reports them in one line.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

from rtseg.config import Config, load_config  # noqa: E402
from rtseg.errors import RtsegError  # noqa: E402
from rtseg.session import FrameResult, Session  # noqa: E402
from rtseg.prompt.prompts import BoxPrompt, ConceptPrompt, PointPrompt, TextPrompt  # noqa: E402

__all__ = ["BoxPrompt", "ConceptPrompt", "Config", "FrameResult", "PointPrompt", "RtsegError", "Session", "TextPrompt",
           "load_config"]
__version__ = "0.1.0"
