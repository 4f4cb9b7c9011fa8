"""DAVIS 2017 semi-supervised evaluation of indexed-PNG mask folders: J (IoU), F (boundary F-measure),
J&F, recall and decay, per object and overall.

The definitions are those of the official DAVIS 2017 evaluation (github.com/davisvideochallenge/
davis2017-evaluation: ``davis2017/metrics.py`` and ``davis2017/utils.py``, run in its semi-supervised
mode); tests/test_evaluate.py checks every figure against numbers that code produced:

- the objects are the ids 1..max of the first ground-truth frame; 255 is "void" and reads as
  background (the semi-supervised task scores void pixels like background, it does not leave them out);
- the first and last frames are left out (the first carries the prompt);
- J of a frame where an object is absent from both prediction and ground truth is 1, and so is F of a
  frame where neither has a boundary pixel;
- a boundary pixel differs from its east, south or south-east neighbour (the image border is never a
  boundary); boundaries match within a disk of radius ceil(0.8% of the image diagonal);
- recall is the share of frames scoring above 0.5; decay is the mean of the first of four overlapping
  bins of frames minus the mean of the last.

Where the official code stops or has no answer, rtseg scores anyway: a predicted id above the scored
objects is ignored (the official code refuses the sequence), a missing prediction frame is empty (it
refuses), a sequence of 1 or 2 frames is scored whole (it scores no frame), and decay past 255 frames
uses the intended bins (see :func:`decay_bins`).

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

VOID = 255  # the DAVIS ground-truth id of pixels nobody could label


def jaccard(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU of two masks.

    Args:
        pred: (H, W) bool mask.
        gt: (H, W) bool mask.

    Returns:
        |pred & gt| / |pred | gt|, or 1.0 when both are empty.
    """
    union = np.logical_or(pred, gt).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, gt).sum() / union)


def boundary(mask: np.ndarray) -> np.ndarray:
    """The one-pixel boundary of a mask, as DAVIS's ``_seg2bmap`` draws it.

    A pixel is on the boundary when it differs from its east, south or south-east neighbour; outside
    the image there is no neighbour to differ from, so the last row compares east only, the last
    column south only, and a mask touching the image border has no boundary along it.

    Args:
        mask: (H, W) mask, any dtype (non-zero is inside).

    Returns:
        (H, W) bool boundary map.
    """
    m = mask.astype(bool)
    b = np.zeros_like(m)
    b[:, :-1] = m[:, :-1] ^ m[:, 1:]
    b[:-1, :] |= m[:-1, :] ^ m[1:, :]
    b[:-1, :-1] |= m[:-1, :-1] ^ m[1:, 1:]
    return b


def disk(radius: float) -> np.ndarray:
    """The structuring element of ``skimage.morphology.disk(radius)``, which DAVIS dilates with.

    Args:
        radius: in pixels (the official code passes a float; a whole number gives a (2r+1, 2r+1) disk).

    Returns:
        (K, K) uint8, 1 where x*x + y*y <= radius*radius for x, y in -radius, -radius + 1, ... <= radius.
    """
    steps = np.arange(-radius, radius + 1)
    return (steps[:, None] ** 2 + steps[None, :] ** 2 <= radius**2).astype(np.uint8)


def tolerance(shape: tuple[int, ...], bound_th: float = 0.008) -> float:
    """Boundary match radius in pixels: ``bound_th`` itself if >= 1, else ceil(bound_th x image diagonal).

    Args:
        shape: (H, W) of the image.
        bound_th: pixels, or a fraction of the diagonal when below 1.
    """
    return bound_th if bound_th >= 1 else float(np.ceil(bound_th * np.linalg.norm(shape)))


def f_measure(pred: np.ndarray, gt: np.ndarray, bound_th: float = 0.008) -> float:
    """Boundary F-measure: the boundaries of ``pred`` and ``gt`` matched within :func:`tolerance`.

    Args:
        pred: (H, W) bool mask.
        gt: (H, W) bool mask.
        bound_th: the match radius, see :func:`tolerance`.

    Returns:
        Harmonic mean of boundary precision and recall; 1.0 when neither mask has a boundary pixel,
        0.0 when only one has.
    """
    bp, bg = boundary(pred), boundary(gt)
    n_pred, n_gt = int(bp.sum()), int(bg.sum())
    if n_pred == 0 or n_gt == 0:
        return 1.0 if n_pred == n_gt else 0.0
    kernel = disk(tolerance(gt.shape, bound_th))
    # Only the box around both boundaries is read, and dilating it alone gives the same pixels there
    # (outside the image, cv2.dilate adds nothing): the cost of an object's size, not the frame's.
    rows, cols = np.flatnonzero((bp | bg).any(1)), np.flatnonzero((bp | bg).any(0))
    box = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
    bp, bg = bp[box], bg[box]
    gt_near = cv2.dilate(bg.astype(np.uint8), kernel).astype(bool)
    pred_near = cv2.dilate(bp.astype(np.uint8), kernel).astype(bool)
    precision = (bp & gt_near).sum() / n_pred
    recall = (bg & pred_near).sum() / n_gt
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


def decay_bins(n: int) -> list[slice]:
    """DAVIS's four overlapping bins of ``n`` per-frame scores, over which decay is taken.

    Bin i runs from edge i to edge i + 1 inclusive, edges = round(linspace(1, n, 5)) - 1 with halves
    rounded up, so neighbouring bins share a frame and fewer than 4 frames still make 4 bins.

    Args:
        n: number of scored frames, >= 1.

    Returns:
        Four slices into the (n,) per-frame scores.
    """
    # The official db_statistics casts the edges to uint8: from 256 frames on the last bin comes out
    # empty (its end, edge + 1, overflows to 0 under NumPy 2) and past 256 the edges wrap modulo 256,
    # so its decay there is NaN or taken over the wrong frames. rtseg keeps the edges as the formula
    # means them (int64) at any length.
    edges = (np.round(np.linspace(1, n, 5) + 1e-10) - 1).astype(np.int64)
    return [slice(int(lo), int(hi) + 1) for lo, hi in zip(edges[:-1], edges[1:])]


