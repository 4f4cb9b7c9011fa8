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
from rtseg.web.guard import checked_host, is_loopback
from rtseg.web.models import ModelBank


def auth_pairs(items: list[str] | None = None, file: str | None = None) -> list[tuple[str, str]]:
    """``--auth USER:PASSWORD`` values and the ``user:password`` lines of ``--auth-file`` (blank lines
    and ``#`` comments skipped) as (user, password) pairs. Raises RtsegError for a malformed one,
    without echoing the password."""
    lines = [(f"--auth #{k}", item) for k, item in enumerate(items or [], start=1)]
    if file:
        try:
            text = Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RtsegError(f"cannot read --auth-file {file}: {getattr(exc, 'strerror', None) or exc}") from exc
        lines += [(f"{file} line {n}", line.strip()) for n, line in enumerate(text.splitlines(), start=1)
                  if line.strip() and not line.strip().startswith("#")]
        if not any(where.startswith(file) for where, _ in lines):
            raise RtsegError(f"--auth-file {file} has no user:password line")
    pairs = []
    for where, line in lines:
        user, sep, password = line.partition(":")
        if not sep or not user or not password:
            raise RtsegError(f"{where}: expected user:password with neither empty")
        pairs.append((user, password))
    return pairs


def serve(configs: dict[str, Config], host: str = "127.0.0.1", port: int = 7860, max_concurrent: int = 1,
          max_upload_mb: float = 200.0, auth: list[tuple[str, str]] | None = None, keep_hours: float = 24.0,
          max_pixels: int = 3840 * 2160, max_minutes: float = 30.0, max_frames: int | None = None,
          max_job_minutes: float = 10.0, allowed_hosts: list[str] | None = None,
          upload_quota_mb: float | None = None, keep_uploads_min: float = 60.0, trust_weights: bool = False) -> int:
    """Load the models, then serve the page until Ctrl-C. Raises RtsegError for bad options, and
    for a ``host`` beyond this machine without a login."""
    if max_concurrent < 1:
        raise RtsegError(f"--max-concurrent must be >= 1, got {max_concurrent}")
    if max_upload_mb <= 0:
        raise RtsegError(f"--max-upload-mb must be > 0, got {max_upload_mb:g}")
    for flag, value in (("--keep-results", keep_hours), ("--max-pixels", max_pixels), ("--max-minutes", max_minutes),
                        ("--max-frames", max_frames), ("--max-job-minutes", max_job_minutes),
                        ("--keep-uploads", keep_uploads_min)):
        if value is not None and not value > 0:  # --max-frames None: from --max-minutes
            raise RtsegError(f"{flag} must be > 0, got {value:g}")
    if upload_quota_mb is not None and not upload_quota_mb >= max_upload_mb:
        raise RtsegError(f"--upload-quota-mb must be at least --max-upload-mb ({max_upload_mb:g}), "
                         f"got {upload_quota_mb:g}")
    checked_host(host, "--host")
    for name in allowed_hosts or []:
        checked_host(name)
    if not auth and not is_loopback(host):
        raise RtsegError(f"serving on {host} to other machines needs a login: set --auth USER:PASSWORD or "
                         "--auth-file FILE (or serve on 127.0.0.1)")
    with tempfile.TemporaryDirectory(prefix="rtseg-web-") as tmp:
        workdir = Path(tmp)
        os.environ.setdefault("GRADIO_TEMP_DIR", str(workdir / "uploads"))
        try:
            from rtseg.web.app import build, launch
        except ImportError as exc:  # gradio is an extra
            raise RtsegError(f"rtseg web needs {exc.name or 'gradio'}, which is not installed: "
                             "pip install -e '.[web]'") from exc
        bank = ModelBank(configs, trust_weights=trust_weights)  # trust: --trust-weights, never a config
        bank.get(bank.default)  # a model that cannot be loaded stops the server here, in one line
        page = build(bank, workdir / "sessions", max_upload_mb, max_concurrent, max_pixels, max_minutes, keep_hours,
                     max_frames=max_frames, max_job_minutes=max_job_minutes)
        launch(page, workdir, host, port, max_concurrent, max_upload_mb, auth, allowed_hosts or [], upload_quota_mb,
               keep_uploads_min)
    return 0
