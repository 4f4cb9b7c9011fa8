"""The steadiness sweep (#14): 8 colours x 5 background kinds x {alone, beside an object of the same
colour}, one object in a straight line, clicked on the first frame (:mod:`rtseg.bench.sweep`).

Two runs: one with the seed whose figures are pinned in tests/quality.json (``sweep/*``, a
regression check), and one with a seed drawn now (printed, and taken from RTSEG_SWEEP_SEED when set,
to reproduce a failure). Both are held to the three targets of #14: min J >= 0.85, mean J >= 0.92,
under 3% of frames whose IoU drops by more than 0.1 from the frame before (benchmarks/RESULTS.md,
"Steady masks" and "Mask edges").
"""

from __future__ import annotations

import os
import secrets

import pytest

from rtseg.bench.sweep import run_sweep
from rtseg.session import Session

from test_tracking import FLOORS

PINNED_SEED, FRAMES = 0, 20
TARGET = {"min_J": 0.85, "mean_J": 0.92, "flicker": 0.03}


@pytest.fixture(scope="module")
def sweep(demo_config, segmenter, text_scorer, tmp_path_factory):
    def run(seed: int) -> dict:
        # the model itself, not the test cache: every frame of the sweep is new
        return run_sweep(lambda: Session(demo_config, segmenter=segmenter.inner, text_scorer=text_scorer),
                         tmp_path_factory.mktemp(f"sweep-{seed}"), seed, FRAMES)
    return run


def describe(result: dict) -> str:
    worst = sorted(result["rows"], key=lambda r: r["J"])[:3]
    return f"seed {result['seed']}: " + "; ".join(
        f"{r['scene']} {r['colour']} on {r['background']} J {r['J']:.3f} IoUs {r['ious']}" for r in worst)


def test_sweep_pinned(sweep):
    result = sweep(PINNED_SEED)
    assert result["cases"] == 80
    assert all(result[k] >= v for k, v in TARGET.items() if k != "flicker") and result["flicker"] < TARGET["flicker"]
    assert result["min_J"] >= FLOORS["sweep/min-J"] - FLOORS["margin"], describe(result)
    assert result["mean_J"] >= FLOORS["sweep/mean-J"] - FLOORS["margin"], describe(result)
    assert result["flicker"] <= FLOORS["sweep/flicker"] + 0.01, describe(result)


def test_sweep_fresh_seed(sweep):
    seed = int(os.environ.get("RTSEG_SWEEP_SEED") or secrets.randbelow(10**6) + 1)
    print(f"sweep seed {seed} (RTSEG_SWEEP_SEED={seed} runs it again)")
    result = sweep(seed)
    assert result["min_J"] >= TARGET["min_J"], describe(result)
    assert result["mean_J"] >= TARGET["mean_J"], describe(result)
    assert result["flicker"] < TARGET["flicker"], describe(result)
