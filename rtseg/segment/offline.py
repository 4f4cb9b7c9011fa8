"""Keep ultralytics from reaching for the network or writing outside its config folder.

ultralytics reads its environment when it is first imported, so :func:`prepare_ultralytics` must run
before that (every rtseg module that imports ultralytics calls it first).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

_done = False


def prepare_ultralytics() -> Path:
    """Set ultralytics up to run offline; returns its config folder.

    - ``YOLO_OFFLINE=1`` (unless set): no hub, analytics or update checks. Weight downloads that the
      user asks for still go ahead.
    - The plotting font ``Arial.ttf`` is put in the config folder from matplotlib's bundled DejaVu
      Sans, so that ultralytics does not try to download it.
    """
    global _done
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    base = os.environ.get("YOLO_CONFIG_DIR")
    folder = Path(base) / "Ultralytics" if base else Path(
        os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "Ultralytics"
    if not _done:
        font = folder / "Arial.ttf"
        if not font.exists():
            try:
                import matplotlib

                source = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
                folder.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, font)
            except (OSError, ImportError):
                pass  # plotting only; rtseg's own drawing does not use it
        _done = True
    return folder
