"""One video of a batch, start to end, in whichever process runs it (a Ray worker, or this one).

It is ``rtseg track`` exactly: the same :class:`~rtseg.session.Session` and sinks on the worker's
loaded models, so the masks are the same bit for bit. Everything is written to ``DIR/.ID.partial/``
and renamed to ``DIR/ID/`` when whole, so a video folder that exists is complete (its ``done.json``
holds the hash that ``--resume`` compares). A video that fails leaves ``DIR/ID.failed/error.log``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import socket
import time
import traceback
from pathlib import Path
from typing import Any

from rtseg.batch.manifest import Job
from rtseg.capture.sources import open_source
from rtseg.config import Config
from rtseg.errors import RtsegError
from rtseg.evaluate import evaluate_folders
from rtseg.output.sinks import JsonlSink, MaskSink, Sink, StatsSink, VideoSink
from rtseg.prompt.clip import TextScorer
from rtseg.prompt.prompts import TextPrompt
from rtseg.runner import run
from rtseg.segment.fastsam import FastSAMSegmenter
from rtseg.session import Session

FIELDS = ("id", "status", "frames", "fps", "wall_s", "worker", "mean_j", "error", "source", "hash")


EXTRAS = ("overlay", "mcap")  # outputs a batch may write beside the masks and JSON lines


def job_hash(job: Job, config: Config, extras: frozenset[str] = frozenset()) -> str:
    """What a video's results depend on: its source (path, size, modification time: reading every
    byte of every video again would cost as much as decoding it), its prompts and ground truth, the
    config, which of the :data:`EXTRAS` are written, and rtseg's version."""
    import rtseg

    source: Any = job.source
    if Path(job.source).is_file():
        st = Path(job.source).stat()
        source = [str(Path(job.source).resolve()), st.st_size, st.st_mtime_ns]
    doc = {"source": source, "prompts": job.describe(), "gt": job.gt, "config": dataclasses.asdict(config),
           "overlay": "overlay" in extras, "rtseg": rtseg.__version__,
           **({"mcap": True} if "mcap" in extras else {})}  # (a hash made before --mcap stays valid)
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


def finished(out: Path, job: Job, digest: str) -> dict[str, Any] | None:
    """The summary row of ``job`` when ``out/ID`` holds its complete results for ``digest``."""
    try:
        done = json.loads((out / job.id / "done.json").read_text())
    except (OSError, ValueError):
        return None
    return done if done.get("hash") == digest else None


class Models:
    """The models a worker loads once and uses for video after video. A CLIP model that cannot be
    loaded fails the videos with text prompts (with its reason); the others fall back to colours."""

    def __init__(self, config: Config, trust_weights: bool = False) -> None:
        m = config.model
        self.segmenter = FastSAMSegmenter.from_config(m, trust_weights=trust_weights)
        self.text_scorer: TextScorer | None = None
        self.clip_error: RtsegError | None = None
        if m.clip:
            try:
                self.text_scorer = TextScorer(m.clip, device=self.segmenter.device)
            except RtsegError as exc:
                self.clip_error = exc
        # Without CLIP, a Session must not try to load it again for every video.
        self.config = config if self.text_scorer else dataclasses.replace(
            config, model=dataclasses.replace(m, clip=""))


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def process(job: Job, models: Models, out: Path, extras: frozenset[str], digest: str) -> dict[str, Any]:
    """Track ``job``'s video into ``out/ID``; returns its summary row (status ``done`` or ``failed``:
    bad input is a failed row, never an exception)."""
    partial, final, failed = out / f".{job.id}.partial", out / job.id, out / f"{job.id}.failed"
    row: dict[str, Any] = {"id": job.id, "source": job.source, "hash": digest, "worker": worker_name()}
    start = time.perf_counter()
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    # Which process works on it (the tests kill it there, as an out-of-memory killer would).
    (partial / "worker.json").write_text(json.dumps({"worker": row["worker"], "pid": os.getpid()}))
    try:
        stats = StatsSink()
        sinks: list[Sink] = [MaskSink(partial / "masks"), JsonlSink(partial / "tracks.jsonl")]
        config = models.config
        if "overlay" in extras:
            sinks.append(VideoSink(partial / "overlay.mp4", config.output.fps, config.output.codec,
                                   config.output.video))
        if "mcap" in extras:
            from rtseg.ros2.bag import McapSink

            sinks.append(McapSink(partial / "run.mcap"))
        if models.clip_error is not None and any(isinstance(p, TextPrompt) for p in job.prompts):
            raise models.clip_error
        with open_source(job.source) as src:
            if src.live:
                raise RtsegError(f"{job.source} is a live source; a batch takes videos, image folders and images")
            session = Session.for_prompts(config, job.prompts, everything=job.everything, size=src.size,
                                          segmenter=models.segmenter, text_scorer=models.text_scorer)
            summary = run(src, session, sinks + [stats])
        if job.gt:
            scores = evaluate_folders(partial / "masks", job.gt)
            (partial / "scores.json").write_text(json.dumps(scores, indent=1) + "\n")
            row["mean_j"] = round(scores["overall"]["J"], 4)
        wall = time.perf_counter() - start
        row.update(status="done", frames=summary.frames, fps=round(summary.frames / max(wall, 1e-9), 2),
                   wall_s=round(wall, 2))
        (partial / "done.json").write_text(json.dumps(row, indent=1) + "\n")
        (partial / "worker.json").unlink()
        shutil.rmtree(final, ignore_errors=True)  # results for an older hash
        partial.rename(final)
        shutil.rmtree(failed, ignore_errors=True)
        return row
    except Exception as exc:  # noqa: BLE001 (a bug in one video must not stop the batch: it is reported)
        message = str(exc).splitlines()[0] if isinstance(exc, RtsegError) else \
            f"internal error: {type(exc).__name__}: {exc}".splitlines()[0]
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(failed, ignore_errors=True)
        failed.mkdir(parents=True)
        (failed / "error.log").write_text(f"{job.source}\n{message}\n\n{traceback.format_exc()}")
        row.update(status="failed", error=message, wall_s=round(time.perf_counter() - start, 2))
        return row
