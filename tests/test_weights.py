"""Model files that cannot run code: a .pt is unpickled weights-only (rtseg.segment.safe_load) unless
the command line says --trust-weights. Each payload would touch a marker file when unpickled."""

from __future__ import annotations

import os
import pathlib

import cv2
import numpy as np
import pytest
import torch
import yaml

from rtseg.cli import main
from rtseg.errors import RtsegError

from conftest import DEMO_CONFIG, ROOT, SHOWCASE

SEG = ROOT / "samples" / "models" / "shapes-seg.pt"
VIDEO = str(SHOWCASE / "video.mp4")
ONE_FRAME = ["--max-frames", "1", "--quiet"]


class _System:
    """The classic: os.system on unpickling."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


class _Touch(_System):
    """Path.touch through getattr on an allowed type (pathlib paths are in checkpoints)."""

    def __reduce__(self):
        return pathlib.PosixPath(self.marker).touch, ()  # pickled as getattr(PosixPath(...), 'touch')


class _BuildModel(_System):
    """An allow-listed model class called with a crafted config: parse_model evals its activation."""

    def __reduce__(self):
        from ultralytics.nn.tasks import SegmentationModel

        act = f"(__import__('pathlib').Path({str(self.marker)!r}).touch(), __import__('torch').nn.SiLU())[1]"
        return SegmentationModel, ({"nc": 1, "activation": act, "backbone": [[-1, 1, "Conv", [16, 3, 2]]],
                                    "head": []},)


PAYLOADS = {  # kind -> (what the refusal names)
    "system": "it references posix.system",
    "hidden": "it calls getattr(PosixPath, 'touch')",
    "model-call": "it calls ultralytics.nn.tasks.SegmentationModel",
}


@pytest.fixture
def evil(tmp_path):
    """``evil(kind)`` -> (a malicious .pt, the marker file its payload would create)."""

    def make(kind: str) -> tuple[pathlib.Path, pathlib.Path]:
        marker, path = tmp_path / f"{kind}.ran", tmp_path / f"{kind}.pt"
        if kind == "system":
            torch.save({"model": _System(marker)}, path)
        elif kind == "hidden":  # the bundled checkpoint, whole, with the payload among its training args
            ckpt = torch.load(SEG, weights_only=False)  # our own file
            ckpt["train_args"]["project"] = _Touch(marker)
            torch.save(ckpt, path)
        else:
            torch.save({"model": _BuildModel(marker), "train_args": {}}, path)
        return path, marker

    return make


def run(capsys, *argv) -> tuple[int, list[str]]:
    code = main([str(a) for a in argv])
    return code, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def assert_refused(code: int, lines: list[str], path: pathlib.Path, why: str) -> None:
    assert code == 2, lines
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    assert f"refusing to load model {path}: it would run code ({why})" in lines[0], lines[0]
    assert "--trust-weights" in lines[0] and "ONNX" in lines[0], lines[0]


@pytest.mark.parametrize("kind", PAYLOADS)
def test_a_pt_that_runs_code_is_refused(evil, capsys, kind):
    path, marker = evil(kind)
    code, lines = run(capsys, "track", VIDEO, "--point", "5,5", "--config", DEMO_CONFIG, "--model", path, *ONE_FRAME)
    assert not marker.exists()
    assert_refused(code, lines, path, PAYLOADS[kind])


def test_trust_weights_loads_it_as_before(evil, capsys):
    path, marker = evil("system")
    code, lines = run(capsys, "track", VIDEO, "--point", "5,5", "--config", DEMO_CONFIG, "--model", path,
                      "--trust-weights", *ONE_FRAME)
    assert marker.exists(), lines  # the flag hands the file to ultralytics' unrestricted load
    assert code == 2 and "cannot load model" in lines[0], lines  # ... which then finds no model in it


def test_a_torchscript_file_is_refused_unless_trusted(tmp_path, capsys):
    """torch.jit.load runs a TorchScript file's program: nothing rtseg can check, so only on trust."""
    path = tmp_path / "model.torchscript"
    torch.jit.save(torch.jit.script(torch.nn.Identity()), str(path))
    argv = ["track", VIDEO, "--point", "5,5", "--config", DEMO_CONFIG, "--model", path, *ONE_FRAME]
    code, lines = run(capsys, *argv)
    assert code == 2 and len(lines) == 1, lines
    assert f"refusing to load model {path}: a TorchScript file is a program" in lines[0], lines[0]
    assert "--trust-weights" in lines[0] and "ONNX" in lines[0], lines[0]
    code, lines = run(capsys, *argv, "--trust-weights")  # handed to ultralytics: no FastSAM in it
    assert code != 0 and not any("refusing" in line for line in lines), lines


