"""DAVIS-style evaluation of indexed-PNG mask folders: J (IoU), F (boundary F-measure), J&F,
recall and decay, per object and overall.

Conventions follow the DAVIS 2017 semi-supervised benchmark: the first and last frames are left
out (the first carries the prompt), a frame where an object is absent from both prediction and
ground truth scores 1, the boundary tolerance is 0.8% of the image diagonal, recall is the share of
frames scoring above 0.5, and decay is the mean of the first quarter of frames minus the last.

>>> gt = np.zeros((3, 8, 8), np.uint8); gt[:, 2:6, 2:6] = 1
>>> pred = gt.copy(); pred[1] = 0
>>> round(evaluate_arrays(pred, gt, skip_ends=False)["objects"]["1"]["J"], 4)
0.6667
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from rtseg.errors import RtsegError
from rtseg.output.png import read_index_png


def jaccard(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU of two bool masks; 1 when both are empty."""
    union = np.logical_or(pred, gt).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, gt).sum() / union)


def boundary(mask: np.ndarray) -> np.ndarray:
    """The mask's pixels that touch the outside (4-neighbourhood; the image border counts as outside)."""
    m = np.pad(mask.astype(np.uint8), 1)
    eroded = cv2.erode(m, np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8))
    return (m.astype(bool) & ~eroded.astype(bool))[1:-1, 1:-1]


def f_measure(pred: np.ndarray, gt: np.ndarray, bound_th: float = 0.008) -> float:
    """Boundary F-measure with a tolerance of ``bound_th`` x the image diagonal (pixels, if >= 1)."""
    h, w = gt.shape
    radius = int(bound_th if bound_th >= 1 else np.ceil(bound_th * np.hypot(h, w)))
    bp, bg = boundary(pred), boundary(gt)
    if not bp.any() and not bg.any():
        return 1.0
    if not bp.any() or not bg.any():
        return 0.0
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    gt_near = cv2.dilate(bg.astype(np.uint8), disk).astype(bool)
    pred_near = cv2.dilate(bp.astype(np.uint8), disk).astype(bool)
    precision = (bp & gt_near).sum() / bp.sum()
    recall = (bg & pred_near).sum() / bg.sum()
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


def statistics(values: np.ndarray) -> dict[str, float]:
    """Mean, recall (share > 0.5) and decay (first quarter minus last quarter) of per-frame scores."""
    if len(values) == 0:
        return {"mean": float("nan"), "recall": float("nan"), "decay": float("nan")}
    bins = np.array_split(values, 4) if len(values) >= 4 else [values] * 4
    return {"mean": float(values.mean()), "recall": float((values > 0.5).mean()),
            "decay": float(bins[0].mean() - bins[-1].mean())}


def evaluate_arrays(pred: np.ndarray, gt: np.ndarray, skip_ends: bool = True,
                    objects: list[int] | None = None) -> dict[str, Any]:
    """Scores of predicted label maps (T, H, W) against ground truth (T, H, W), per object and overall.

    Objects are the non-zero ids of the ground truth (or ``objects``).
    """
    if pred.shape != gt.shape:
        raise RtsegError(f"prediction shape {pred.shape} differs from ground truth {gt.shape}")
    ids = objects if objects is not None else [int(i) for i in np.unique(gt) if i != 0]
    frames = slice(1, -1) if skip_ends and len(gt) > 2 else slice(None)
    per_object: dict[str, Any] = {}
    for oid in ids:
        j = np.array([jaccard(p == oid, g == oid) for p, g in zip(pred[frames], gt[frames])])
        f = np.array([f_measure(p == oid, g == oid) for p, g in zip(pred[frames], gt[frames])])
        js, fs = statistics(j), statistics(f)
        per_object[str(oid)] = {"J": js["mean"], "J_recall": js["recall"], "J_decay": js["decay"],
                                "F": fs["mean"], "F_recall": fs["recall"], "F_decay": fs["decay"],
                                "J&F": (js["mean"] + fs["mean"]) / 2, "frames": len(j)}
    keys = ("J", "J_recall", "J_decay", "F", "F_recall", "F_decay")
    overall = {k: float(np.mean([o[k] for o in per_object.values()])) if per_object else float("nan")
               for k in keys}
    overall["J&F"] = (overall["J"] + overall["F"]) / 2
    return {"objects": per_object, "overall": overall}


def load_folder(folder: str | Path, names: list[str] | None = None) -> tuple[list[str], np.ndarray]:
    """Sorted PNG names and their label maps (T, H, W); a name in ``names`` that is missing is empty."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RtsegError(f"not a folder: {folder}")
    found = sorted(p.name for p in folder.glob("*.png"))
    if names is None:
        if not found:
            raise RtsegError(f"no PNG masks in {folder}")
        names = found
    maps: list[np.ndarray | None] = []
    shape = None
    for name in names:
        path = folder / name
        if path.exists():
            try:
                m = read_index_png(path)
            except (OSError, ValueError) as exc:
                raise RtsegError(f"cannot read mask {path}: {exc}".splitlines()[0]) from exc
            shape = m.shape
            maps.append(m)
        else:
            maps.append(None)
    if shape is None:
        raise RtsegError(f"none of the ground-truth frames has a mask in {folder}")
    return names, np.stack([m if m is not None else np.zeros(shape, np.uint8) for m in maps])


def evaluate_folders(pred_dir: str | Path, gt_dir: str | Path, skip_ends: bool = True) -> dict[str, Any]:
    """Scores of the masks in ``pred_dir`` against ``gt_dir``, frame by frame by file name."""
    names, gt = load_folder(gt_dir)
    _, pred = load_folder(pred_dir, names)
    return evaluate_arrays(pred, gt, skip_ends=skip_ends)


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table of the per-object and overall scores."""
    cols = ("J&F", "J", "J_recall", "J_decay", "F", "F_recall", "F_decay")
    lines = ["object " + " ".join(f"{c:>8}" for c in cols)]
    for oid, scores in result["objects"].items():
        lines.append(f"{oid:>6} " + " ".join(f"{scores[c]:8.3f}" for c in cols))
    lines.append("  mean " + " ".join(f"{result['overall'][c]:8.3f}" for c in cols))
    return "\n".join(lines)
