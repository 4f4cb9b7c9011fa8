"""The steadiness sweep (#14): 8 colours x 5 background kinds x {alone, beside an object of the same
colour}, one object in a straight line, clicked on the first frame (:mod:`rtseg.bench.sweep`).

One run, with the seed whose figures are pinned in tests/quality.json (``sweep/*``, a regression
check), held to the three targets of #14 too: min J >= 0.85, mean J >= 0.92, under 3% of frames whose
IoU drops by more than 0.1 from the frame before (benchmarks/RESULTS.md, "Steady masks" and "Mask
edges"). The suite uses this fixed seed only, so that a run decides the same way every time; other
seeds, held out from every choice of method and default, are measured by hand against the same
targets (``benchmarks/sweep.py --seed 17 18``: exit 1 when one misses).
"""

from __future__ import annotations

from rtseg.bench.sweep import TARGETS, misses, run_sweep
from rtseg.session import Session

from test_tracking import FLOORS

PINNED_SEED, FRAMES = 0, 12


def describe(result: dict) -> str:
    worst = sorted(result["rows"], key=lambda r: r["J"])[:3]
    return f"seed {result['seed']}: " + "; ".join(
        f"{r['scene']} {r['colour']} on {r['background']} J {r['J']:.3f} IoUs {r['ious']}" for r in worst)


def test_sweep_pinned(demo_config, segmenter, text_scorer, tmp_path):
    # the model itself, not the test cache: every frame of the sweep is new
    result = run_sweep(lambda: Session(demo_config, segmenter=segmenter.inner, text_scorer=text_scorer),
                       tmp_path, PINNED_SEED, FRAMES)
    assert result["cases"] == 80
    assert not misses(result), (misses(result), describe(result))
    assert result["min_J"] >= FLOORS["sweep/min-J"] - FLOORS["margin"], describe(result)
    assert result["mean_J"] >= FLOORS["sweep/mean-J"] - FLOORS["margin"], describe(result)
    assert result["flicker"] <= FLOORS["sweep/flicker"] + 0.01, describe(result)


def test_targets_are_missed_as_said():
    met = {"min_J": TARGETS["min_J"], "mean_J": TARGETS["mean_J"], "flicker": 0.0}
    assert misses(met) == []
    assert misses({**met, "min_J": 0.8499}) == ["min_J 0.8499 < 0.85"]
    assert misses({**met, "flicker": 0.03}) == ["flicker 0.0300 >= 0.03"]
