"""The steadiness sweep (#14) with any seed: 8 colours x 5 background kinds x {alone, beside an object
of the same colour}, one object in a straight line, clicked on the first frame; per-case J and
flicker, and the summary (min J, mean J, share of frames whose IoU drops by more than 0.1).

    .venv/bin/python benchmarks/sweep.py --seed 5 --frames 20 --json out/sweep-5.json

tests/test_sweep.py runs the pinned seed and one drawn at test time; this is the same sweep by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import conftest  # noqa: E402,F401  (the offline environment first)

from rtseg.bench.sweep import run_sweep  # noqa: E402
from rtseg.config import load_config  # noqa: E402
from rtseg.prompt.clip import TextScorer  # noqa: E402
from rtseg.segment.fastsam import FastSAMSegmenter  # noqa: E402
from rtseg.session import Session  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--config", default=str(conftest.DEMO_CONFIG))
    ap.add_argument("--json", help="write the per-case figures here")
    args = ap.parse_args()
    config = load_config(args.config)
    segmenter, scorer = FastSAMSegmenter.from_config(config.model), TextScorer(config.model.clip)
    with tempfile.TemporaryDirectory() as tmp:
        result = run_sweep(lambda: Session(config, segmenter=segmenter, text_scorer=scorer), Path(tmp), args.seed,
                           args.frames, progress=print)
    print(f"seed {args.seed}: {result['cases']} cases, min J {result['min_J']:.4f}, mean J {result['mean_J']:.4f}, "
          f"flicker {100 * result['flicker']:.2f}% of frames")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
