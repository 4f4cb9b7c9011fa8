"""Measuring a run: resident memory, and steady-state rates and percentiles (warm-up left out)."""

from __future__ import annotations

import os
import resource
import threading

import numpy as np

WARMUP = 5  # frames left out of FPS and stage statistics (model set-up, caches)


def rss_mb() -> float:
    """Resident memory of this process now, MB (peak so far where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class MemoryProbe:
    """Samples resident memory on a thread while a run goes: ``peak`` MB, and ``samples``."""

    def __init__(self, every: float = 0.02) -> None:
        self.every = every
        self.samples: list[float] = []
        self._stop = threading.Event()

    def __enter__(self) -> "MemoryProbe":
        self.start = rss_mb()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(rss_mb())

    @property
    def peak(self) -> float:
        return max(self.samples, default=self.start)


def steady(values: list[float]) -> list[float]:
    """``values`` without the warm-up frames (kept when there are too few to spare them)."""
    return values[WARMUP:] if len(values) > 2 * WARMUP else values


def mean_fps(ms: list[float]) -> float:
    """Frames per second from per-frame milliseconds, after the warm-up."""
    return 1000 / float(np.mean(steady(ms)))


def percentiles(values: list[float]) -> dict[str, float]:
    v = np.asarray(steady(values), float)
    if len(v) == 0:
        return {"p50": float("nan"), "p95": float("nan"), "n": 0}
    return {"p50": round(float(np.percentile(v, 50)), 2), "p95": round(float(np.percentile(v, 95)), 2),
            "n": int(len(v))}


def steady_fps(done: list[float]) -> float:
    """Frames per second between the end of the warm-up and the last frame (monotonic stamps)."""
    stamps = steady(done)
    if len(stamps) < 2:
        return float("nan")
    return (len(stamps) - 1) / max(stamps[-1] - stamps[0], 1e-9)
