"""``rtseg bench``: rtseg and what a user would otherwise run, timed in one run on the same frames.

Runs (all on the first ``frames`` frames of each sample; rtseg's runs and the bare forward share one
loaded model):

==================== =====================================================================
``forward``          the bare model: ultralytics FastSAM predict, no prompts
``track-<kind>``     ``rtseg track`` end to end (decode, segment, track, render, overlay video,
                     mask PNGs, JSON lines), objects prompted by their first-frame point, box or text
``keyframes-<kind>`` the same in keyframe mode (segment every k-th frame, carry in between)
``ultralytics-<kind>`` FastSAM with the first-frame prompt given again on every frame
``ultralytics-track`` ultralytics ``track()`` (ByteTrack), prompt used to pick a track id
``live``             ``rtseg track`` fed by a camera replaying the sample in real time: latency
                     from frame read to outputs written
``onnx-*``           ``forward`` and ``track-point`` with the model exported to ONNX (``--export``)
==================== =====================================================================

Each row: FPS (steady state, after a warm-up), per-stage p50/p95 ms, peak memory (RSS) during the
run, mean J against the sample's ground truth where there is one. ``--soak N`` also runs
``rtseg track`` over N frames (the sample looped) and reports how resident memory grew.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import resource
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import cv2
import numpy as np

from rtseg.app import RunStats, run_track
from rtseg.capture import Frame, LiveSource, Source, VideoFileSource
from rtseg.config import Config, override
from rtseg.errors import RtsegError
from rtseg.evaluate import evaluate_arrays, load_folder
from rtseg.prompts import BoxPrompt, PointPrompt, Prompt, TextPrompt

KINDS = ("point", "box", "text")
RUNS = ("forward", "track-point", "track-box", "track-text", "keyframes-point", "keyframes-text",
        "ultralytics-point", "ultralytics-box", "ultralytics-text", "ultralytics-track", "live")
EXPORT_NAMES = {"onnx": "model.onnx", "openvino": "model_openvino_model", "engine": "model.engine"}
WARMUP = 5  # frames left out of FPS and stage statistics (model set-up, caches)


@dataclasses.dataclass
class Sample:
    """A video with, where known, ground truth (gt/*.png) and first-frame prompts (objects.json)."""

    name: str
    video: Path
    frames: list[np.ndarray]
    gt: np.ndarray | None  # (T, H, W) label maps
    objects: list[dict[str, Any]]  # id, point, box, text
    fps: float

    def prompts(self, kind: str) -> list[Prompt]:
        if not self.objects:
            raise RtsegError(f"{self.name}: no objects.json, so no first-frame prompts to bench with")
        make: dict[str, Callable[[dict], Prompt]] = {
            "point": lambda o: PointPrompt((tuple(o["point"]),), (1,)),
            "box": lambda o: BoxPrompt(tuple(o["box"])), "text": lambda o: TextPrompt(o["text"])}
        return [make[kind](o) for o in self.objects]

    def mean_j(self, labels: list[np.ndarray] | np.ndarray) -> float | None:
        if self.gt is None:
            return None
        pred = np.stack(list(labels))
        return round(evaluate_arrays(pred, self.gt[: len(pred)],
                                     objects=[o["id"] for o in self.objects])["overall"]["J"], 4)


def load_sample(path: str | Path, frames: int) -> Sample:
    """A sample folder (video.mp4 [, gt/, objects.json], as ``rtseg synth video`` writes) or a video."""
    path = Path(path)
    video = path / "video.mp4" if path.is_dir() else path
    if not video.is_file():
        raise RtsegError(f"not a sample: {path} (expected a video, or a folder with video.mp4)")
    with VideoFileSource(video) as src:
        images = [f.image for _, f in zip(range(frames), src)]
        fps = src.fps or 30.0
    gt = None
    if (path / "gt").is_dir():
        gt = load_folder(path / "gt")[1][: len(images)]
    objects = []
    if (path / "objects.json").is_file():
        for o in json.loads((path / "objects.json").read_text())["objects"]:
            objects.append({"id": o["id"], **o["prompts"]})
    return Sample(path.name if path.is_dir() else path.stem, video, images, gt, objects, fps)


def build_architecture(scale: str, folder: Path) -> str:
    """A FastSAM-s/-x architecture (YOLOv8s/x-seg, one class) with untrained weights, saved as a
    FastSAM checkpoint in ``folder``: what the real model costs, without its weights.

    The weights are seeded, so every run times the same model, and the mask coefficients are set
    to fill each segment's box: with random ones most masks come out empty, and ultralytics (and
    rtseg) skip empty masks, which would time a scene with nothing in it. Run with ``conf=0`` and
    ``max_det=20``, every frame then has 20 segments with real-sized masks."""
    from rtseg.offline import prepare_ultralytics

    prepare_ultralytics()
    import torch
    import yaml
    from ultralytics import YOLO
    from ultralytics.utils import ROOT

    folder.mkdir(parents=True, exist_ok=True)
    spec = yaml.safe_load((ROOT / "cfg/models/v8/yolov8-seg.yaml").read_text())
    spec.update(nc=1, scale=scale)
    spec_path = folder / f"yolov8{scale}-seg-1class.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    torch.manual_seed(0)
    model = YOLO(str(spec_path), task="segment")
    head = model.model.model[-1]  # type: ignore[union-attr,index]
    for branch in head.cv4:  # mask coefficients ~ +1: the mask is the prototypes' sum, > 0 in the box
        branch[-1].weight.data.mul_(0.01)
        branch[-1].bias.data.fill_(1.0)
    path = folder / f"fastsam-{scale}-architecture.pt"
    model.save(str(path))
    return str(path)


class StandIn:
    """A segmenter that costs what ``timed`` costs (it runs it and drops its answer) but answers what
    ``answers`` said about the same frame beforehand: the cost of a model without trained weights
    (``--arch``), the behaviour of one with them (``--segments-from``)."""

    def __init__(self, timed: Any, answers: Any, frames: list[np.ndarray]) -> None:
        self.timed, self.device, self.path = timed, timed.device, timed.path
        self.model, self.kwargs = timed.model, timed.kwargs
        self.answers = {_key(f): answers(f) for f in frames}

    def __call__(self, image: np.ndarray) -> Any:
        self.timed(image)
        d = self.answers[_key(image)]
        return d[np.arange(len(d))]  # a copy: the tracker must not share it between runs


def _key(image: np.ndarray) -> bytes:
    return image[::7, ::7].tobytes()


# -- measuring -----------------------------------------------------------------------------------
def rss_mb() -> float:
    """Resident memory of this process now, MB (peak so far where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class MemoryProbe:
    """Samples resident memory on a thread while a run goes: ``peak`` MB, and ``samples``."""

    def __init__(self, every: float = 0.02) -> None:
        self.every = every
        self.samples: list[float] = []
        self._stop = threading.Event()

    def __enter__(self) -> "MemoryProbe":
        self.start = rss_mb()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(rss_mb())

    @property
    def peak(self) -> float:
        return max(self.samples, default=self.start)


def steady(values: list[float]) -> list[float]:
    """``values`` without the warm-up frames (kept when there are too few to spare them)."""
    return values[WARMUP:] if len(values) > 2 * WARMUP else values


def mean_fps(ms: list[float]) -> float:
    """Frames per second from per-frame milliseconds, after the warm-up."""
    return 1000 / float(np.mean(steady(ms)))


def percentiles(values: list[float]) -> dict[str, float]:
    v = np.asarray(steady(values), float)
    if len(v) == 0:
        return {"p50": float("nan"), "p95": float("nan"), "n": 0}
    return {"p50": round(float(np.percentile(v, 50)), 2), "p95": round(float(np.percentile(v, 95)), 2),
            "n": int(len(v))}


def steady_fps(done: list[float]) -> float:
    """Frames per second between the end of the warm-up and the last frame (monotonic stamps)."""
    stamps = steady(done)
    if len(stamps) < 2:
        return float("nan")
    return (len(stamps) - 1) / max(stamps[-1] - stamps[0], 1e-9)


class Replay(Source):
    """The sample's frames as a source: once or looped (``frames`` in all), every frame in order;
    ``on_frame(index)`` is called as each is handed over."""

    def __init__(self, images: list[np.ndarray], fps: float, frames: int, name: str = "replay",
                 on_frame: Callable[[int], None] | None = None) -> None:
        self.images, self.total, self.name, self.on_frame = images, frames, name, on_frame
        self.rate = self.fps = fps
        self.size = (images[0].shape[1], images[0].shape[0])

    def __iter__(self) -> Iterator[Frame]:
        for i in range(self.total):
            if self.on_frame is not None:
                self.on_frame(i)
            yield Frame(i, i / self.rate, self.images[i % len(self.images)])


class ReplayCamera:
    """A camera (the ``cv2.VideoCapture`` calls LiveSource makes) playing frames at their real rate."""

    def __init__(self, images: list[np.ndarray], fps: float) -> None:
        self.images, self.fps, self.k = images, fps, 0
        self.start = time.monotonic()

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return True

    def get(self, prop: int) -> float:
        h, w = self.images[0].shape[:2]
        return {cv2.CAP_PROP_FPS: self.fps, cv2.CAP_PROP_FRAME_WIDTH: w, cv2.CAP_PROP_FRAME_HEIGHT: h}.get(prop, 0.0)

    def read(self) -> tuple[bool, np.ndarray | None]:
        due = self.start + self.k / self.fps
        time.sleep(max(0.0, due - time.monotonic()))
        self.k += 1
        return True, self.images[(self.k - 1) % len(self.images)]

    def release(self) -> None:
        pass


# -- the runs ------------------------------------------------------------------------------------
class Bench:
    """Runs the benchmark rows for one config; ``rows`` collects them."""

    def __init__(self, config: Config, out: Path, quiet: bool = False, score: bool = True) -> None:
        self.config, self.out, self.quiet, self.score = config, out, quiet, score
        self.rows: list[dict[str, Any]] = []
        self._models: dict[str, Any] = {}
        self._plain: dict[str, Any] = {}
        self._scorer: Any = None
        self.answers: Any = None  # a segmenter whose segments stand in (StandIn)
        self.frames: list[np.ndarray] = []

    def log(self, text: str) -> None:
        if not self.quiet:
            print(text, flush=True)

    # shared models: one FastSAM per weights file, one CLIP
    def segmenter(self, weights: str | None = None) -> Any:
        from rtseg.segment import FastSAMSegmenter

        m = self.config.model
        key = weights or m.weights
        if key not in self._models:
            self._models[key] = FastSAMSegmenter.from_config(m, key)
            if self.answers is not None:
                self._models[key] = StandIn(self._models[key], self.answers, self.frames)
        return self._models[key]

    def ultralytics(self, weights: str | None = None) -> Any:
        """ultralytics' own FastSAM on the segmenter's weights file, with its own predictor (full-size
        masks of every segment): what a user of ultralytics runs, and the bare forward."""
        from ultralytics import FastSAM

        path = self.segmenter(weights).path
        if path not in self._plain:
            self._plain[path] = FastSAM(path)
        return self._plain[path]

    def scorer(self) -> Any:
        from rtseg.text import TextScorer

        if self._scorer is None:
            self._scorer = TextScorer(self.config.model.clip, device=self.segmenter().device)
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

    def run_track(self, source: str | Source, config: Config, prompts: list[Prompt], folder: Path,
                  max_frames: int | None = None, weights: str | None = None) -> tuple[RunStats, MemoryProbe]:
        """``rtseg track`` with every output (overlay video, mask PNGs, JSON lines) into ``folder``,
        on the bench's loaded models; returns its timings and memory."""
        stats = RunStats()
        with MemoryProbe() as probe:
            run_track(source, config, prompts, output=str(folder / "overlay.mp4"), masks=str(folder / "masks"),
                      jsonl=str(folder / "tracks.jsonl"), show=False, max_frames=max_frames, quiet=True,
                      segmenter=self.segmenter(weights), text_scorer=self.scorer(), stats=stats)
        return stats, probe

    def forward(self, sample: Sample, weights: str | None = None, run: str = "forward") -> dict[str, Any]:
        seg, model = self.segmenter(weights), self.ultralytics(weights)
        times = []
        with MemoryProbe() as probe:
            for image in sample.frames:
                t0 = time.perf_counter()
                model.predict(image, **seg.kwargs)
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

    def live(self, sample: Sample, kind: str = "point") -> dict[str, Any]:
        """A camera replaying the sample at its frame rate; the loop takes the newest frame."""
        camera = ReplayCamera(sample.frames, sample.fps)
        source = LiveSource(0, f"replayed {sample.name}", capture=camera)
        stats, probe = self.run_track(source, self.config, sample.prompts(kind), self.out / sample.name / "live",
                                      max(len(sample.frames) // 2, 10))
        return self.record(sample, "live", steady_fps(stats.done), stats.stages, probe, None,
                           latency=stats.latency, dropped=source.dropped)

    def peer(self, sample: Sample, kind: str) -> dict[str, Any]:
        from rtseg import peers

        seg = self.segmenter()
        with MemoryProbe() as probe:
            if kind == "track":
                from ultralytics import FastSAM

                model = FastSAM(seg.path)  # its own tracker state
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


def format_row(row: dict[str, Any]) -> str:
    ms = " ".join(f"{k} {v['p50']:.1f}/{v['p95']:.1f}" for k, v in row["ms"].items())
    j = f"J {row['mean_j']:.3f}" if row.get("mean_j") is not None else ""
    lat = f"latency {row['latency_ms']['p50']:.0f}/{row['latency_ms']['p95']:.0f} ms" if "latency_ms" in row else ""
    return (f"{row['sample']:>10} {row['run']:<18} {row['fps']:6.1f} FPS  {ms}  peak {row['peak_rss_mb']:.0f} MB"
            f"  {j} {lat}").rstrip()


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: one table of runs per sample, then the ratios."""
    m = report["machine"]
    lines = [f"{report['date']} | {m['cpu']} ({m['cores']} cores){', ' + m['gpu'] if m['gpu'] else ''} | "
             f"torch {m['torch']} | `{report['command']}`", ""]
    for sample in dict.fromkeys(r["sample"] for r in report["rows"]):
        lines += [f"**{sample}**", "", "| run | FPS | p50 / p95 ms by stage | peak RSS MB | mean J | other |",
                  "|---|---:|---|---:|---:|---|"]
        for r in (r for r in report["rows"] if r["sample"] == sample):
            ms = ", ".join(f"{k} {v['p50']:.1f} / {v['p95']:.1f}" for k, v in r["ms"].items())
            other = []
            if "segmented" in r:
                other.append(f"segmented {r['segmented']:.0%}")
            if "latency_ms" in r:
                other.append(f"latency {r['latency_ms']['p50']:.0f} / {r['latency_ms']['p95']:.0f} ms")
            if "growth_mb" in r:
                other.append(f"RSS growth {r['growth_mb']:+.1f} MB")
            j = f"{r['mean_j']:.3f}" if r.get("mean_j") is not None else "-"
            lines.append(f"| {r['run']} | {r['fps']:.1f} | {ms} | {r['peak_rss_mb']:.0f} | {j} | {'; '.join(other)} |")
        summary = report["summary"].get(sample, {})
        if summary:
            lines += ["", "ratios: " + ", ".join(f"{k} **{v}**" for k, v in summary.items())]
        lines.append("")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    import torch

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu, "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform()}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's ratios, per sample: end to end vs forward, text vs point, rtseg vs peers."""
    out: dict[str, Any] = {}
    for sample in sorted({r["sample"] for r in rows}):
        by = {r["run"]: r for r in rows if r["sample"] == sample}

        def ratio(a: str, b: str, by: dict[str, dict[str, Any]] = by) -> float | None:
            return round(by[a]["fps"] / by[b]["fps"], 3) if a in by and b in by and by[b]["fps"] > 0 else None

        s: dict[str, Any] = {
            "track_point_vs_forward": ratio("track-point", "forward"),
            "track_text_vs_point": ratio("track-text", "track-point"),
            "track_text_vs_ultralytics_text": ratio("track-text", "ultralytics-text"),
            "keyframes_point_vs_track_point": ratio("keyframes-point", "track-point"),
        }
        for fmt in EXPORT_NAMES:
            s[f"{fmt}_track_vs_{fmt}_forward"] = ratio(f"{fmt}-track-point", f"{fmt}-forward")
            s[f"{fmt}_track_vs_track_point"] = ratio(f"{fmt}-track-point", "track-point")
        js = {k: v["mean_j"] for k, v in by.items() if v.get("mean_j") is not None}
        peers = [v for k, v in js.items() if k.startswith("ultralytics")]
        ours = [v for k, v in js.items() if k.startswith("track-")]
        if peers and ours:
            s["mean_j_min_rtseg_minus_best_peer"] = round(min(ours) - max(peers), 4)
        if "keyframes-point" in js and "track-point" in js:
            s["keyframes_j_minus_track_j"] = round(js["keyframes-point"] - js["track-point"], 4)
        if "live" in by and "latency_ms" in by["live"]:
            frame = by["live"]["ms"].get("frame", {}).get("p50")
            if frame:
                s["live_latency_p50_over_frame_p50"] = round(by["live"]["latency_ms"]["p50"] / frame, 3)
        out[sample] = {k: v for k, v in s.items() if v is not None}
    return out


def run_bench(samples: list[str], config: Config, runs: list[str], frames: int, keyframes: int,
              out: Path, export: str | None = None, soak: int = 0, json_path: str | None = None,
              quiet: bool = False, command: str = "", md_path: str | None = None,
              score: bool = True, segments_from: Config | None = None) -> dict[str, Any]:
    """Every run of ``runs`` on every sample; ``score=False`` leaves J out (untrained weights).
    With ``segments_from``, rtseg's runs get that config's model's segments (computed before any
    timing) at the cost of ``config``'s model (see :class:`StandIn`)."""
    unknown = [r for r in runs if r not in RUNS]
    if unknown:
        raise RtsegError(f"unknown run {unknown[0]!r}; known: {', '.join(RUNS)}")
    out.mkdir(parents=True, exist_ok=True)
    bench = Bench(config, out, quiet, score)
    loaded = [load_sample(s, frames) for s in samples]
    if segments_from is not None:
        from rtseg.segment import FastSAMSegmenter

        m = segments_from.model
        bench.answers = FastSAMSegmenter.from_config(m)
        bench.frames = [f for sample in loaded for f in sample.frames]
        bench.log(f"segments from {m.weights} computed before timing; cost from {config.model.weights}")
    exported = None
    if export:
        from rtseg.export import export_model

        bench.log(f"exporting {config.model.weights} to {export} ...")
        exported = export_model(config.model.weights, export, config.model.imgsz, bool(config.model.half),
                                str(out / EXPORT_NAMES[export]), bench.segmenter().device)
    for sample in loaded:
        bench.log(f"{sample.name}: {len(sample.frames)} frames, {len(sample.objects)} objects")
        for run in runs:
            if run == "forward":
                bench.forward(sample)
            elif run.startswith("track-"):
                bench.track(sample, run.split("-", 1)[1])
            elif run.startswith("keyframes-"):
                bench.track(sample, run.split("-", 1)[1], keyframes=keyframes)
            elif run.startswith("ultralytics-"):
                bench.peer(sample, run.split("-", 1)[1])
            elif run == "live":
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
