"""Measure the bundled models on held-out scenes: what their model cards report and tests pin.

- segmentation: mask mAP50 (ultralytics' validator) at the configured inference size, and how often
  a point prompt (the most interior pixel of the object) or a box prompt (its bounding box) selects a
  mask with IoU > 0.5 with the object;
- text: given a caption and the masked crops of all objects in a scene of 2 to 8, how often the
  right crop scores highest: colour and shape in several phrasings, colour alone and shape alone
  (where unique in the scene); and the same on the segmenter's own masks (right when the chosen
  mask has IoU > 0.5 with the object).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from rtseg.track.associate import iou_matrix
from rtseg.config import Config
from rtseg.output.png import read_index_png
from rtseg.segment.offline import prepare_ultralytics
from rtseg.prompt.prompts import BoxPrompt, PointPrompt
from rtseg.prompt.select import select_box, select_point
from rtseg.detections import masks_of
from rtseg.segment.fastsam import FastSAMSegmenter
from rtseg.segment.safe_load import open_fastsam
from rtseg.synth.video import _box, _point_inside
from rtseg.prompt.clip import TextScorer

PHRASINGS = {"the": "the {c} {s}", "a": "a {c} {s}", "bare": "{c} {s}", "untrained": "find me the {c} {s}"}


def _scenes(root: Path) -> list[tuple[np.ndarray, np.ndarray, list[dict]]]:
    """(image, GT masks (N, H, W), objects) for each held-out scene of a dataset folder."""
    by_scene: dict[str, list[dict]] = defaultdict(list)
    for line in open(root / "crops.jsonl"):
        rec = json.loads(line)
        by_scene[rec["scene"]].append(rec)
    out = []
    for scene, recs in sorted(by_scene.items()):
        split = recs[0]["split"]
        image = cv2.imread(str(root / "images" / split / f"{scene}.jpg"), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(root / "images" / split / f"{scene}.jpg")
        labels = read_index_png(root / "masks" / split / f"{scene}.png")
        out.append((image, np.stack([labels == rec["id"] for rec in recs]), recs))
    return out


def measure(data: str | Path, config: Config, min_area: int = 200, text: bool = True) -> dict:
    """All quality numbers for the models named in ``config`` on the held-out set ``data``
    (``text=False``: the segmenter's only)."""
    root = Path(data)
    m = config.model
    result: dict = {"data": str(root), "imgsz": m.imgsz, "weights": m.weights, "clip": m.clip}
    prepare_ultralytics()
    val = open_fastsam(m.weights).val(data=str((root / "data.yaml").resolve()), imgsz=m.imgsz, batch=8, conf=0.001,
                                 device="cpu", plots=False, verbose=False, save_json=False,
                                 project=str(root / "val-runs"), name="val", exist_ok=True)
    result["seg_mask_map50"] = round(float(val.seg.map50), 4)
    result["seg_mask_map50_95"] = round(float(val.seg.map), 4)

    segmenter = FastSAMSegmenter(m.weights, "cpu", m.imgsz, m.conf, m.iou, m.half, m.max_det)
    scorer = TextScorer(m.clip) if text else None
    hits: dict[str, list[bool]] = defaultdict(list)
    for image, gt, objs in _scenes(root):
        pred = masks_of(segmenter(image), image.shape[:2])
        keep = [k for k, o in enumerate(objs) if o["area"] >= min_area]
        for k in keep:
            point = PointPrompt((_point_inside(gt[k]),), (1,))
            box = BoxPrompt(tuple(float(v) for v in _box(gt[k])))  # type: ignore[arg-type]
            for name, chosen in (("point", select_point(pred, point)), ("box", select_box(pred, box))):
                hits[name].append(chosen is not None and iou_matrix(gt[k:k + 1], pred[chosen:chosen + 1])[0, 0] > 0.5)
        if len(keep) < 2 or scorer is None:
            continue
        crops = scorer.encode_crops(image, gt[keep])
        cands = [objs[k] for k in keep]
        pred_crops = scorer.encode_crops(image, pred) if len(pred) else None
        pred_iou = iou_matrix(gt[keep], pred)
        for j, o in enumerate(cands):
            queries: dict[str, str] = {f"full_{p}": t.format(c=o["colour"], s=o["shape"]) for p, t in PHRASINGS.items()}
            if sum(c["colour"] == o["colour"] for c in cands) == 1:
                queries["colour_only"] = o["colour"]
            if sum(c["shape"] == o["shape"] for c in cands) == 1:
                queries["shape_only"] = f"the {o['shape']}"
            for name, query in queries.items():
                hits[f"text_{name}"].append(int(np.argmax(crops @ scorer.encode_text(query))) == j)
            if pred_crops is not None:
                best = int(np.argmax(pred_crops @ scorer.encode_text(queries["full_the"])))
                hits["text_on_predicted_masks"].append(pred_iou[j, best] > 0.5)
    for name, values in sorted(hits.items()):
        result[name] = round(float(np.mean(values)), 4)
        result[f"{name}_n"] = len(values)
    return result
