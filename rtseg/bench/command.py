"""``rtseg bench`` as the command runs it: every run (:mod:`rtseg.bench.runs`) on every sample, and
the report (JSON, Markdown, the summary printed)."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from rtseg.bench.report import EXPORT_NAMES, machine, markdown, summarise
from rtseg.bench.runs import MOT_RUNS, RUNS, Bench
from rtseg.bench.samples import load_sample
from rtseg.config import Config
from rtseg.errors import RtsegError


def run_bench(samples: list[str], config: Config, runs: list[str], frames: int, keyframes: int,
              out: Path, export: str | None = None, soak: int = 0, json_path: str | None = None,
              quiet: bool = False, command: str = "", md_path: str | None = None,
              score: bool = True, segments_from: Config | None = None, forward_ms: float = 0.0,
              device_masks: bool = False, trust_weights: bool = False) -> dict[str, Any]:
    """Every run of ``runs`` on every sample; ``score=False`` leaves J out (untrained weights).
    With ``segments_from``, rtseg's runs get that config's model's segments (computed before any
    timing) at the cost of ``config``'s model (see :class:`StandIn`). With ``forward_ms``, they get
    the model's own segments (computed before) after a wait of that long that leaves the CPU free,
    as a GPU forward does (:class:`Waiting`), and ``forward`` times that wait; with ``device_masks``
    too, their full-size masks are made before as well, as a GPU makes them (:class:`Premade`).
    ``trust_weights``: ``.pt`` models may run code (``--trust-weights``; :mod:`rtseg.segment.safe_load`)."""
    unknown = [r for r in runs if r not in RUNS + MOT_RUNS]
    if unknown:
        raise RtsegError(f"unknown run {unknown[0]!r}; known: {', '.join(RUNS + MOT_RUNS)}")
    if score and set(runs) & set(MOT_RUNS):
        from rtseg.mot import import_trackeval

        import_trackeval()  # without TrackEval: one line, before any work
    out.mkdir(parents=True, exist_ok=True)
    bench = Bench(config, out, quiet, score)
    bench.trust_weights = trust_weights
    loaded = [load_sample(s, frames) for s in samples]
    if device_masks and not forward_ms:
        raise RtsegError("--device-masks goes with --forward-ms")
    if forward_ms:
        if [r for r in runs if r.startswith("ultralytics")] or export:
            raise RtsegError("--forward-ms times rtseg's own runs: leave out the ultralytics-* runs and --export")
        bench.forward_ms, bench.device_masks = forward_ms, device_masks
        bench.frames = [f for sample in loaded for f in sample.frames]
        made = "segments and their full-size masks" if device_masks else "segments"
        bench.log(f"the forward is a {forward_ms:g} ms wait; {made} computed before timing")
    elif segments_from is not None:
        from rtseg.segment.fastsam import FastSAMSegmenter

        m = segments_from.model
        bench.answers = FastSAMSegmenter.from_config(m, trust_weights=trust_weights)
        bench.frames = [f for sample in loaded for f in sample.frames]
        bench.log(f"segments from {m.weights} computed before timing; cost from {config.model.weights}")
    exported = None
    if export:
        from rtseg.segment.export import export_model

        bench.log(f"exporting {config.model.weights} to {export} ...")
        exported = export_model(config.model.weights, export, config.model.imgsz, bool(config.model.half),
                                str(out / EXPORT_NAMES[export]), bench.segmenter().device, trust_weights)
    for sample in loaded:
        bench.log(f"{sample.name}: {len(sample.frames)} frames, {len(sample.objects)} objects")
        for name in runs:
            if name == "forward":
                bench.forward(sample)
            elif name.startswith("track-"):
                bench.track(sample, name.split("-", 1)[1])
            elif name.startswith("keyframes-"):
                bench.track(sample, name.split("-", 1)[1], keyframes=keyframes)
            elif name == "everything":
                bench.everything(sample)
            elif name.startswith("ultralytics-"):
                bench.peer(sample, name.split("-", 1)[1])
            elif name == "live":
                bench.live(sample)
        if exported:
            bench.forward(sample, exported, run=f"{export}-forward")
            bench.track(sample, "point", weights=exported, run=f"{export}-track-point")
    if soak:
        bench.soak(loaded[0], soak, keyframes=1)
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "command": command, "machine": machine(),
              "config": dataclasses.asdict(config), "keyframes": keyframes, "rows": bench.rows,
              "summary": summarise(bench.rows)}
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(report, indent=1, default=str) + "\n")
    if md_path:
        Path(md_path).parent.mkdir(parents=True, exist_ok=True)
        Path(md_path).write_text(markdown(report))
    if not quiet:
        print(json.dumps(report["summary"], indent=1))
    return report
