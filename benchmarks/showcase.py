"""What the output benchmarks share (publish_latency.py, robot_cost.py): the showcase sample with its
five prompts and the demo models, loaded once, its frames held in memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def load_showcase(frames: int) -> tuple[Any, list, list[np.ndarray], Any, Any]:
    """(config, prompts, the first ``frames`` frames, segmenter, text scorer), in the tests' offline
    environment (tests/conftest.py, which the callers import first)."""

    from rtseg.capture.sources import open_source
    from rtseg.config import load_config
    from rtseg.prompt.clip import TextScorer
    from rtseg.prompt.prompts import load_prompts_file
    from rtseg.segment.fastsam import FastSAMSegmenter

    config = load_config(ROOT / "configs/demo.yaml")
    prompts = load_prompts_file(ROOT / "samples/showcase/prompts.yaml")
    with open_source(str(ROOT / "samples/showcase/video.mp4")) as src:
        images = [f.image for _, f in zip(range(frames), src)]
    segmenter = FastSAMSegmenter.from_config(config.model)
    return config, prompts, images, segmenter, TextScorer(config.model.clip, device=segmenter.device)
