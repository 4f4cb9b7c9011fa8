"""An exported model (ONNX, through ultralytics) runs through the same code path as the .pt."""

from __future__ import annotations

import shutil

import numpy as np

from rtseg.associate import iou_matrix
from rtseg.capture import open_source
from rtseg.segment import FastSAMSegmenter

from conftest import SHOWCASE


def test_onnx_export_segments_like_the_checkpoint(demo_config, tmp_path):
    from ultralytics import FastSAM

    pt = tmp_path / "shapes-seg.pt"
    shutil.copyfile(demo_config.model.weights, pt)
    onnx = FastSAM(str(pt)).export(format="onnx", imgsz=demo_config.model.imgsz, simplify=True, verbose=False)
    m = demo_config.model
    a = FastSAMSegmenter(str(pt), "cpu", m.imgsz, m.conf, m.iou)
    b = FastSAMSegmenter(str(onnx), "cpu", m.imgsz, m.conf, m.iou)
    with open_source(str(SHOWCASE / "video.mp4")) as src:
        for _, frame in zip(range(5), src):
            da, db = a(frame.image), b(frame.image)
            assert abs(len(da) - len(db)) <= 1
            iou = iou_matrix(da.mask, db.mask)
            assert np.median(iou.max(axis=1)) > 0.95