def test_a_config_cannot_name_one_or_turn_trust_on(evil, tmp_path, capsys):
    path, marker = evil("system")
    doc = yaml.safe_load(DEMO_CONFIG.read_text())
    doc["model"].update(weights=str(path), clip="rtseg-shapes-clip:" + str(ROOT / "samples/models/shapes-clip.pt"))
    config = tmp_path / "evil.yaml"
    config.write_text(yaml.safe_dump(doc))
    code, lines = run(capsys, "track", VIDEO, "--point", "5,5", "--config", config, *ONE_FRAME)
    assert not marker.exists()
    assert_refused(code, lines, path, PAYLOADS["system"])
    doc["model"]["trust_weights"] = True
    config.write_text(yaml.safe_dump(doc))
    code, lines = run(capsys, "track", VIDEO, "--point", "5,5", "--config", config, *ONE_FRAME)
    assert code == 2 and "unknown key 'trust_weights'" in lines[0], lines
    assert not marker.exists()


def test_every_command_that_takes_a_model_refuses_it(evil, tmp_path, capsys, demo_config):
    from rtseg.config import override
    from rtseg.web.models import ModelBank

    path, marker = evil("model-call")
    why = PAYLOADS["model-call"]
    assert_refused(*run(capsys, "export", path, "--out", tmp_path / "evil.onnx"), path, why)
    assert_refused(*run(capsys, "bench", SHOWCASE, "--config", DEMO_CONFIG, "--model", path, "--runs", "forward",
                        "--frames", "2", "--out", tmp_path / "bench", "--quiet"), path, why)
    assert_refused(*run(capsys, "batch", VIDEO, "--point", "5,5", "--config", DEMO_CONFIG, "--model", path,
                        "--out", tmp_path / "batch", "--quiet"), path, why)
    with pytest.raises(RtsegError, match="refusing to load model .*SegmentationModel"):  # rtseg web's models
        ModelBank({"evil": override(demo_config, model={"weights": str(path)})}).get("evil")
    assert not marker.exists()


def test_a_model_class_stays_uncallable_whatever_else_is_allowed(evil):
    """ultralytics' own safe mode registers the real model classes process-wide under their real names;
    rtseg's load does not use that list."""
    from ultralytics.nn.tasks import SegmentationModel

    from rtseg.segment.safe_load import safe_torch_load

    path, marker = evil("model-call")
    with torch.serialization.safe_globals([SegmentationModel]), pytest.raises(RtsegError, match="it calls"):
        safe_torch_load(path)
    assert not marker.exists()


def test_the_bundled_model_loads_safely_and_segments_as_before(segmenter, demo_config):
    import torch._weights_only_unpickler as wo
    import ultralytics.nn.tasks as tasks
    from ultralytics.utils import patches

    from rtseg.detections import masks_of
    from rtseg.segment.fastsam import FastSAMSegmenter

    before = wo._get_user_allowed_globals
    safe = segmenter.inner  # the session's model: loaded the default, safe way
    trusted = FastSAMSegmenter.from_config(demo_config.model, trust_weights=True)
    assert tasks.torch_load is patches.torch_load and wo._get_user_allowed_globals is before  # patches undone
    a, b = safe.model.model.state_dict(), trusted.model.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    capture = cv2.VideoCapture(VIDEO)
    ok, frame = capture.read()
    capture.release()
    assert ok
    mine, theirs = segmenter(frame), trusted(frame)
    assert len(mine) > 0
    assert np.array_equal(masks_of(mine, frame.shape[:2]), masks_of(theirs, frame.shape[:2]))
    assert np.array_equal(mine.xyxy, theirs.xyxy) and np.array_equal(mine.confidence, theirs.confidence)
