"""The bundled models, measured on freshly generated held-out scenes (other seeds, 640x480), pinned a
little below the values in their model cards and never below what the shapes-world issue asks."""

from __future__ import annotations

import pytest

from rtseg.synth.dataset import write_dataset
from rtseg.train.quality import measure

from test_tracking import FLOORS

PROMISE = {"seg_mask_map50": 0.90, "point": 0.90, "box": 0.90, "text_full_the": 0.95, "text_full_a": 0.95,
           "text_full_bare": 0.95, "text_full_untrained": 0.95, "text_colour_only": 0.98, "text_shape_only": 0.90}


@pytest.fixture(scope="module")
def quality(tmp_path_factory, demo_config):
    root = tmp_path_factory.mktemp("holdout")
    write_dataset(root, 80, seed=4242, size=(640, 480), val_fraction=1.0)
    return measure(root, demo_config)


@pytest.mark.parametrize("metric", sorted(PROMISE))
def test_model_quality(quality, metric):
    floor = max(PROMISE[metric], FLOORS[f"models/{metric}"] - FLOORS["margin"])
    n = quality.get(f"{metric}_n")
    assert n is None or n >= 50  # enough objects for the rate to mean something
    assert quality[metric] >= floor, quality


def test_bundled_models_load_like_the_real_ones(demo_config):
    import open_clip
    from ultralytics import FastSAM

    from rtseg.prompt.clip import register_configs

    model = FastSAM(demo_config.model.weights)  # the call that loads FastSAM-s.pt
    assert model.task == "segment" and model.names == {0: "object"}
    register_configs()
    name, path = demo_config.model.clip.split(":", 1)
    clip, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=path)  # as for ViT-B-32
    assert sum(p.numel() for p in clip.parameters()) > 1e6
