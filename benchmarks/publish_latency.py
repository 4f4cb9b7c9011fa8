"""What publishing on Zenoh costs ``rtseg track``: FPS with and without a :class:`Publisher`, as a
ratio measured in one process on the same frames, and the latency to a subscriber in another
process on this machine.

    .venv/bin/python benchmarks/publish_latency.py --frames 300 --json benchmarks/publish-cpu.json

The showcase with its five prompts, demo models, frames replayed from memory (every frame, as a
file); runs alternate without / with publishing, ``--repeats`` times each; medians. Latency: from
just before the message is put to its arrival (``sent`` -> received: what publishing adds), and from
the frame's capture to its arrival (capture -> received: what a robot sees), the latter from a
camera replayed at 10 FPS (offline frames are read ahead of the model, so their capture time says
nothing).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEY = "rtseg-bench/publish"


def subscribe(out: str) -> None:
    """The other process: append (received - sent, received - captured) in ms per objects message."""
    import threading

    from rtseg.output.publish import open_zenoh

    session = open_zenoh()
    f = open(out, "a", buffering=1)

    def handle(sample) -> None:
        now = time.time()
        m = json.loads(sample.payload.to_bytes())
        s = m["header"]["stamp"]
        f.write(json.dumps([(now - m["sent"]) * 1000, (now - s["sec"] - s["nanosec"] / 1e9) * 1000]) + "\n")

    session.declare_subscriber(f"{KEY}/objects", handle)
    print("ready", flush=True)
    threading.Event().wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json")
    parser.add_argument("--subscribe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    import conftest  # noqa: F401  (the offline environment)

    if args.subscribe:
        subscribe(args.subscribe)
        return 0
    from rtseg.bench.measure import percentiles, steady_fps
    from rtseg.capture.replay import Replay, ReplayCamera
    from rtseg.capture.live import LiveSource
    from rtseg.output.publish import Publisher
    from rtseg.output.sinks import StatsSink
    from rtseg.runner import run
    from rtseg.session import Session
    from showcase import load_showcase  # benchmarks/showcase.py

    config, prompts, images, segmenter, scorer = load_showcase(args.frames)
    log = tempfile.mktemp(suffix=".jsonl")
    sub = subprocess.Popen([sys.executable, __file__, "--subscribe", log], stdout=subprocess.PIPE, text=True)
    assert sub.stdout is not None and sub.stdout.readline().strip() == "ready"
    fps: dict[str, list[float]] = {"off": [], "on": []}
    try:
        for _ in range(args.repeats):
            for mode in ("off", "on"):
                session = Session.for_prompts(config, prompts, segmenter=segmenter, text_scorer=scorer)
                stats = StatsSink()
                sinks = [Publisher(KEY, session), stats] if mode == "on" else [stats]
                run(Replay(images, 30.0, len(images)), session, sinks)
                fps[mode].append(steady_fps(stats.done))
                print(f"publish {mode}: {fps[mode][-1]:.1f} FPS", flush=True)
        time.sleep(0.5)
        offline = len(Path(log).read_text().splitlines())
        # A camera at 10 FPS (slower than the tracker here): capture -> received as a robot sees it.
        session = Session.for_prompts(config, prompts, segmenter=segmenter, text_scorer=scorer)
        camera = LiveSource(0, "replayed camera", capture=ReplayCamera(images, 10.0))
        with camera:
            run(camera, session, [Publisher(KEY, session)], max_frames=100)
        time.sleep(0.5)
    finally:
        sub.terminate()
    rows = [json.loads(line) for line in Path(log).read_text().splitlines()]
    live, rows = rows[offline:], rows[:offline]
    off, on = statistics.median(fps["off"]), statistics.median(fps["on"])
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "frames": args.frames, "repeats": args.repeats,
        "fps": {k: [round(v, 2) for v in vs] for k, vs in fps.items()},
        "fps_on_vs_off": round(on / off, 3), "fps_cost_percent": round(100 * (1 - on / off), 1),
        "messages_received": len(rows), "messages_expected": args.frames * args.repeats,
        "latency_sent_to_received_ms": percentiles([r[0] for r in rows]),
        "latency_capture_to_received_ms_offline": percentiles([r[1] for r in rows]),
        "live_messages": len(live),
        "live_latency_sent_to_received_ms": percentiles([r[0] for r in live]),
        "live_latency_capture_to_received_ms": percentiles([r[1] for r in live]),
    }
    print(json.dumps(report, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
