"""An exported model (ONNX, through ultralytics) runs through the same code path as the .pt."""

from __future__ import annotations

import shutil

import numpy as np

from rtseg.track.associate import iou_matrix
from rtseg.capture.sources import open_source
from rtseg.cli import main
from rtseg.detections import masks_of
from rtseg.segment.fastsam import FastSAMSegmenter

from conftest import SHOWCASE


def test_onnx_export_segments_like_the_checkpoint(demo_config, tmp_path, capsys):
    pt = tmp_path / "shapes-seg.pt"
    shutil.copyfile(demo_config.model.weights, pt)
    assert main(["export", str(pt), "--format", "onnx", "--imgsz", str(demo_config.model.imgsz),
                 "--out", str(tmp_path / "model.onnx")]) == 0
    onnx = capsys.readouterr().out.strip()
    assert onnx == str(tmp_path / "model.onnx")
    m = demo_config.model
    a = FastSAMSegmenter(str(pt), "cpu", m.imgsz, m.conf, m.iou)
    b = FastSAMSegmenter(str(onnx), "cpu", m.imgsz, m.conf, m.iou)
    with open_source(str(SHOWCASE / "video.mp4")) as src:
        for _, frame in zip(range(5), src):
            da, db = a(frame.image), b(frame.image)
            assert abs(len(da) - len(db)) <= 1
            iou = iou_matrix(masks_of(da, frame.image.shape[:2]), masks_of(db, frame.image.shape[:2]))
            assert np.median(iou.max(axis=1)) > 0.95


def test_export_errors_are_one_line(capsys, demo_config):
    assert main(["export", demo_config.model.weights, "--format", "engine"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and ("tensorrt" in err or "--device cuda" in err)


def test_openvino_folder_name_is_checked_before_exporting(capsys, demo_config, tmp_path):
    assert main(["export", demo_config.model.weights, "--format", "openvino", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and ("_openvino_model" in err or "openvino" in err)
