"""``rtseg bench``: rtseg and what a user would otherwise run, timed in one run on the same frames.

Runs (all on the first ``frames`` frames of each sample; rtseg's runs and the bare forward share one
loaded model):

==================== =====================================================================
``forward``          the bare model: ultralytics FastSAM predict, no prompts, its default masks
``track-<kind>``     ``rtseg track`` end to end (decode, segment, track, render, overlay video,
                     mask PNGs, JSON lines), objects prompted by their first-frame point, box or text
``keyframes-<kind>`` the same in keyframe mode (segment every k-th frame, carry in between)
``ultralytics-<kind>`` FastSAM with the first-frame prompt given again on every frame
``ultralytics-track`` ultralytics ``track()`` (ByteTrack), prompt used to pick a track id
``everything``       ``rtseg track --everything`` end to end: every segment followed, no prompt
``ultralytics-track-bytetrack``, ``ultralytics-track-botsort``: ultralytics ``track()`` with
                     ByteTrack or BoT-SORT (no ReID), no prompt: every track id is an object
``live``             ``rtseg track`` fed by a camera replaying the sample in real time: latency
                     from frame read to outputs written
``onnx-*``           ``forward`` and ``track-point`` with the model exported to ONNX (``--export``)
==================== =====================================================================

Each row: FPS (steady state, after a warm-up), per-stage p50/p95 ms, peak memory (RSS) during the
run, mean J against the sample's ground truth where there is one (for the three runs without prompts,
whose ids are not the ground truth's, the MOT metrics of :mod:`rtseg.mot` instead: HOTA, IDF1,
MOTA, ID switches; these runs are not in the default set). ``--soak N`` also runs
``rtseg track`` over N frames (the sample looped) and reports how resident memory grew.
"""

from __future__ import annotations

import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from rtseg.bench.measure import MemoryProbe, mean_fps, percentiles, rss_mb, steady_fps
from rtseg.bench.models import StandIn, Waiting
from rtseg.bench.report import format_row
from rtseg.bench.samples import Sample
from rtseg.capture.replay import Replay, ReplayCamera
from rtseg.capture.live import LiveSource
from rtseg.capture.sources import Source, open_source
from rtseg.config import Config, override
from rtseg.evaluate import load_folder
from rtseg.output.sinks import JsonlSink, MaskSink, StatsSink, VideoSink
from rtseg.prompt.prompts import Prompt
from rtseg.runner import run
from rtseg.segment.safe_load import open_fastsam
from rtseg.session import Session

KINDS = ("point", "box", "text")
RUNS = ("forward", "track-point", "track-box", "track-text", "keyframes-point", "keyframes-text",
        "ultralytics-point", "ultralytics-box", "ultralytics-text", "ultralytics-track", "live")
MOT_RUNS = ("everything", "ultralytics-track-bytetrack", "ultralytics-track-botsort")  # --runs only


