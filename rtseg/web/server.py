"""``rtseg web``'s entry point: check the options, load the models, then serve the page.

Gradio is imported here only after ``GRADIO_TEMP_DIR`` points into the server's own temporary
folder (gradio reads it once, on import), so that uploads and results go when the server goes.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from rtseg.config import Config
from rtseg.errors import RtsegError
from rtseg.web.models import ModelBank


def serve(configs: dict[str, Config], host: str = "127.0.0.1", port: int = 7860, max_concurrent: int = 1,
          max_upload_mb: float = 200.0) -> int:
    """Load the models, then serve the page until Ctrl-C. Raises RtsegError for bad options."""
    if max_concurrent < 1:
        raise RtsegError(f"--max-concurrent must be >= 1, got {max_concurrent}")
    if max_upload_mb <= 0:
        raise RtsegError(f"--max-upload-mb must be > 0, got {max_upload_mb:g}")
    with tempfile.TemporaryDirectory(prefix="rtseg-web-") as tmp:
        workdir = Path(tmp)
        os.environ.setdefault("GRADIO_TEMP_DIR", str(workdir / "uploads"))
        try:
            from rtseg.web.app import build, launch
        except ImportError as exc:  # gradio is an extra
            raise RtsegError(f"rtseg web needs {exc.name or 'gradio'}, which is not installed: "
                             "pip install -e '.[web]'") from exc
        bank = ModelBank(configs)
        bank.get(bank.default)  # a model that cannot be loaded stops the server here, in one line
        page = build(bank, workdir / "sessions", max_upload_mb, max_concurrent)
        launch(page, workdir, host, port, max_concurrent, max_upload_mb)
    return 0
