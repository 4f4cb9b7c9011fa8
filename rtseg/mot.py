"""Multi-object tracking metrics of label-map sequences: HOTA (DetA, AssA), IDF1, MOTA and ID switches,
computed by TrackEval (the official HOTA code; ``pip install 'trackeval>=1.3,<2'``, rtseg's ``eval`` extra).

Objects are masks, as in MOTS: in every frame each ground-truth id and each predicted id is one mask
(its pixels in the label map), the similarity of a pair is their mask IoU, and CLEAR (MOTA, ID
switches) and Identity (IDF1) match a pair at IoU >= 0.5, HOTA at each of its thresholds 0.05..0.95.
Predicted ids need not be the ground truth's: the metrics find the correspondence (an ``--everything``
run numbers its tracks as it meets them; a prompted run's ids are the prompts' order, which the
ground truth of rtseg's samples follows, but nothing here relies on it).

Why TrackEval's metric classes are called directly, not one of its datasets: a dataset (MOTS
Challenge, KITTI MOTS) reads its own files (text files of RLE masks, a seqmap, a folder layout per
tracker), decodes them and computes the same mask IoU before handing the metrics exactly the
per-frame structure built here (ids relabelled 0..n-1, one similarity matrix per frame). Label maps
cannot overlap, so the MOTS preprocessing has nothing to do but its ignore regions; rtseg reads
DAVIS's void (255) as background instead, as :mod:`rtseg.evaluate` does. Writing files only for
TrackEval to parse them back would add a format and no metric; tests/test_mot.py checks that both
ways give the same figures.

Every frame is scored (the prompted first frame too: MOT benchmarks leave none out), and every id
that appears in any ground-truth frame is an object (not only those of the first frame, as in DAVIS).

>>> gt = np.zeros((4, 8, 8), np.uint8); gt[:, 1:4, 1:4] = 1; gt[:, 5:8, 5:8] = 2
>>> pred = gt * 3; pred[2:][gt[2:] == 1] = 9          # ids 3 and 6; id 3 becomes 9 halfway
>>> m = evaluate_mot(pred, gt)
>>> m["IDSW"], m["MOTA"], round(m["IDF1"], 3)
(1, 0.875, 0.75)
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import numpy as np

from rtseg.errors import RtsegError
from rtseg.evaluate import load_folder, without_void

INSTALL = "pip install 'trackeval>=1.3,<2'  (or: pip install -e '.[eval]')"
COLUMNS = ("HOTA", "DetA", "AssA", "IDF1", "MOTA", "IDSW")


def import_trackeval() -> Any:
    """The ``trackeval`` module.

    Raises:
        RtsegError: one line saying how to install it, when it is not installed.
    """
    try:
        import trackeval
    except ImportError:
        raise RtsegError(f"MOT metrics need TrackEval: {INSTALL}") from None
    return trackeval


def frame_ious(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ids of one frame and the mask IoU of every ground-truth / predicted pair.

    Args:
        pred: (H, W) integer predicted label map, 0 = background.
        gt: (H, W) integer ground-truth label map, 0 = background (void already read as background).

    Returns:
        ``gt_ids`` (G,) int64 and ``pred_ids`` (P,) int64, the non-zero ids present, sorted, and
        ``iou`` (G, P) float64, |g & p| / |g | p|: what pycocotools' mask IoU gives for the two masks.
    """
    g, p = gt.ravel().astype(np.int64), pred.ravel().astype(np.int64)
    width = int(p.max(initial=0)) + 1
    inter = np.bincount(g * width + p, minlength=(int(g.max(initial=0)) + 1) * width).reshape(-1, width)
    area_g, area_p = inter.sum(axis=1), inter.sum(axis=0)
    g_ids, p_ids = np.flatnonzero(area_g[1:]) + 1, np.flatnonzero(area_p[1:]) + 1
    inter = inter[g_ids][:, p_ids].astype(np.float64)
    union = area_g[g_ids][:, None] + area_p[p_ids][None, :] - inter
    return g_ids.astype(np.int64), p_ids.astype(np.int64), inter / np.maximum(union, 1)


