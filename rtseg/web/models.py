"""The models of ``rtseg web``: loaded once per server and shared by every browser session.

Each config the server was started with names a segmenter and a CLIP model. They are loaded the
first time that config is used (the first config at start-up), then kept. A browser session gets a
view of the segmenter with its own inference settings (imgsz, confidence, IoU threshold); calls
through every view of one model take turns on a lock, since an ultralytics predictor keeps state
between calls and must not run on two threads at once.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import supervision as sv

from rtseg.config import Config, override
from rtseg.errors import RtsegError
from rtseg.segment.fastsam import FastSAMSegmenter
from rtseg.prompt.clip import TextScorer


@dataclass(frozen=True)
class Settings:
    """What a browser session chooses for a run: a config by name and the segmenter's settings."""

    config: str
    imgsz: int
    conf: float
    iou: float

    def model(self) -> dict[str, Any]:
        """The ``model`` keys of the config that these settings replace."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "config"}


class SharedSegmenter:
    """A :class:`~rtseg.segment.fastsam.Segmenter`: a view of one loaded FastSAM model with settings
    of its own (:meth:`~rtseg.segment.fastsam.FastSAMSegmenter.view`), called under the model's lock."""

    def __init__(self, view: FastSAMSegmenter, lock: threading.Lock) -> None:
        self.view, self.lock, self.device = view, lock, view.device

    def __call__(self, image: np.ndarray) -> sv.Detections:
        with self.lock:
            return self.view(image)


class LoadedModels:
    """The segmenter and the CLIP model of one config (:meth:`load` loads them).

    A CLIP model that cannot be loaded is not fatal: clicks and boxes still work, and a text prompt
    is refused with ``clip_error`` as the reason.
    """

    def __init__(self, config: Config, segmenter: FastSAMSegmenter, text_scorer: TextScorer | None,
                 clip_error: str | None = None) -> None:
        self.segmenter, self.text_scorer = segmenter, text_scorer
        self.clip_error = None if text_scorer else clip_error or "no CLIP model is configured (model.clip)"
        # Without CLIP, a Session must not try to load it again for every run.
        self.config = config if text_scorer else dataclasses.replace(
            config, model=dataclasses.replace(config.model, clip=""))
        self.lock = threading.Lock()

    @classmethod
    def load(cls, config: Config, trust_weights: bool = False) -> "LoadedModels":
        """``trust_weights``: a ``.pt`` model may run code (``--trust-weights``)."""
        m = config.model
        segmenter = FastSAMSegmenter.from_config(m, trust_weights=trust_weights)
        text_scorer, clip_error = None, None
        if m.clip:
            try:
                text_scorer = TextScorer(m.clip, device=segmenter.device)
            except RtsegError as exc:
                clip_error = str(exc)
        return cls(config, segmenter, text_scorer, clip_error)

    def for_settings(self, settings: Settings) -> tuple[Config, SharedSegmenter]:
        """The config of a run with these settings, and a segmenter view that applies them."""
        config = override(self.config, model=settings.model())
        return config, SharedSegmenter(self.segmenter.view(config.model), self.lock)


class ModelBank:
    """Configs by name (the first is the default), each loaded once, on first use, then shared
    (``trust_weights``: their ``.pt`` models may run code, from ``--trust-weights``)."""

    def __init__(self, configs: dict[str, Config], loaded: dict[str, LoadedModels] | None = None,
                 trust_weights: bool = False) -> None:
        if not configs:
            raise RtsegError("no config to serve")
        self.configs, self.trust_weights = configs, trust_weights
        self._loaded: dict[str, LoadedModels] = dict(loaded or {})
        self._lock = threading.Lock()

    @property
    def default(self) -> str:
        return next(iter(self.configs))

    def get(self, name: str) -> LoadedModels:
        if name not in self.configs:
            raise RtsegError(f"unknown config {name!r} (this server has: {', '.join(self.configs)})")
        with self._lock:
            if name not in self._loaded:
                self._loaded[name] = LoadedModels.load(self.configs[name], self.trust_weights)
            return self._loaded[name]


def config_names(paths: list[str | None]) -> list[str]:
    """Dropdown names for config files: the file's stem, made unique (``default`` for no file).

    >>> config_names(["configs/demo.yaml", None, "other/demo.yaml"])
    ['demo', 'default', 'demo-2']
    """
    names: list[str] = []
    for path in paths:
        stem = Path(path).stem if path else "default"
        name, k = stem, 1
        while name in names:
            k += 1
            name = f"{stem}-{k}"
        names.append(name)
    return names
