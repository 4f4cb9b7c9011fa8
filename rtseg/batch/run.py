"""``rtseg batch``: many videos at once, on this machine or a Ray cluster.

Each video is one unit of work (tracking is sequential inside a video, videos are independent).
Workers are Ray actors, each holding its models, that take video after video: a pool of actors
rather than Ray Data's ``map_batches``, because the unit here is a whole video (minutes of
sequential work, not rows to batch), and because a video must fail or be retried on its own: an
actor that dies (killed, out of memory) is restarted by Ray and its video retried up to
``max_retries`` times, then marked failed, while the other actors go on. Ray places the actors (CPUs
or fractions of GPUs per worker); this module only hands each free actor the next video.

Without ``address`` a local Ray is started with ``workers`` CPUs and shut down at the end;
``address="auto"`` or ``ray://host:port`` joins a running cluster (rtseg must be installed on its
nodes, and the files reachable there under the same paths).
"""

from __future__ import annotations

import collections
import csv
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rtseg.batch.manifest import Job
from rtseg.batch.video import FIELDS, Models, finished, job_hash, process
from rtseg.config import Config
from rtseg.errors import RtsegError
from rtseg.segment.safe_load import safe_torch_load
from rtseg.segment.weights import resolve_weights

PASSED_ENV = ("YOLO_CONFIG_DIR", "YOLO_OFFLINE", "MPLCONFIGDIR", "HF_HUB_OFFLINE", "RTSEG_OFFLINE", "RTSEG_DEBUG")


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RtsegError("rtseg batch needs Ray: pip install -e '.[batch]' (or pip install 'ray>=2.9')") from None
    return ray


class VideoWorker:
    """A Ray actor: loads the models once, then tracks one video per :meth:`process` call."""

    def __init__(self, config: Config, out: str, extras: frozenset[str], threads: int,
                 trust_weights: bool = False) -> None:
        import torch

        torch.set_num_threads(threads)
        config = _with_threads(config, threads)
        self.models, self.out, self.extras = Models(config, trust_weights), Path(out), extras

    def process(self, job: Job, digest: str) -> dict[str, Any]:
        return process(job, self.models, self.out, self.extras, digest)


def _with_threads(config: Config, threads: int) -> Config:
    """A worker's torch uses the CPUs Ray gave it (ultralytics would take all but one of the node's)."""
    import dataclasses

    if config.model.threads is not None:
        return config
    return dataclasses.replace(config, model=dataclasses.replace(config.model, threads=threads))


