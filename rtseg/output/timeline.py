"""A prompts file's entries for later frames (``at: N``): new objects and corrections to an object by
id, applied between frames so that each takes effect on the frame it names (``rtseg track --prompts``).

An offline video can so be run again with a fix: ``{id: 3, at: 120, neg: [[410, 200]]}`` is the
negative click a user gave object 3 live, at frame 120.
"""

from __future__ import annotations

from rtseg.errors import RtsegError
from rtseg.output.sinks import Sink
from rtseg.prompt.prompts import Timed
from rtseg.session import FrameResult, Session


class Timeline(Sink):
    """Applies ``entries`` to ``session`` on the main thread, after the frame before the one each
    names (the session has then tracked ``at`` frames). An entry for an object that does not exist
    then, or with a point outside the frame, stops the run with its error."""

    def __init__(self, session: Session, entries: list[Timed]) -> None:
        self.session = session
        self.entries = sorted(entries, key=lambda e: e.at)

    def write(self, result: FrameResult) -> None:
        pass

    def open(self, stream) -> None:
        self.pump(0)  # entries at frame 0 apply before the first frame

    def pump(self, wait_ms: int) -> bool:
        while self.entries and self.entries[0].at <= self.session.tracker.frame:
            entry = self.entries.pop(0)
            where = f"prompts file entry at frame {entry.at}"
            try:
                if entry.oid is None:
                    assert entry.prompt is not None
                    self.session.add(entry.prompt)
                elif entry.prompt is None:
                    self.session.forget(entry.oid)
                else:
                    self.session.correct(entry.oid, entry.prompt)  # type: ignore[arg-type]
            except KeyError:
                raise RtsegError(f"{where}: no object {entry.oid}") from None
            except RtsegError as exc:
                raise RtsegError(f"{where}: {exc}") from None
        return True
