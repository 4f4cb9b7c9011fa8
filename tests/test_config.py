import pytest

from rtseg.config import load_config, override
from rtseg.errors import RtsegError

from conftest import ROOT


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.stem)
def test_bundled_configs_load(path):
    cfg = load_config(path)
    assert cfg.model.imgsz % 32 == 0


def test_cpu_realtime_config_is_keyframe_mode():
    cfg = load_config(ROOT / "configs" / "cpu-realtime.yaml")
    assert cfg.keyframes.every == 4 and cfg.model.imgsz == 320 and cfg.model.weights == "fastsam-s"


def test_demo_paths_resolve_to_bundled_models():
    cfg = load_config(ROOT / "configs" / "demo.yaml")
    assert (ROOT / "samples" / "models" / "shapes-seg.pt").samefile(cfg.model.weights)
    assert cfg.model.clip.startswith("rtseg-shapes-clip:") and cfg.model.clip.endswith("shapes-clip.pt")


@pytest.mark.parametrize("text, message", [
    ("model:\n  wieghts: x\n", "unknown key 'wieghts'"),
    ("speed: 3\n", "unknown key 'speed'"),
    ("model:\n  imgsz: 333\n", "multiple of 32"),
    ("model:\n  conf: high\n", "expected float"),
    ("tracker:\n  match_iou: 2\n", "match_iou"),
    ("model:\n  refine: -1\n", "model.refine must be >= 0"),
    ("output:\n  codec: h264x\n", "fourcc"),
    ("keyframes:\n  every: 0\n", "keyframes.every"),
    ("keyframes:\n  min_inliers: 0.5\n", "unknown key 'min_inliers'"),
    ("model: [1, 2\n", "not valid YAML"),
])
def test_bad_config_is_rejected_naming_the_key(tmp_path, text, message):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(RtsegError, match=message):
        load_config(f)


def test_override_replaces_only_given_keys():
    cfg = override(load_config(None), model={"imgsz": 320, "device": None})
    assert cfg.model.imgsz == 320 and cfg.model.device == "auto"
    with pytest.raises(RtsegError):
        override(cfg, model={"imgsz": 100})