class Progress:
    """Videos done and failed, frames per second over all of them, and the time left, on stderr: a
    bar redrawn in place on a terminal, and one line per finished video."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.total, self.quiet = total, quiet
        self.done = self.failed = self.frames = 0
        self.start = time.monotonic()
        self.tty = sys.stderr.isatty()

    def finished(self, row: dict[str, Any]) -> None:
        self.done += row["status"] == "done"
        self.failed += row["status"] == "failed"
        self.frames += int(row.get("frames") or 0)
        if self.quiet:
            return
        what = f"{row['frames']} frames, {row['fps']} FPS" if row["status"] == "done" else row.get("error", "")
        start = "\r" if self.tty else ""
        print(f"{start}[{self.done + self.failed}/{self.total}] {row['id']}: {row['status']}, {what}".ljust(100),
              file=sys.stderr, flush=True)
        self.draw()

    def draw(self) -> None:
        if self.quiet or not self.tty:
            return
        n, elapsed = self.done + self.failed, time.monotonic() - self.start
        fill = int(30 * n / max(self.total, 1))
        left = elapsed / n * (self.total - n) if n else float("nan")
        eta = f"{left / 60:.0f} min left" if left == left else "time left: after the first video"
        print(f"\r[{'#' * fill}{'.' * (30 - fill)}] {n}/{self.total} videos ({self.failed} failed), "
              f"{self.frames / max(elapsed, 1e-9):.1f} FPS overall, {eta}   ", end="", file=sys.stderr, flush=True)


def run_batch(jobs: list[Job], config: Config, out: Path, address: str | None = None, workers: int | None = None,
              gpus_per_worker: float = 0.0, extras: frozenset[str] = frozenset(), resume: bool = True,
              max_retries: int = 2, quiet: bool = False, trust_weights: bool = False) -> list[dict[str, Any]]:
    """Every job's summary row, in manifest order (also written to ``out/summary.csv``); ``extras``:
    which of :data:`~rtseg.batch.video.EXTRAS` each video also gets. A ``.pt``
    model that could run code is refused, here, unless ``trust_weights``."""
    ray = import_ray()
    weights = resolve_weights(config.model.weights)  # a missing model is one error now, not one per worker
    if not trust_weights and weights.endswith(".pt"):  # so is a refused one: checked (not run) here
        safe_torch_load(weights)
    out.mkdir(parents=True, exist_ok=True)
    digests = {job.id: job_hash(job, config, extras) for job in jobs}
    rows: dict[str, dict[str, Any]] = {}
    for job in jobs:
        done = finished(out, job, digests[job.id]) if resume else None
        if done is not None:
            rows[job.id] = {**done, "status": "skipped"}
    todo = collections.deque(job for job in jobs if job.id not in rows)
    progress = Progress(len(todo), quiet)
    connected, temp = False, None
    try:
        if todo:
            temp = None if address else tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths
            connected = _start_ray(ray, address, workers or os.cpu_count() or 1, temp)
            cpus, gpus = ray.cluster_resources().get("CPU", 1), ray.cluster_resources().get("GPU", 0)
            if gpus_per_worker > gpus:  # the workers would wait for ever
                raise RtsegError(f"--gpus-per-worker {gpus_per_worker:g}: Ray sees {gpus:g} GPU(s)")
            if workers is None:  # as many as the cluster holds
                workers = int(gpus / gpus_per_worker) if gpus_per_worker else int(cpus)
            actor = ray.remote(VideoWorker).options(num_cpus=1, num_gpus=gpus_per_worker, max_restarts=-1,
                                                    max_task_retries=max_retries)
            size = max(1, min(workers, len(todo)))
            pool = [actor.remote(config, str(out.resolve()), extras, 1, trust_weights) for _ in range(size)]
            pending: dict[Any, tuple[Job, Any]] = {}
            for a in pool:
                if todo:
                    job = todo.popleft()
                    pending[a.process.remote(job, digests[job.id])] = (job, a)
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                progress.draw()
                for ref in ready:
                    job, a = pending.pop(ref)
                    rows[job.id] = _result(ray, ref, job, digests[job.id], max_retries)
                    progress.finished(rows[job.id])
                    if todo:
                        nxt = todo.popleft()
                        pending[a.process.remote(nxt, digests[nxt.id])] = (nxt, a)
    finally:
        ordered = [rows.get(job.id) or {"id": job.id, "source": job.source, "status": "not run",
                                        "hash": digests[job.id]} for job in jobs]
        write_summary(out / "summary.csv", ordered)
        if connected:
            ray.shutdown()
        if temp is not None and not os.environ.get("RTSEG_DEBUG"):
            shutil.rmtree(temp, ignore_errors=True)  # Ray's logs of this run
        if not quiet and progress.tty:
            print(file=sys.stderr)
    return ordered


def _start_ray(ray: Any, address: str | None, cpus: int, temp: str | None) -> bool:
    """Start a local Ray with ``cpus`` (its files in ``temp``) or join ``address``; the workers get
    this process's offline settings. True once connected."""
    env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no telemetry, no network
    if address:
        try:
            ray.init(address=address, runtime_env={"env_vars": env}, logging_level="ERROR", log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RtsegError(f"cannot join the Ray cluster at {address}: {str(exc).splitlines()[0]}") from exc
    else:
        ray.init(num_cpus=cpus, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
                 object_store_memory=100 * 2**20, _temp_dir=temp)
    return True


def _result(ray: Any, ref: Any, job: Job, digest: str, max_retries: int) -> dict[str, Any]:
    try:
        return ray.get(ref)
    except ray.exceptions.RayActorError as exc:  # the worker died every time it tried this video
        cause = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        return {"id": job.id, "source": job.source, "status": "failed", "hash": digest,
                "error": f"its worker died {max_retries + 1} times (killed or out of memory): {cause}"}


def write_summary(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def markdown(rows: list[dict[str, Any]]) -> str:
    """The summary as a Markdown table."""
    lines = ["| video | status | frames | FPS | wall s | worker | mean J | error |",
             "|---|---|---:|---:|---:|---|---:|---|"]
    for r in rows:
        cells = [r.get(k, "") for k in ("id", "status", "frames", "fps", "wall_s", "worker", "mean_j", "error")]
        lines.append("| " + " | ".join("" if c is None else str(c).replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)
