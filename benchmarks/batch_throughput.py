"""``make bench-batch``: rtseg batch's throughput with 1 and 2 workers on the same videos, as a ratio
measured in one run, and the fixed cost of starting the local Ray.

    .venv/bin/python benchmarks/batch_throughput.py --videos 8 --frames 150 --json benchmarks/batch-cpu.json

The videos are synthetic scenarios (seeds 100...), tracked by their first-frame points with the
demo models. Each worker count runs ``--repeats`` times, alternating (1, 2, 1, 2, ...); medians.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import conftest  # noqa: E402,F401  (the offline environment, before ultralytics is imported)

from rtseg.batch.manifest import Job  # noqa: E402
from rtseg.batch.run import VideoWorker, import_ray, run_batch  # noqa: E402
from rtseg.config import load_config  # noqa: E402
from rtseg.prompt.prompts import PointPrompt  # noqa: E402
from rtseg.synth.video import write_video  # noqa: E402

SCENARIOS = ("occlusion", "crossing", "fast", "exit", "shake", "crowd", "linear", "bounce")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    config = load_config(ROOT / "configs/demo.yaml")
    work = Path(tempfile.mkdtemp(prefix="rtseg-bench-batch-"))
    jobs = []
    for k in range(args.videos):
        video = work / f"v{k}"
        meta = write_video(video, SCENARIOS[k % len(SCENARIOS)], 100 + k, args.frames)
        prompts = tuple(PointPrompt((tuple(o["prompts"]["point"]),), (1,)) for o in meta["objects"])
        jobs.append(Job(f"v{k}", str(video / "video.mp4"), prompts, row=k + 1))
    frames = args.videos * args.frames

    ray = import_ray()
    starts = []
    for _ in range(3):  # the fixed cost: a local Ray, one worker with its models loaded
        t0 = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
                 object_store_memory=100 * 2**20)
        worker = ray.remote(VideoWorker).options(num_cpus=1).remote(config, str(work / "x"), False, 1)
        ray.get(worker.__ray_ready__.remote())
        starts.append(time.perf_counter() - t0)
        ray.shutdown()

    walls: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(args.repeats):
        for workers in (1, 2):
            out = work / f"out-{workers}"
            shutil.rmtree(out, ignore_errors=True)
            t0 = time.perf_counter()
            rows = run_batch(jobs, config, out, workers=workers, resume=False, quiet=True)
            walls[workers].append(time.perf_counter() - t0)
            assert all(r["status"] == "done" for r in rows), rows
            print(f"{workers} worker(s): {walls[workers][-1]:.1f} s for {frames} frames", flush=True)
    start = statistics.median(starts)
    one, two = statistics.median(walls[1]), statistics.median(walls[2])
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "videos": args.videos, "frames_per_video": args.frames,
        "ray_start_s": [round(s, 2) for s in starts], "ray_start_median_s": round(start, 2),
        "wall_s": {str(k): [round(v, 2) for v in vs] for k, vs in walls.items()},
        "fps_1_worker": round(frames / one, 2), "fps_2_workers": round(frames / two, 2),
        "throughput_2_vs_1": round(one / two, 3),
        "throughput_2_vs_1_after_start": round((one - start) / (two - start), 3),
    }
    print(json.dumps(report, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
