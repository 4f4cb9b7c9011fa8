"""The steadiness sweep (#14): every named colour x every background kind x {alone, beside an object
of the same colour}, one object in a straight line, clicked once on the first frame.

Each case is a short video made on the spot (``lone`` / ``pair`` scenarios of
:mod:`rtseg.synth.scenarios`, any seed), so the figures cannot be tuned to one sample. Per case: the
per-frame IoU of object 1's mask against the ground truth, its mean (J), and the frames whose IoU
drops by more than :data:`FLICKER_DROP` from the frame before (flicker: the mask losing part of the
object for a frame and getting it back).

    .venv/bin/python benchmarks/sweep.py --seed 5 --json out/sweep-5.json
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rtseg.bench.samples import prompt_of
from rtseg.evaluate import jaccard, load_folder
from rtseg.output.records import label_map
from rtseg.session import Session
from rtseg.synth.video import write_video
from rtseg.synth.world import BACKGROUNDS, COLOURS

SCENES = ("lone", "pair")
FLICKER_DROP = 0.1
TARGETS = {"min_J": 0.85, "mean_J": 0.92, "flicker": 0.03}  # #14's: min and mean J at least, flicker under


def misses(result: dict[str, Any]) -> list[str]:
    """The targets a sweep's summary misses (none: it meets all three)."""
    out = [f"{k} {result[k]:.4f} < {v}" for k, v in TARGETS.items() if k != "flicker" and result[k] < v]
    if result["flicker"] >= TARGETS["flicker"]:
        out.append(f"flicker {result['flicker']:.4f} >= {TARGETS['flicker']}")
    return out


def cases() -> list[tuple[str, str, str]]:
    """(colour, background, scene) of every case, in a fixed order."""
    return list(itertools.product(COLOURS, BACKGROUNDS, SCENES))


def flicker(ious: np.ndarray) -> int:
    """How many frames lose more than FLICKER_DROP of IoU against the frame before.

    >>> flicker(np.array([0.9, 0.95, 0.7, 0.94, 0.9]))
    1
    """
    return int((np.diff(ious) < -FLICKER_DROP).sum())


def run_case(video: Path, make_session: Callable[[], Session], kind: str = "point") -> np.ndarray:
    """Per-frame IoU of object 1, prompted on the first frame (its point, box or text), over one video."""
    meta = json.loads((video / "objects.json").read_text())
    session = make_session()
    session.add(prompt_of(meta["objects"][0]["prompts"], kind))
    _, truth = load_folder(video / "gt")
    return np.array([jaccard(label_map(r.detections, r.image.shape[:2]) == 1, gt == 1)  # the first prompt is id 1
                     for r, gt in zip(session.run(str(video / "video.mp4")), truth)])


def run_sweep(make_session: Callable[[], Session], folder: Path, seed: int, frames: int = 30,
              size: tuple[int, int] = (640, 480), progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Make and score every case (case k of seed s drawn with seed ``s * len(cases()) + k``); returns the
    summary and the per-case figures."""
    rows: list[dict[str, Any]] = []
    for k, (colour, background, scene) in enumerate(cases()):
        video = folder / f"{scene}-{colour}-{background}"  # each case its own shapes, sizes and path
        write_video(video, scene, seed * len(cases()) + k, frames=frames, size=size, background=background,
                    colour=colour)
        ious = run_case(video, make_session)
        rows.append({"colour": colour, "background": background, "scene": scene, "J": float(ious.mean()),
                     "flicker": flicker(ious), "ious": [round(float(v), 4) for v in ious]})
        if progress:
            progress(f"{scene:5s} {colour:7s} {background:9s} J {ious.mean():.3f} flicker {rows[-1]['flicker']}")
    js = np.array([r["J"] for r in rows])
    drops = sum(r["flicker"] for r in rows)
    return {"seed": seed, "frames": frames, "size": list(size), "cases": len(rows),
            "min_J": float(js.min()), "mean_J": float(js.mean()),
            "flicker": drops / (len(rows) * (frames - 1)), "rows": rows}
