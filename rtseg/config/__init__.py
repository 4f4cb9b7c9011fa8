"""Typed configuration: one frozen dataclass per stage (model, tracker, concepts, keyframes, output,
camera), loaded from YAML with unknown keys rejected and every value range-checked when it is made.

>>> cfg = load_config(None)
>>> cfg.model.weights, cfg.tracker.match_iou
('fastsam-s', 0.25)
>>> override(cfg, model={"imgsz": 320}).model.imgsz
320
"""

from rtseg.config.files import load_config, override
from rtseg.config.sections import (
    CameraConfig,
    ConceptConfig,
    Config,
    KeyframeConfig,
    ModelConfig,
    OutputConfig,
    TrackerConfig,
)

__all__ = ["CameraConfig", "ConceptConfig", "Config", "KeyframeConfig", "ModelConfig", "OutputConfig", "TrackerConfig",
           "load_config", "override"]
