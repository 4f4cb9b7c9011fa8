"""The synthetic shapes world: scenes, videos with ground truth, and training data."""

from rtseg.synth.world import BACKGROUNDS, COLOURS, COLOURS_RGB, SHAPES, SceneObject, render

__all__ = ["BACKGROUNDS", "COLOURS", "COLOURS_RGB", "SHAPES", "SceneObject", "render"]
