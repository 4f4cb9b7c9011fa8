"""Measure the end-to-end and model quality numbers and store them in tests/quality.json.

Run after retraining a model or changing the tracker on purpose (a regression must not be pinned):

    .venv/bin/python tests/pin_quality.py
    .venv/bin/python tests/pin_quality.py --camera   # only the camera-resolution figures (#15)
    .venv/bin/python tests/pin_quality.py --showcase-320   # only object 1 of the showcase at imgsz 320 (#14)
    .venv/bin/python tests/pin_quality.py --everything     # only --everything's HOTA and ID switches (#14)
    .venv/bin/python tests/pin_quality.py --sweep   # only the steadiness sweep's figures (#14)
    .venv/bin/python tests/pin_quality.py --keyframes   # only the keyframe-mode figures (#14)
    .venv/bin/python tests/pin_quality.py --concept     # only the concept sample's figures (#23)

The tests then fail when a number drops more than ``margin`` below what is stored here.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import conftest  # noqa: E402,F401  (sets the offline environment first)

from rtseg.config import load_config, override  # noqa: E402
from rtseg.evaluate import evaluate_arrays  # noqa: E402
from rtseg.mot import evaluate_mot  # noqa: E402
from rtseg.session import Session  # noqa: E402
from rtseg.segment.fastsam import FastSAMSegmenter  # noqa: E402
from rtseg.synth.dataset import write_dataset  # noqa: E402
from rtseg.synth.video import write_video  # noqa: E402
from rtseg.prompt.clip import TextScorer  # noqa: E402
from rtseg.train.quality import measure  # noqa: E402

from conftest import SHOWCASE, CachingSegmenter, ground_truth, prompts_of, run_labels  # noqa: E402
from test_models import PROMISE as MODEL_METRICS  # noqa: E402
from test_sweep import FRAMES as SWEEP_FRAMES, PINNED_SEED  # noqa: E402
from rtseg.bench.sweep import run_sweep  # noqa: E402
from test_tracking import (  # noqa: E402
    CAMERA_SCENE, CAMERA_SIZES, KINDS, PROMISE, SHOWCASE_320, camera_key, id_switches, swaps, track_keyframes,
    track_showcase_at_320,
)


def main() -> None:
    only = ([], ["--camera"], ["--showcase-320"], ["--everything"], ["--sweep"], ["--keyframes"], ["--concept"])
    if sys.argv[1:] not in only:  # each run writes: no --help, no typo, runs one
        sys.exit(__doc__)
    if sys.argv[1:] == ["--concept"]:  # the command tests/test_concepts.py runs (a minute)
        store(concept_pins(Path(tempfile.mkdtemp())))
        return
    config = load_config(conftest.DEMO_CONFIG)
    m = config.model
    segmenter = CachingSegmenter(FastSAMSegmenter.from_config(m))
    scorer = TextScorer(m.clip)
    out: dict = {"margin": 0.02}
    tmp = Path(tempfile.mkdtemp())
    if sys.argv[1:] == ["--camera"]:  # only the camera-resolution scene (a minute, not half an hour)
        store(camera_pins(config, segmenter, scorer, tmp))
        return
    if sys.argv[1:] == ["--showcase-320"]:
        store(showcase_320_pin(config, scorer))
        return
    if sys.argv[1:] == ["--sweep"]:
        store(sweep_pins(config, segmenter.inner, scorer, tmp))
        return
    videos = {s: tmp / s for s in PROMISE}
    for s, v in videos.items():
        write_video(v, s, 11)  # the seed of the synth_video fixture
    videos["showcase"] = SHOWCASE
    if sys.argv[1:] == ["--everything"]:
        for name, video in videos.items():
            store(everything_pins(name, video, config, segmenter))
        return
    if sys.argv[1:] == ["--keyframes"]:  # only keyframe mode (a few minutes)
        pins: dict = {}
        for name, video in videos.items():
            pins.update(keyframe_pins(config, segmenter, scorer, name, video))
        store(pins)
        return
    for name, video in videos.items():
        gt = ground_truth(video)
        for kind in KINDS:
            session = Session(config, segmenter=segmenter, text_scorer=scorer)
            for p in prompts_of(video, kind):
                session.add(p)
            pred = run_labels(session, video)
            res = evaluate_arrays(pred, gt)
            out[f"{name}/{kind}"] = round(res["overall"]["J"], 4)
            if name == "exit":
                out[f"exit-object/{kind}"] = round(res["objects"]["3"]["J"], 4)
            if name == "crossing":
                out[f"crossing-swaps/{kind}"] = swaps(pred, gt, 1, 2)
            print(name, kind, out[f"{name}/{kind}"], flush=True)
        out.update(keyframe_pins(config, segmenter, scorer, name, video))
        if name == "showcase":  # what tests/test_web.py clicks in the browser: object 1 by its point
            session = Session(config, segmenter=segmenter, text_scorer=scorer)
            session.add(prompts_of(video, "point")[0])
            res = evaluate_arrays(run_labels(session, video), gt, objects=[1])
            out["web/showcase-point-1"] = round(res["objects"]["1"]["J"], 4)
            print(name, "web point object 1", out["web/showcase-point-1"], flush=True)
        out.update(everything_pins(name, video, config, segmenter))
    out.update(camera_pins(config, segmenter, scorer, tmp))
    out.update(showcase_320_pin(config, scorer))
    out.update(sweep_pins(config, segmenter.inner, scorer, tmp))
    write_dataset(tmp / "holdout", 80, seed=4242, size=(640, 480), val_fraction=1.0)
    q = measure(tmp / "holdout", config)
    for metric in MODEL_METRICS:
        out[f"models/{metric}"] = q[metric]
    store(out)


def everything_pins(name: str, video: Path, config, segmenter) -> dict:
    """``--everything``'s ID switches and HOTA (tests/test_tracking.py) on the samples
    those tests run."""
    if name not in ("crossing", "occlusion", "fast", "shake", "showcase"):
        return {}
    pred, gt = run_labels(Session(config, everything=True, segmenter=segmenter), video), ground_truth(video)
    out = {f"everything-idsw/{name}": id_switches(pred, gt),
           f"everything-hota/{name}": round(evaluate_mot(pred, gt, name)["HOTA"], 4)}
    print(name, "everything", out, flush=True)
    return out


def keyframe_pins(config, segmenter, scorer, name: str, video: Path) -> dict:
    """Mean J and the share of frames segmented of a video tracked in keyframe mode (K=4)."""
    pred, segmented = track_keyframes(lambda keyframes: Session(
        override(config, keyframes={"every": keyframes}), segmenter=segmenter, text_scorer=scorer), video, 4)
    out = {f"keyframes/{name}": round(evaluate_arrays(pred, ground_truth(video))["overall"]["J"], 4),
           f"keyframes-segmented/{name}": round(segmented, 3)}
    print(name, "keyframes", out[f"keyframes/{name}"], "segmented", segmented, flush=True)
    return out


def camera_pins(config, segmenter, scorer, tmp: Path) -> dict:
    """Mean J of the camera-resolution scene (tests/test_tracking.py) per frame size and prompt kind."""
    out = {}
    scenario, seed, frames = CAMERA_SCENE
    for size in CAMERA_SIZES:
        video = tmp / f"camera-{size[0]}x{size[1]}"
        write_video(video, scenario, seed, frames=frames, size=size)
        gt = ground_truth(video)
        for kind in KINDS:
            session = Session(config, segmenter=segmenter, text_scorer=scorer)
            for p in prompts_of(video, kind):
                session.add(p)
            out[camera_key(size, kind)] = round(evaluate_arrays(run_labels(session, video), gt)["overall"]["J"], 4)
            print(camera_key(size, kind), out[camera_key(size, kind)], flush=True)
    return out


def showcase_320_pin(config, scorer) -> dict:
    """J of the showcase's object 1 tracked at imgsz 320 (tests/test_tracking.py)."""
    res = evaluate_arrays(track_showcase_at_320(config, scorer), ground_truth(SHOWCASE), objects=[1])
    print(SHOWCASE_320, round(res["objects"]["1"]["J"], 4), flush=True)
    return {SHOWCASE_320: round(res["objects"]["1"]["J"], 4)}


