"""Shared fixtures: the bundled models (loaded once), synthetic videos (made once), and helpers.

Tests never train a model and never write outside their temp folders: ultralytics', matplotlib's
and gradio's folders point into a temp folder before anything imports them.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

_TMP = tempfile.mkdtemp(prefix="rtseg-tests-")
os.environ["YOLO_CONFIG_DIR"] = os.path.join(_TMP, "yolo")
os.environ["MPLCONFIGDIR"] = os.path.join(_TMP, "mpl")
os.environ["GRADIO_TEMP_DIR"] = os.path.join(_TMP, "gradio")  # read once, when gradio is imported
os.environ["YOLO_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import supervision as sv  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEMO_CONFIG = ROOT / "configs" / "demo.yaml"
SHOWCASE = ROOT / "samples" / "showcase"


# The files that take longest (seconds per file in a quiet `pytest -n 2 --durations=0` run, 2026-12-07: 132, 118,
# 91, 75, 44, 41, 37, 27 ...), started first: with the tests in two processes (make test, which keeps this
# order: --no-loadscope-reorder), a long file started last would keep one busy while the other waits.
LONGEST_FIRST = ("test_sweep.py", "test_tracking.py", "test_batch.py", "test_web.py", "test_reconnect.py",
                 "test_web_load.py", "test_synth.py", "test_window.py", "test_cli.py", "test_disk.py", "test_bench.py",
                 "test_fuzz.py", "test_models.py")


def pytest_collection_modifyitems(items: list) -> None:
    """Run the longest files first (the order within a file is kept; every process sorts alike)."""
    rank = {name: k for k, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def wait_until(predicate, what: str, timeout: float, poll: float = 0.05) -> None:
    """Poll ``predicate`` until it holds; ``timeout`` only bounds a hang: nothing is decided on the clock."""
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, f"still waiting for {what} after {timeout:.0f} s"
        time.sleep(poll)


class CachingSegmenter:
    """The real segmenter, remembering its answer per frame: several prompt runs over one video
    segment it only once (FastSAM is deterministic)."""

    def __init__(self, inner) -> None:
        self.inner, self.cache, self.calls = inner, {}, 0
        self.device = inner.device

    def __call__(self, image: np.ndarray) -> sv.Detections:
        key = hashlib.sha1(image.tobytes()).digest()
        if key not in self.cache:
            self.calls += 1
            self.cache[key] = self.inner(image)
        d = self.cache[key]
        return d[np.arange(len(d))]  # a copy: a tracker must not share it between runs

    def share_threads(self) -> None:
        self.inner.share_threads()


@pytest.fixture(scope="session")
def demo_config():
    from rtseg.config import load_config

    return load_config(DEMO_CONFIG)


@pytest.fixture(scope="session")
def segmenter(demo_config):
    from rtseg.segment.fastsam import FastSAMSegmenter

    m = demo_config.model
    return CachingSegmenter(FastSAMSegmenter.from_config(m))


@pytest.fixture(scope="session")
def text_scorer(demo_config):
    from rtseg.prompt.clip import TextScorer

    return TextScorer(demo_config.model.clip)


@pytest.fixture(scope="session")
def make_session(demo_config, segmenter, text_scorer):
    from rtseg.config import override
    from rtseg.session import Session

    def make(everything: bool = False, keyframes: int = 1) -> Session:
        config = override(demo_config, keyframes={"every": keyframes})
        return Session(config, everything=everything, segmenter=segmenter, text_scorer=text_scorer)

    return make


@pytest.fixture(scope="session")
def synth_video(tmp_path_factory):
    """``synth_video(scenario, seed, size=(W, H), frames=None)`` -> folder with video.mp4, gt/,
    objects.json (made once; frames: the scenario's own count)."""
    from rtseg.synth.video import write_video

    made: dict[tuple, Path] = {}

    def make(scenario: str, seed: int = 11, size: tuple[int, int] = (640, 480), frames: int | None = None) -> Path:
        key = (scenario, seed, size, frames)
        if key not in made:
            out = tmp_path_factory.mktemp(f"{scenario}-{seed}-{size[0]}x{size[1]}")
            write_video(out, scenario, seed, frames=frames, size=size)
            made[key] = out
        return made[key]

    return make


@pytest.fixture(scope="session")
def tracked(make_session):
    """``tracked(video, kind)`` -> label maps (T, H, W) of the video's first-frame prompts of one kind
    (``point``, ``box``, ``text``), or of ``--everything`` with ``kind="everything"``; each run made once
    in the session, for every test that only reads its labels (the quality pins, the identity checks,
    HOTA)."""
    made: dict[tuple[Path, str], np.ndarray] = {}

    def run(video: Path, kind: str) -> np.ndarray:
        key = (Path(video), kind)
        if key not in made:
            session = make_session(everything=kind == "everything")
            for prompt in [] if kind == "everything" else prompts_of(video, kind):
                session.add(prompt)
            made[key] = run_labels(session, video)
            made[key].flags.writeable = False  # shared: a test must not change what the next one reads
        return made[key]

    return run


def prompts_of(video: Path, kind: str) -> list:
    """The first-frame prompt of each object of a synthetic video, of one kind."""
    from rtseg.prompt.prompts import BoxPrompt, PointPrompt, TextPrompt

    out = []
    for obj in json.loads((video / "objects.json").read_text())["objects"]:
        p = obj["prompts"]
        if kind == "point":
            out.append(PointPrompt((tuple(p["point"]),), (1,)))
        elif kind == "box":
            out.append(BoxPrompt(tuple(p["box"])))
        else:
            out.append(TextPrompt(p["text"]))
    return out


def run_labels(session, video: Path) -> np.ndarray:
    """Label maps (T, H, W) of a session run over a video (pixel = tracker id)."""
    from rtseg.output.records import label_map

    return np.stack([label_map(r.detections, r.image.shape[:2]) for r in session.run(video / "video.mp4")])


def ground_truth(video: Path) -> np.ndarray:
    from rtseg.output.png import read_index_png

    return np.stack([read_index_png(p) for p in sorted((video / "gt").glob("*.png"))])