def statistics(values: np.ndarray) -> dict[str, float]:
    """Mean, recall and decay of per-frame scores (DAVIS's ``db_statistics``).

    Args:
        values: (N,) float per-frame scores.

    Returns:
        ``mean``; ``recall``, the share of frames above 0.5; ``decay``, the mean of the first of
        :func:`decay_bins` minus the mean of the last. All NaN when N = 0.
    """
    if len(values) == 0:
        return {"mean": float("nan"), "recall": float("nan"), "decay": float("nan")}
    bins = decay_bins(len(values))
    return {"mean": float(values.mean()), "recall": float((values > 0.5).mean()),
            "decay": float(values[bins[0]].mean() - values[bins[-1]].mean())}


def without_void(gt: np.ndarray) -> np.ndarray:
    """Ground-truth label maps with void (255) read as background.

    Args:
        gt: (T, H, W) integer label maps.

    Returns:
        (T, H, W) label maps of the same dtype.
    """
    return np.where(gt == VOID, 0, gt).astype(gt.dtype, copy=False)


def object_ids(gt: np.ndarray) -> list[int]:
    """The ids DAVIS scores: 1..max of the first frame (void aside), present there or not.

    Args:
        gt: (T, H, W) integer label maps.

    Returns:
        Sorted ids; empty when the first frame has no object (or T = 0).
    """
    if len(gt) == 0:
        return []
    return list(range(1, int(without_void(gt[:1]).max()) + 1))


def score_object(pred: np.ndarray, gt: np.ndarray, oid: int) -> dict[str, Any]:
    """J, F and J&F with their recall and decay for object ``oid``.

    Args:
        pred: (T, H, W) predicted label maps.
        gt: (T, H, W) ground-truth label maps, void already read as background.
        oid: the object id.

    Returns:
        The per-object entry of :func:`evaluate_arrays` (``frames`` = T).
    """
    j = np.array([jaccard(p == oid, g == oid) for p, g in zip(pred, gt)])
    f = np.array([f_measure(p == oid, g == oid) for p, g in zip(pred, gt)])
    js, fs = statistics(j), statistics(f)
    return {"J": js["mean"], "J_recall": js["recall"], "J_decay": js["decay"],
            "F": fs["mean"], "F_recall": fs["recall"], "F_decay": fs["decay"],
            "J&F": (js["mean"] + fs["mean"]) / 2, "frames": len(j)}


def evaluate_arrays(pred: np.ndarray, gt: np.ndarray, skip_ends: bool = True,
                    objects: list[int] | None = None) -> dict[str, Any]:
    """Scores of predicted label maps against ground truth, per object and overall.

    Args:
        pred: (T, H, W) integer predicted label maps.
        gt: (T, H, W) integer ground-truth label maps; 255 is void.
        skip_ends: leave out the first and last frames (when T > 2).
        objects: the ids to score; default :func:`object_ids` of ``gt``.

    Returns:
        ``{"objects": {id: scores}, "overall": scores}``, scores with keys J, J_recall, J_decay, F,
        F_recall, F_decay, J&F (and ``frames`` per object); overall is the mean over objects.

    Raises:
        RtsegError: when the shapes differ.
    """
    if pred.shape != gt.shape:
        raise RtsegError(f"prediction shape {pred.shape} differs from ground truth {gt.shape}")
    gt = without_void(gt)
    ids = objects if objects is not None else object_ids(gt)
    frames = slice(1, -1) if skip_ends and len(gt) > 2 else slice(None)
    per_object = {str(oid): score_object(pred[frames], gt[frames], oid) for oid in ids}
    keys = ("J", "J_recall", "J_decay", "F", "F_recall", "F_decay")
    overall = {k: float(np.mean([o[k] for o in per_object.values()])) if per_object else float("nan")
               for k in keys}
    overall["J&F"] = (overall["J"] + overall["F"]) / 2
    return {"objects": per_object, "overall": overall}


def load_folder(folder: str | Path, names: list[str] | None = None) -> tuple[list[str], np.ndarray]:
    """Sorted PNG names and their label maps; a name in ``names`` that is missing is read as empty.

    Args:
        folder: a folder of indexed PNGs.
        names: the file names to read, in order; default every PNG in ``folder``, sorted.

    Returns:
        The names and their (T, H, W) uint8 label maps.

    Raises:
        RtsegError: when the folder or every mask is missing, or a mask cannot be read.
    """
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
            if shape is not None and m.shape != shape:
                raise RtsegError(f"mask {path} is {m.shape[1]}x{m.shape[0]}, the masks before it {shape[1]}x{shape[0]}")
            shape = m.shape
            maps.append(m)
        else:
            maps.append(None)
    if shape is None:
        raise RtsegError(f"none of the ground-truth frames has a mask in {folder}")
    return names, np.stack([m if m is not None else np.zeros(shape, np.uint8) for m in maps])


def evaluate_folders(pred_dir: str | Path, gt_dir: str | Path, skip_ends: bool = True) -> dict[str, Any]:
    """Scores of the masks in ``pred_dir`` against ``gt_dir``, frame by frame by file name.

    A ground-truth frame without a prediction counts as an empty prediction. See :func:`evaluate_arrays`.
    """
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