def sweep_pins(config, segmenter, scorer, tmp: Path) -> dict:
    """The steadiness sweep at the pinned seed (tests/test_sweep.py)."""
    result = run_sweep(lambda: Session(config, segmenter=segmenter, text_scorer=scorer), tmp / "sweep",
                       PINNED_SEED, SWEEP_FRAMES, progress=print)
    return {"sweep/min-J": round(result["min_J"], 4), "sweep/mean-J": round(result["mean_J"], 4),
            "sweep/flicker": round(result["flicker"], 4)}


def concept_pins(tmp: Path) -> dict:
    """``rtseg track --prompts samples/concept/prompts.yaml`` (tests/test_concepts.py): HOTA and
    per-frame instance precision and recall with MOT17's visibility rule, and HOTA on every object."""
    from rtseg.cli import main as rtseg
    from rtseg.evaluate import load_folder

    sample = conftest.ROOT / "samples" / "concept"
    assert rtseg(["track", str(sample / "video.mp4"), "--config", str(conftest.DEMO_CONFIG), "--prompts",
                  str(sample / "prompts.yaml"), "--no-show", "--quiet", "--save-masks", str(tmp / "masks")]) == 0
    names, gt = load_folder(sample / "gt")
    _, pred = load_folder(tmp / "masks", names)
    visible, every = evaluate_mot(pred, gt, min_visible=0.5), evaluate_mot(pred, gt)
    out = {"concept/HOTA": visible["HOTA"], "concept/precision": visible["precision"],
           "concept/recall": visible["recall"], "concept/HOTA-all": every["HOTA"]}
    return {k: round(v, 4) for k, v in out.items()}


def store(out: dict) -> None:
    """Merge into tests/quality.json: figures measured elsewhere (tests/test_depth.py,
    tests/test_publish.py) or not measured this time are kept as they are."""
    out = {**json.loads((HERE / "quality.json").read_text()), **out}
    (HERE / "quality.json").write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(json.dumps(out, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
