"""MOT metrics (rtseg/mot.py): TrackEval's figures through rtseg's direct call equal those of TrackEval's own
MOTS pipeline, ``rtseg eval --mot`` and the bench's MOT runs. (rtseg's HOTA in ``--everything`` mode, pinned to
tests/quality.json, is tested in tests/test_tracking.py, on the runs its identity check reads.)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from rtseg.cli import main
from rtseg.evaluate import evaluate_folders, format_table
from rtseg.mot import evaluate_mot, frame_ious, sequence_data
from rtseg.output.png import write_index_png

from conftest import DEMO_CONFIG

trackeval = pytest.importorskip("trackeval")
FLOORS = json.loads((Path(__file__).with_name("quality.json")).read_text())


def random_sequence(seed: int, frames: int = 12, shape: tuple[int, int] = (48, 64)) -> tuple[np.ndarray, np.ndarray]:
    """Moving squares as ground truth (ids 1..4, one entering late, one leaving early, some void) and a
    noisy prediction of them with other ids, a switch, a missed object and a false one."""
    rng = np.random.default_rng(seed)
    gt = np.zeros((frames, *shape), np.uint8)
    pred = np.zeros((frames, *shape), np.int32)
    starts = rng.integers(0, 40, (4, 2))
    for t in range(frames):
        for k in range(4):
            if (k == 3 and t < 3) or (k == 2 and t > 8):
                continue
            y, x = (starts[k] + t * rng.integers(1, 3, 2)) % (np.array(shape) - 12)
            gt[t, y:y + 10, x:x + 10] = k + 1
            dy, dx = rng.integers(-2, 3, 2)
            tid = 7 * (k + 1) + (100 if k == 0 and t >= 6 else 0)
            if rng.random() > 0.1:
                pred[t, max(y + dy, 0):y + dy + 10, max(x + dx, 0):x + dx + 10] = tid
        if t % 4 == 0:
            pred[t, :5, :5] = 999  # a false object
        gt[t, -2:, :] = 255  # void, read as background
    return pred, gt


def trackeval_mots(pred: np.ndarray, gt: np.ndarray, folder: Path) -> dict:
    """The same sequence through TrackEval's own MOTS Challenge pipeline (RLE text files, its reader,
    its pycocotools mask IoU, its preprocessing): HOTA, CLEAR and Identity results."""
    from pycocotools import mask as rle

    def write(path: Path, maps: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        for t, m in enumerate(maps):
            for i in np.unique(m[(m != 0) & (m != 255)]):
                enc = rle.encode(np.asfortranarray((m == i).astype(np.uint8)))
                lines.append(f"{t + 1} {int(i)} 2 {m.shape[0]} {m.shape[1]} {enc['counts'].decode()}")
        path.write_text("\n".join(lines) + "\n")

    write(folder / "gt" / "seq" / "gt" / "gt.txt", gt)
    write(folder / "trackers" / "rtseg" / "data" / "seq.txt", pred)
    quiet = {"PRINT_CONFIG": False}
    dataset = trackeval.datasets.MOTSChallenge({**quiet, "GT_FOLDER": str(folder / "gt"), "SKIP_SPLIT_FOL": True,
                                                "TRACKERS_FOLDER": str(folder / "trackers"),
                                                "SEQ_INFO": {"seq": len(gt)}})
    evaluator = trackeval.Evaluator({**quiet, "USE_PARALLEL": False, "PRINT_RESULTS": False, "OUTPUT_SUMMARY": False,
                                     "OUTPUT_DETAILED": False, "PLOT_CURVES": False, "TIME_PROGRESS": False,
                                     "DISPLAY_LESS_PROGRESS": True})
    metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR(quiet), trackeval.metrics.Identity(quiet)]
    results, _ = evaluator.evaluate([dataset], metrics)
    return results["MOTSChallenge"]["rtseg"]["seq"]["pedestrian"]


def test_mask_iou_is_pycocotools_iou():
    from trackeval.datasets._base_dataset import _BaseDataset

    pred, gt = random_sequence(3)
    for p, g in zip(pred, gt):
        g = np.where(g == 255, 0, g)
        g_ids, p_ids, iou = frame_ious(p, g)
        assert list(g_ids) == [i for i in np.unique(g) if i] and list(p_ids) == [i for i in np.unique(p) if i]
        ref = _BaseDataset._calculate_mask_ious(np.stack([g == i for i in g_ids]).astype(np.uint8),
                                                np.stack([p == i for i in p_ids]).astype(np.uint8))
        np.testing.assert_allclose(iou, ref, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_figures_equal_trackevals_own_mots_pipeline(seed, tmp_path):
    pred, gt = random_sequence(seed)
    ours = evaluate_mot(pred, gt)
    ref = trackeval_mots(pred, gt, tmp_path)
    assert ours["HOTA"] == pytest.approx(float(np.mean(ref["HOTA"]["HOTA"])), abs=1e-12)
    assert ours["AssA"] == pytest.approx(float(np.mean(ref["HOTA"]["AssA"])), abs=1e-12)
    assert ours["DetA"] == pytest.approx(float(np.mean(ref["HOTA"]["DetA"])), abs=1e-12)
    assert ours["IDF1"] == pytest.approx(float(ref["Identity"]["IDF1"]), abs=1e-12)
    assert ours["MOTA"] == pytest.approx(float(ref["CLEAR"]["MOTA"]), abs=1e-12)
    assert ours["IDSW"] == int(ref["CLEAR"]["IDSW"]) and ours["IDSW"] >= 1
    assert 0 < ours["HOTA"] < 1 and ours["ids"] == 6 and ours["gt_ids"] == 4


def test_ids_need_not_be_the_ground_truths():
    _, gt = random_sequence(5)
    gt = np.where(gt == 255, 0, gt)
    renamed = np.select([gt == 1, gt == 2, gt == 3, gt == 4], [40, 3, 250, 1], 0)
    m = evaluate_mot(renamed, gt)
    assert (m["HOTA"], m["IDF1"], m["MOTA"], m["IDSW"]) == (1.0, 1.0, 1.0, 0)
    data = sequence_data(renamed, gt)
    assert data["num_gt_ids"] == data["num_tracker_ids"] == 4
    assert all(set(ids) <= {0, 1, 2, 3} for ids in data["tracker_ids"])


def write_folders(tmp_path: Path, pred: np.ndarray, gt: np.ndarray) -> tuple[Path, Path]:
    (tmp_path / "pred").mkdir()
    (tmp_path / "seq" / "gt").mkdir(parents=True)
    for t, (p, g) in enumerate(zip(pred, gt)):
        write_index_png(tmp_path / "pred" / f"{t:05d}.png", p.astype(np.uint8))
        write_index_png(tmp_path / "seq" / "gt" / f"{t:05d}.png", g)
    return tmp_path / "pred", tmp_path / "seq" / "gt"


def test_eval_mot_adds_a_table_and_a_json_key(tmp_path, capsys):
    pred, gt = random_sequence(1)
    pred[pred == 999] = 99
    pred[pred == 107] = 17
    pred_dir, gt_dir = write_folders(tmp_path, pred, gt)
    assert main(["eval", str(pred_dir), str(gt_dir), "--json", str(tmp_path / "plain.json")]) == 0
    plain = capsys.readouterr().out
    assert plain == format_table(evaluate_folders(pred_dir, gt_dir)) + "\n"  # unchanged without --mot
    assert "mot" not in json.loads((tmp_path / "plain.json").read_text())
    assert main(["eval", str(pred_dir), str(gt_dir), "--mot", "--json", str(tmp_path / "mot.json")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(plain) and "HOTA" in out and "\nseq " in out
    mot = json.loads((tmp_path / "mot.json").read_text())["mot"]
    assert mot == pytest.approx({"sequence": "seq", **evaluate_mot(pred, gt, "seq")})


def test_without_trackeval_mot_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    pred, gt = random_sequence(0, frames=2)
    pred_dir, gt_dir = write_folders(tmp_path, pred % 256, gt)
    monkeypatch.setitem(sys.modules, "trackeval", None)  # import trackeval raises ImportError
    assert main(["eval", str(pred_dir), str(gt_dir), "--mot"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'trackeval" in err[0]
    assert main(["bench", str(tmp_path), "--runs", "everything", "--config", str(DEMO_CONFIG),
                 "--out", str(tmp_path / "b")]) == 2
    assert "pip install 'trackeval" in capsys.readouterr().err


def test_bench_mot_runs(synth_video, tmp_path):
    sample = synth_video("crossing")
    runs = "everything,ultralytics-track-bytetrack,ultralytics-track-botsort"
    assert main(["bench", str(sample), "--config", str(DEMO_CONFIG), "--frames", "12", "--quiet", "--runs", runs,
                 "--out", str(tmp_path / "runs"), "--json", str(tmp_path / "r.json"),
                 "--md", str(tmp_path / "r.md")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    rows = {r["run"]: r for r in report["rows"]}
    assert set(rows) == set(runs.split(","))
    for row in rows.values():
        assert row["mean_j"] is None and row["fps"] > 0
        assert 0 < row["mot"]["HOTA"] <= 1 and row["mot"]["frames"] == 12 and row["mot"]["gt_ids"] == 3
    assert rows["everything"]["mot"]["HOTA"] > 0.8  # the ids of --everything are its own, not the ground truth's
    assert "hota_everything_minus_best_tracker" in report["summary"][sample.name]
    assert f"| {sample.name} | ultralytics-track-botsort |" in (tmp_path / "r.md").read_text()
    assert len(list((tmp_path / "runs" / sample.name / "everything" / "masks").glob("*.png"))) == 12


# rtseg's own HOTA in --everything mode, pinned to tests/quality.json: tests/test_tracking.py
# (test_everything_hota_is_pinned), on the runs its identity check reads.
