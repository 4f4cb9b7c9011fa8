"""What the runner's two overlaps give (:mod:`rtseg.runner`): segmenting a frame while the one before
it is tracked ("ahead"), and the file writers (video, mask PNGs, JSON lines) writing a frame at the
same time ("parallel"); each on and off, in one process, interleaved.

    .venv/bin/python benchmarks/pipeline.py out/samples-hd/crowd-1920x1080 --frames 60 --forward-ms 10 \
        --repeats 3 --json benchmarks/pipeline-cpu.json

``--outputs-only`` times the output stage alone instead (its results made beforehand, nothing else
running): the video, mask PNG and JSON writers one after another and at the same time.

``--forward-ms MS`` replaces the model's forward by a wait of MS ms that leaves the CPU free, as a
GPU's does (``rtseg bench --forward-ms``; segments computed before timing): what rtseg's own work
allows beside an accelerator of that speed. ``--forward-ms 0`` runs the real model on the CPU. Each
row: ``rtseg track`` with every output (overlay video, mask PNGs, JSON lines), point prompts or
``--everything``; FPS after the warm-up, median over the repeats, and the ratio to the forward (the
wait's own rate, or the bare forward measured in the same process).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from statistics import median
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import conftest  # noqa: E402,F401  (sets the offline environment first)

from rtseg.bench.runs import Bench  # noqa: E402
from rtseg.bench.samples import load_sample  # noqa: E402
from rtseg.config import load_config  # noqa: E402
from rtseg.session import Session  # noqa: E402

VARIANTS = {"serial": (False, False), "ahead": (True, False), "parallel": (False, True), "both": (True, True)}


def variant(ahead: bool, parallel: bool) -> None:
    """Switch the two overlaps (what the runner reads of the session)."""
    Session.segments_every_frame = property(lambda self: ahead and self.carrier is None)  # type: ignore
    Session.on_accelerator = property(lambda self: parallel)  # type: ignore


def outputs_only(sample: Any, config: Any, repeats: int, out: Path) -> dict[str, Any]:
    """Median ms of the output stage per frame (overlay, video, mask PNGs, JSON lines), the writers
    one after another and at the same time, on one ``rtseg track`` run's results (point prompts)."""
    import time

    from rtseg.capture.sources import open_source
    from rtseg.output.sinks import JsonlSink, MaskSink, Sink, StreamInfo, VideoSink
    from rtseg.runner import _Outputs, run

    class Keep(Sink):
        def __init__(self) -> None:
            self.results: list[Any] = []

        def write(self, result: Any) -> None:
            self.results.append(result)

    keep = Keep()
    with open_source(str(sample.video)) as src:
        session = Session.for_prompts(config, sample.prompts("point"), False, src.size)
        run(src, session, [keep], max_frames=len(sample.frames))
    ms: dict[str, list[float]] = {"serial": [], "parallel": []}
    for _ in range(repeats):
        for name in ms:
            variant(True, name == "parallel")
            folder = out / sample.name / f"outputs-{name}"
            sinks = [VideoSink(folder / "overlay.mp4", 30, config.output.codec, config.output.video),
                     MaskSink(folder / "masks"), JsonlSink(folder / "tracks.jsonl")]
            outputs = _Outputs(session, sinks)
            for sink in sinks:
                sink.open(StreamInfo(sample.name, 30, False))
            times = []
            for result in keep.results:
                result.overlay = None
                t0 = time.perf_counter()
                outputs(result)
                times.append((time.perf_counter() - t0) * 1000)
            for sink in sinks:
                sink.close()
            outputs.close()
            ms[name].append(median(times[3:]))
    return {"sample": sample.name, "run": "outputs", "ms": {k: [round(v, 1) for v in vs] for k, vs in ms.items()},
            "median_ms": {k: round(median(vs), 1) for k, vs in ms.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("samples", nargs="+")
    ap.add_argument("--config", default=str(conftest.DEMO_CONFIG))
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--forward-ms", type=float, default=10.0)
    ap.add_argument("--runs", default="point,everything")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="out/bench-pipeline")
    ap.add_argument("--outputs-only", action="store_true", help="time the output stage alone")
    ap.add_argument("--json")
    args = ap.parse_args()
    bench = Bench(load_config(args.config), Path(args.out), quiet=True)
    loaded = [load_sample(s, args.frames) for s in args.samples]
    if args.outputs_only:
        rows = [outputs_only(sample, bench.config, args.repeats, Path(args.out)) for sample in loaded]
        for row in rows:
            print(f"{row['sample']:22s} output stage ms a frame: {row['median_ms']}", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=1) + "\n")
        return
    bench.forward_ms = args.forward_ms
    bench.frames = [f for sample in loaded for f in sample.frames]
    rows: list[dict[str, Any]] = []
    for sample in loaded:
        for kind in args.runs.split(","):
            fps: dict[str, list[float]] = {name: [] for name in VARIANTS}
            stages: dict[str, Any] = {}
            forward: list[float] = []
            for _ in range(args.repeats):
                forward.append(bench.forward(sample)["fps"])
                for name, switches in VARIANTS.items():
                    variant(*switches)
                    row = bench.everything(sample) if kind == "everything" else bench.track(sample, kind)
                    fps[name].append(row["fps"])
                    stages[name] = {k: v["p50"] for k, v in row["ms"].items()}
            variant(True, True)
            f = median(forward)
            rows.append({"sample": sample.name, "run": kind, "forward_fps": round(f, 1),
                         "fps": {k: [round(x, 1) for x in v] for k, v in fps.items()},
                         "ratio": {k: round(median(v) / f, 3) for k, v in fps.items()},
                         "last_stage_p50_ms": stages})
            print(f"{sample.name:22s} {kind:10s} forward {f:6.1f} FPS | "
                  + " | ".join(f"{k} {median(v):5.1f} ({median(v) / f:.2f}x)" for k, v in fps.items()), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"command": " ".join(sys.argv), "forward_ms": args.forward_ms,
                                               "frames": args.frames, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
