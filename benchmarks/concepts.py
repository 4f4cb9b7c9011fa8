"""Concept prompts (``--concept``, every instance of a phrase) on the shapes world's concept scenario:
quality against the ultralytics way, and what they cost against ``--everything``, in one process.

    .venv/bin/python benchmarks/concepts.py --seeds 11 12 13 14 15 --json benchmarks/concepts-cpu.json

Per seed, a 300-frame video of the ``concept`` scenario (8 instances of one kind entering and
leaving among 8 look-alikes; its ground truth holds the instances only), frames from memory, the
demo models, one segmenter and one CLIP model shared by every run:

- rtseg with ``--concept PHRASE``: HOTA, DetA, AssA, IDSW and per-frame instance precision / recall
  (objects matched one to one at mask IoU >= 0.5), on every ground-truth object in every frame
  (``all``) and with MOT17's visibility rule (``visible``: an object showing under half its largest
  area, cut by the frame's edge or hidden, is ignored there); CLIP image embeddings a frame against
  segments first judged a frame; FPS;
- the peer (:func:`rtseg.bench.peers.concept_tracks`): ultralytics ``track()`` (ByteTrack) and CLIP
  on every mask of every frame, judged by the same rule one frame at a time;
- FPS of ``--everything`` and of two concepts (the phrase and a distractor's) on the same frames.

Defaults of ``concepts`` were chosen on seeds 1-4; report other seeds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[11, 12, 13, 14, 15])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--json")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    import conftest  # noqa: F401  (the offline environment)

    from rtseg.bench.measure import steady_fps
    from rtseg.bench.peers import concept_tracks
    from rtseg.capture.replay import Replay
    from rtseg.capture.sources import open_source
    from rtseg.config import load_config
    from rtseg.evaluate import load_folder
    from rtseg.mot import evaluate_mot
    from rtseg.output.records import label_map
    from rtseg.output.sinks import Sink, StatsSink
    from rtseg.prompt.clip import TextScorer
    from rtseg.prompt.prompts import ConceptPrompt
    from rtseg.runner import run
    from rtseg.segment.fastsam import FastSAMSegmenter
    from rtseg.session import Session
    from rtseg.synth.video import write_video
    from rtseg.track.concepts import Judge

    class Labels(Sink):
        def __init__(self) -> None:
            self.maps: list[np.ndarray] = []

        def write(self, result) -> None:
            self.maps.append(label_map(result.detections, result.image.shape[:2]))

    config = load_config(ROOT / "configs/demo.yaml")
    segmenter = FastSAMSegmenter.from_config(config.model)
    peer_model = FastSAMSegmenter.from_config(config.model)  # its own: ByteTrack's state lives in the predictor
    scorer = TextScorer(config.model.clip, device=segmenter.device)

    def scores(maps: list[np.ndarray], gt: np.ndarray) -> dict:
        pred = np.stack(maps)
        keys = ("HOTA", "DetA", "AssA", "IDSW", "precision", "recall", "ids", "gt_ids")
        return {name: {k: (round(v, 3) if isinstance(v, float) else v) for k, v in
                       evaluate_mot(pred, gt, min_visible=visible).items() if k in keys}
                for name, visible in (("all", 0.0), ("visible", 0.5))}

    def track(images: list[np.ndarray], prompts: list, everything: bool = False) -> tuple[Session, float, list]:
        session = Session.for_prompts(config, prompts, everything=everything, segmenter=segmenter,
                                      text_scorer=scorer)
        stats, labels = StatsSink(), Labels()
        run(Replay(images, 30.0, len(images)), session, [labels, stats])
        return session, steady_fps(stats.done), labels.maps

    rows = []
    for seed in args.seeds:
        folder = Path(tempfile.mkdtemp(prefix=f"rtseg-concept-{seed}-"))
        meta = write_video(folder, "concept", seed, args.frames)
        with open_source(str(folder / "video.mp4")) as src:
            images = [f.image for f in src]
        _, gt = load_folder(folder / "gt")
        phrase, other = meta["concept"], "the {colour} {shape}".format(**meta["distractors"][0])
        session, fps, maps = track(images, [ConceptPrompt(phrase)])
        judge = session.tracker.judge
        assert judge is not None
        row = {"seed": seed, "concept": phrase, "frames": len(images), "rtseg": scores(maps, gt),
               "embeddings_per_frame": round(judge.judged / len(images), 3),
               "new_segments_per_frame": round(judge.new / len(images), 3)}
        peer_judge = Judge(scorer, config.concepts)
        peer_judge.add(phrase)
        peer_model.model.predictor = None  # a fresh ByteTrack for each video
        peer_maps, peer_ms = concept_tracks(peer_model.model, images, peer_judge, peer_model.kwargs)
        row["peer"] = scores(peer_maps, gt)
        row["peer_fps"] = round(1000 / statistics.median(peer_ms), 2)
        _, fps_everything, _ = track(images, [], everything=True)
        _, fps_two, _ = track(images, [ConceptPrompt(phrase), ConceptPrompt(other)])
        row.update(fps={"concept": round(fps, 2), "everything": round(fps_everything, 2),
                        "two_concepts": round(fps_two, 2)},
                   concept_vs_everything=round(fps / fps_everything, 3), two_vs_one=round(fps_two / fps, 3))
        rows.append(row)
        print(json.dumps(row), flush=True)

    def median(f) -> float:
        return round(statistics.median(f(r) for r in rows), 3)

    keys = ("HOTA", "precision", "recall")
    summary = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "seeds": args.seeds, "frames": args.frames, "runs": rows,
        "median": {
            **{f"{who}_{rule}": {k: median(lambda r, who=who, rule=rule, k=k: r[who][rule][k]) for k in keys}
               for who in ("rtseg", "peer") for rule in ("visible", "all")},
            "concept_vs_everything": median(lambda r: r["concept_vs_everything"]),
            "two_vs_one": median(lambda r: r["two_vs_one"]),
            "embeddings_per_frame": median(lambda r: r["embeddings_per_frame"]),
            "new_segments_per_frame": median(lambda r: r["new_segments_per_frame"]),
        },
    }
    print(json.dumps(summary["median"], indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
