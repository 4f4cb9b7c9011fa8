"""Which files of ``rtseg web``'s folders its file routes serve (:class:`FilePolicy`), and the space
uploads may take (:class:`UploadSpace`): the policies :class:`rtseg.web.guard.Guard` applies.

Nothing here imports gradio: the app gives the policies what Gradio recorded (as callables).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Callable, Collection, Iterable, Iterator

HELD = "upload"  # a session's hold on its upload: SESSION_FOLDER/upload/TOKEN/NAME


# -- what: the files served ------------------------------------------------------------------------

def within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


class FilePolicy:
    """Which paths the file routes serve: the app's own copies of its outputs in Gradio's upload
    folder (``produced``: the sets of paths Gradio records for the page's output components) and
    the files of a session's run under ``results`` (``results/SESSION/run-N/...``). Never a path
    Gradio recorded as an upload (``uploaded``), nor anything else in the upload folder, nor a URL."""

    def __init__(self, upload_dir: Path, results: Path, uploaded: Callable[[], Collection[str]],
                 produced: Callable[[], Iterable[Collection[str]]]) -> None:
        self.upload_dir, self.results = Path(os.path.realpath(upload_dir)), Path(os.path.realpath(results))
        self.uploaded, self.produced = uploaded, produced

    def is_produced(self, path: str | Path) -> bool:
        sets = list(self.produced())
        return any(any(form in files for files in sets)
                   for form in (os.path.abspath(path), os.path.realpath(path)))  # the second only if needed

    def allows(self, raw: str) -> bool:
        if not raw or "\0" in raw or re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", raw):  # a URL (or a drive)
            return False
        forms = {os.path.abspath(raw), os.path.realpath(raw)}
        uploaded = self.uploaded()
        if any(f in uploaded for f in forms):
            return False
        real = Path(os.path.realpath(raw))
        if within(real, self.results):
            parts = real.relative_to(self.results).parts
            return len(parts) >= 3 and parts[1].startswith("run-")
        return within(real, self.upload_dir) and self.is_produced(raw)


# -- how much: the space uploads take --------------------------------------------------------------

class UploadSpace:
    """Gradio's upload folder and the sessions' holds on their uploads, under one quota (bytes).

    What counts: every file of the upload folder except the app's own outputs (``produced``), and
    the uploads sessions hold (``results/SESSION/upload/...``), each file once however many links it
    has. :meth:`prune` deletes the files of the upload folder (not the outputs) older than
    ``keep_s``; a session's hold is a link of its own, so that takes nothing from a live session.
    """

    def __init__(self, upload_dir: Path, results: Path, quota: int, keep_s: float,
                 produced: Callable[[str | Path], bool] = lambda path: False) -> None:
        self.upload_dir, self.results, self.quota, self.keep_s = Path(upload_dir), Path(results), quota, keep_s
        self.produced = produced

    def _files(self, folder: Path) -> Iterator[tuple[str, os.stat_result]]:
        for root, _, names in os.walk(folder):
            for name in names:
                path = os.path.join(root, name)
                try:
                    st = os.lstat(path)
                except OSError:  # removed meanwhile
                    continue
                yield path, st

    def _uploads(self) -> Iterator[tuple[str, os.stat_result]]:
        return ((p, st) for p, st in self._files(self.upload_dir) if not self.produced(p))

    def _held(self) -> Iterator[tuple[str, os.stat_result]]:
        for folder in self.results.glob(f"*/{HELD}") if self.results.is_dir() else []:
            yield from self._files(folder)

    def usage(self) -> int:
        """Bytes the uploads take now."""
        seen: dict[tuple[int, int], int] = {}
        for _, st in (*self._uploads(), *self._held()):
            seen[(st.st_dev, st.st_ino)] = st.st_size
        return sum(seen.values())

    def prune(self, now: float | None = None) -> list[str]:
        """Delete the uploads (in the upload folder) older than ``keep_s``, and the empty folders
        they leave; returns the files deleted."""
        cutoff, removed = (time.time() if now is None else now) - self.keep_s, []
        for path, st in list(self._uploads()):
            if st.st_mtime < cutoff:
                try:
                    os.unlink(path)
                    removed.append(path)
                except OSError:
                    pass
        emptied = {os.path.dirname(path) for path in removed}
        for root, dirs, files in os.walk(self.upload_dir, topdown=False):
            if root != str(self.upload_dir) and not dirs and not files:
                try:
                    if root in emptied or os.stat(root).st_mtime < cutoff:
                        os.rmdir(root)  # refused if a file came meanwhile
                except OSError:  # not empty any more, or gone
                    pass
        return removed

    @staticmethod
    def hold(path: str | Path, session: Path) -> Path:
        """A link of the session's own to the upload at ``path`` (a copy across file systems), in
        ``session/upload/``, dropping the session's earlier holds; returns the link's path."""
        path = Path(path)
        held = session / HELD
        keep = held / secrets.token_hex(8)
        keep.mkdir(parents=True)
        link = keep / path.name
        try:
            os.link(path, link)
        except OSError:
            shutil.copy2(path, link)
        for old in held.iterdir():
            if old != keep:
                shutil.rmtree(old, ignore_errors=True)
        return link

    @staticmethod
    def release(session: Path | None) -> None:
        """The session no longer holds an upload."""
        if session is not None:
            shutil.rmtree(session / HELD, ignore_errors=True)