class Bench:
    """Runs the benchmark rows for one config; ``rows`` collects them."""

    def __init__(self, config: Config, out: Path, quiet: bool = False, score: bool = True) -> None:
        self.config, self.out, self.quiet, self.score = config, out, quiet, score
        self.rows: list[dict[str, Any]] = []
        self._models: dict[str, Any] = {}
        self._plain: dict[str, Any] = {}
        self._scorer: Any = None
        self.answers: Any = None  # a segmenter whose segments stand in (StandIn)
        self.forward_ms = 0.0  # > 0: the forward is a wait of this long (Waiting), its segments computed before
        self.device_masks = False  # with forward_ms: their full-size masks made before too (Premade)
        self.frames: list[np.ndarray] = []
        self.trust_weights = False  # --trust-weights: .pt files may run code (rtseg.segment.safe_load)

    def log(self, text: str) -> None:
        if not self.quiet:
            print(text, flush=True)

    # shared models: one FastSAM per weights file, one CLIP
    def segmenter(self, weights: str | None = None) -> Any:
        from rtseg.segment.fastsam import FastSAMSegmenter

        m = self.config.model
        key = weights or m.weights
        if key not in self._models:
            seg: Any = FastSAMSegmenter.from_config(m, key, self.trust_weights)
            if self.forward_ms:  # its own segments, after a wait instead of its forward
                seg = StandIn(Waiting(self.forward_ms, seg), seg, self.frames, premade=self.device_masks)
            elif self.answers is not None:
                seg = StandIn(seg, self.answers, self.frames)
            self._models[key] = seg
        return self._models[key]

    def ultralytics(self, weights: str | None = None) -> Any:
        """ultralytics' own FastSAM on the segmenter's weights file, with its own predictor (full-size
        masks of every segment): what a user of ultralytics runs, and the bare forward."""
        path = self.segmenter(weights).path
        if path not in self._plain:
            self._plain[path] = open_fastsam(path, self.trust_weights)
        return self._plain[path]

    def scorer(self) -> Any:
        from rtseg.prompt.clip import TextScorer

        if self._scorer is None:
            device = "cpu" if self.forward_ms else self.segmenter().device
            self._scorer = TextScorer(self.config.model.clip, device=device)
        return self._scorer

    def record(self, sample: Sample, run: str, fps: float, stages: dict[str, list[float]], probe: MemoryProbe,
               j: float | None, latency: list[float] | None = None, **extra: Any) -> dict[str, Any]:
        row = {"sample": sample.name, "run": run, "frames": len(sample.frames), "fps": round(fps, 2),
               "ms": {k: percentiles(v) for k, v in stages.items()}, "peak_rss_mb": round(probe.peak, 1),
               "rss_before_mb": round(probe.start, 1), "mean_j": j if self.score else None, **extra}
        if latency is not None:
            row["latency_ms"] = percentiles(latency)
        self.rows.append(row)
        self.log(format_row(row))
        return row

    def mot(self, sample: Sample, labels: list[np.ndarray] | np.ndarray) -> dict[str, Any] | None:
        """The MOT metrics of label maps (any ids) against the sample's ground truth, rounded."""
        if sample.gt is None or not self.score:
            return None
        from rtseg.mot import evaluate_mot

        pred = np.stack(list(labels))
        m = evaluate_mot(pred, sample.gt[: len(pred)], sample.name)
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()}

    def run_track(self, source: str | Source, config: Config, prompts: list[Prompt], folder: Path,
                  max_frames: int | None = None, weights: str | None = None,
                  everything: bool = False) -> tuple[StatsSink, MemoryProbe]:
        """``rtseg track`` with every output (overlay video, mask PNGs, JSON lines) into ``folder``,
        on the bench's loaded models; returns its timings and memory."""
        stats = StatsSink()
        sinks = [VideoSink(folder / "overlay.mp4", config.output.fps, config.output.codec, config.output.video),
                 MaskSink(folder / "masks"), JsonlSink(folder / "tracks.jsonl"), stats]
        with MemoryProbe() as probe:
            with open_source(source) if isinstance(source, str) else source as src:
                session = Session.for_prompts(config, prompts, everything, src.size, self.segmenter(weights),
                                              self.scorer())
                run(src, session, sinks, max_frames=max_frames)
        return stats, probe

    def forward(self, sample: Sample, weights: str | None = None, run: str = "forward") -> dict[str, Any]:
        """The bare model as ultralytics runs it by default: its masks at the model's input size
        (``retina_masks=False``). (With rtseg's ``retina_masks=True`` ultralytics makes every segment's
        mask at the frame's size: at 1920x1080 that is 4x the cost, no fair reference.)"""
        seg = self.segmenter(weights)
        predict = seg.timed if self.forward_ms else partial(self.ultralytics(weights).predict,
                                                            **{**seg.kwargs, "retina_masks": False})
        times = []
        with MemoryProbe() as probe:
            for image in sample.frames:
                t0 = time.perf_counter()
                predict(image)
                times.append((time.perf_counter() - t0) * 1000)
        return self.record(sample, run, mean_fps(times), {"forward": times}, probe, None)

    def track(self, sample: Sample, kind: str, keyframes: int = 1, weights: str | None = None,
              run: str | None = None) -> dict[str, Any]:
        config = override(self.config, keyframes={"every": keyframes},
                          model={"weights": weights} if weights else {})
        run = run or f"{'keyframes' if keyframes > 1 else 'track'}-{kind}"
        folder = self.out / sample.name / run
        stats, probe = self.run_track(str(sample.video), config, sample.prompts(kind), folder, len(sample.frames),
                                      weights)
        j = None
        if sample.gt is not None:
            _, pred = load_folder(folder / "masks", [f"{i:05d}.png" for i in range(len(sample.frames))])
            j = sample.mean_j(pred)
        segmented = len(stats.stages.get("segment", []))
        return self.record(sample, run, steady_fps(stats.done), stats.stages, probe, j,
                           segmented=round(segmented / max(stats.frames, 1), 3))

    def everything(self, sample: Sample) -> dict[str, Any]:
        """``rtseg track --everything`` with every output; scored from its mask PNGs, as ``rtseg eval
        --mot`` scores them."""
        folder = self.out / sample.name / "everything"
        stats, probe = self.run_track(str(sample.video), self.config, [], folder, len(sample.frames),
                                      everything=True)
        _, pred = load_folder(folder / "masks", [f"{i:05d}.png" for i in range(len(sample.frames))])
        return self.record(sample, "everything", steady_fps(stats.done), stats.stages, probe, None,
                           mot=self.mot(sample, pred))

    def live(self, sample: Sample, kind: str = "point") -> dict[str, Any]:
        """A camera replaying the sample at its frame rate; the loop takes the newest frame."""
        camera = ReplayCamera(sample.frames, sample.fps)
        source = LiveSource(0, f"replayed {sample.name}", capture=camera)
        stats, probe = self.run_track(source, self.config, sample.prompts(kind), self.out / sample.name / "live",
                                      max(len(sample.frames) // 2, 10))
        return self.record(sample, "live", steady_fps(stats.done), stats.stages, probe, None,
                           latency=stats.latency, dropped=source.dropped)

    def peer(self, sample: Sample, kind: str) -> dict[str, Any]:
        from rtseg.bench import peers

        seg = self.segmenter()
        with MemoryProbe() as probe:
            if kind.startswith("track-"):  # no prompt: every track is an object, scored by MOT metrics
                model = open_fastsam(seg.path, self.trust_weights)
                tracks, times = peers.all_tracks(model, sample.frames, seg.kwargs,
                                                 f"{kind.split('-', 1)[1]}.yaml")
                return self.record(sample, f"ultralytics-{kind}", mean_fps(times), {"frame": times}, probe, None,
                                   mot=self.mot(sample, tracks))
            if kind == "track":
                model = open_fastsam(seg.path, self.trust_weights)  # its own tracker state
                labels, times = peers.box_tracker(model, sample.frames, sample.objects, seg.kwargs)
            else:
                scorer = self.scorer() if kind == "text" else None
                labels, times = peers.per_frame_prompts(self.ultralytics(), sample.frames, sample.objects, kind,
                                                        seg.kwargs, scorer)
        return self.record(sample, f"ultralytics-{kind}", mean_fps(times), {"frame": times}, probe,
                           sample.mean_j(labels))

    def soak(self, sample: Sample, frames: int, keyframes: int = 1, every: int = 250) -> dict[str, Any]:
        """``rtseg track`` (points, all outputs) over ``frames`` frames of the sample looped: memory
        sampled every ``every`` frames; growth is counted from the end of the first loop."""
        config = override(self.config, keyframes={"every": keyframes})
        folder = Path(tempfile.mkdtemp(prefix="rtseg-soak-", dir=self.out))
        trace: list[tuple[int, float]] = []

        def sample_memory(index: int) -> None:
            if index % every == 0:
                trace.append((index, round(rss_mb(), 1)))

        source = Replay(sample.frames, sample.fps, frames, f"{sample.name} looped", on_frame=sample_memory)
        stats, probe = self.run_track(source, config, sample.prompts("point"), folder)
        trace.append((frames, round(rss_mb(), 1)))
        base = next((mb for i, mb in trace if i >= len(sample.frames)), trace[0][1])
        return self.record(sample, f"soak-{frames}", steady_fps(stats.done), stats.stages, probe, None,
                           rss_trace=trace, growth_mb=round(trace[-1][1] - base, 1))