def _ignoring(frames: list[tuple[np.ndarray, np.ndarray, np.ndarray]], areas: list[dict[int, int]],
              min_visible: float) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``frames`` without the ground-truth objects that show less than ``min_visible`` of their
    largest area in the sequence (cut by the frame's edge, or hidden), and without the predicted
    objects matched to those alone (IoU >= 0.5): what MOT17 does with its low-visibility boxes."""
    most: dict[int, int] = {}
    for a in areas:
        for g, n in a.items():
            most[g] = max(most.get(g, 0), n)
    out = []
    for (g_ids, p_ids, iou), a in zip(frames, areas):
        keep = np.array([a[int(g)] >= min_visible * most[int(g)] for g in g_ids], bool)
        matched_kept = (iou[keep] >= 0.5).any(axis=0)
        drop = (iou[~keep] >= 0.5).any(axis=0) & ~matched_kept
        out.append((g_ids[keep], p_ids[~drop], iou[keep][:, ~drop]))
    return out


def sequence_data(pred: np.ndarray, gt: np.ndarray, name: str = "sequence", min_visible: float = 0.0
                  ) -> dict[str, Any]:
    """The per-sequence input of TrackEval's metrics (what its datasets' ``get_preprocessed_seq_data`` return).

    Args:
        pred: (T, H, W) integer predicted label maps, 0 = background; any ids.
        gt: (T, H, W) integer ground-truth label maps, 0 = background, 255 = void (read as background).
        name: the sequence's name.
        min_visible: a ground-truth object in a frame where it shows less than this fraction of its
            largest area in the sequence is ignored there, with the prediction matched to it (MOT17's
            visibility rule; 0: every object in every frame counts).

    Returns:
        ``num_timesteps``, ``num_gt_ids``, ``num_tracker_ids``, ``num_gt_dets``, ``num_tracker_dets``
        (ints); ``gt_ids`` and ``tracker_ids``, per frame an int64 array of ids relabelled 0..n-1 over
        the sequence; ``similarity_scores``, per frame the (G, P) float64 mask IoU; ``seq`` = ``name``.

    Raises:
        RtsegError: when the shapes differ.
    """
    if pred.shape != gt.shape:
        raise RtsegError(f"prediction shape {pred.shape} differs from ground truth {gt.shape}")
    gt = without_void(gt)
    frames = [frame_ious(p, g) for p, g in zip(pred, gt)]
    if min_visible > 0:
        areas = [dict(zip(*np.unique(g[g > 0], return_counts=True))) for g in gt]
        frames = _ignoring(frames, [{int(k): int(v) for k, v in a.items()} for a in areas], min_visible)
    none = np.zeros(0, np.int64)
    gt_all = np.unique(np.concatenate([none] + [f[0] for f in frames]))
    pred_all = np.unique(np.concatenate([none] + [f[1] for f in frames]))
    return {"num_timesteps": len(frames), "num_gt_ids": len(gt_all), "num_tracker_ids": len(pred_all),
            "num_gt_dets": sum(len(f[0]) for f in frames), "num_tracker_dets": sum(len(f[1]) for f in frames),
            "gt_ids": [np.searchsorted(gt_all, f[0]) for f in frames],
            "tracker_ids": [np.searchsorted(pred_all, f[1]) for f in frames],
            "similarity_scores": [f[2] for f in frames], "seq": name}


def mot_metrics(data: dict[str, Any]) -> dict[str, Any]:
    """TrackEval's HOTA, CLEAR and Identity metrics of one sequence, at its default thresholds.

    Args:
        data: see :func:`sequence_data`.

    Returns:
        Fractions in [0, 1] (MOTA may be negative): HOTA, DetA, AssA, DetRe, DetPr, AssRe, AssPr,
        LocA (each the mean over HOTA's 19 thresholds, as TrackEval reports them), IDF1, IDR, IDP,
        MOTA, MOTP; counts: IDSW, Frag, MT, PT, ML, TP, FN, FP (CLEAR's), and frames, gt_ids, ids
        (predicted), gt_dets, dets; ``precision`` TP / (TP + FP) and ``recall`` TP / (TP + FN): of the
        objects of all frames, matched one to one in each frame at mask IoU >= 0.5.
    """
    metrics = import_trackeval().metrics
    quiet = {"THRESHOLD": 0.5, "PRINT_CONFIG": False}
    with contextlib.redirect_stdout(io.StringIO()):  # TrackEval prints its configs and timings
        hota = metrics.HOTA().eval_sequence(data)
        clear = metrics.CLEAR(quiet).eval_sequence(data)
        ident = metrics.Identity(quiet).eval_sequence(data)
    out: dict[str, Any] = {k: float(np.mean(hota[k])) for k in
                           ("HOTA", "DetA", "AssA", "DetRe", "DetPr", "AssRe", "AssPr", "LocA")}
    out.update({k: float(ident[k]) for k in ("IDF1", "IDR", "IDP")})
    out.update({k: float(clear[k]) for k in ("MOTA", "MOTP")})
    out.update({k: int(clear[k]) for k in ("IDSW", "Frag", "MT", "PT", "ML")})
    out.update(TP=int(clear["CLR_TP"]), FN=int(clear["CLR_FN"]), FP=int(clear["CLR_FP"]))
    # per frame, objects matched one to one at mask IoU >= 0.5 (CLEAR's matches), over all frames
    out.update(precision=out["TP"] / max(out["TP"] + out["FP"], 1), recall=out["TP"] / max(out["TP"] + out["FN"], 1))
    out.update(frames=data["num_timesteps"], gt_ids=data["num_gt_ids"], ids=data["num_tracker_ids"],
               gt_dets=data["num_gt_dets"], dets=data["num_tracker_dets"])
    return out


def evaluate_mot(pred: np.ndarray, gt: np.ndarray, name: str = "sequence", min_visible: float = 0.0
                 ) -> dict[str, Any]:
    """MOT metrics of predicted label maps against ground truth; see :func:`mot_metrics`.

    Args:
        pred: (T, H, W) integer predicted label maps (any ids, 0 = background).
        gt: (T, H, W) integer ground-truth label maps (255 = void, read as background).
        name: the sequence's name.
        min_visible: see :func:`sequence_data`.
    """
    import_trackeval()  # before the work, so that a missing TrackEval fails at once
    return mot_metrics(sequence_data(pred, gt, name, min_visible))


def sequence_name(gt_dir: str | Path) -> str:
    """A sequence's name from its ground-truth folder: ``samples/showcase/gt`` -> ``showcase``."""
    path = Path(gt_dir).resolve()
    return path.parent.name if path.name == "gt" else path.name


def evaluate_mot_folders(pred_dir: str | Path, gt_dir: str | Path, min_visible: float = 0.0) -> dict[str, Any]:
    """MOT metrics of the masks in ``pred_dir`` against ``gt_dir``, frame by frame by file name.

    A ground-truth frame without a prediction counts as an empty prediction. 8-bit PNGs hold ids up to
    255: ``rtseg track --save-masks`` writes an id modulo 256, so a run past id 255 reads as fewer ids
    (its JSON lines keep them all). Returns the metrics of :func:`mot_metrics` with the sequence's
    name under ``sequence``; ``min_visible``: see :func:`sequence_data`.
    """
    import_trackeval()
    names, gt = load_folder(gt_dir)
    _, pred = load_folder(pred_dir, names)
    name = sequence_name(gt_dir)
    return {"sequence": name, **evaluate_mot(pred, gt, name, min_visible)}


def format_mot_table(results: list[dict[str, Any]]) -> str:
    """A plain-text table, a row per sequence: HOTA, DetA, AssA, IDF1, MOTA, IDSW and the id counts.

    Args:
        results: :func:`evaluate_mot_folders` results (``sequence`` and the metrics).
    """
    lines = ["sequence     " + " ".join(f"{c:>6}" for c in COLUMNS) + "  gt ids    ids"]
    for r in results:
        scores = " ".join(f"{r[c]:6d}" if c == "IDSW" else f"{r[c]:6.3f}" for c in COLUMNS)
        lines.append(f"{r['sequence'][:12]:<12} {scores}  {r['gt_ids']:6d} {r['ids']:6d}")
    return "\n".join(lines)
