"""What showing a 1080p and a 4K overlay in the live window costs, per frame, with and without scaling.

    .venv/bin/python benchmarks/window_show.py --frames 300 --repeats 3 --json benchmarks/window-show.json

Runs on the display in DISPLAY, or on its own Xvfb screen (3840x2160, so a full-size 4K frame fits)
when there is none. Each run feeds a :class:`~rtseg.output.window.Window` new overlays (8 different
frames, cycled), as the runner does: ``write`` (the output thread: the resize, when scaling) then
``pump(1)`` (the main thread: imshow and one waitKey(1)). Modes: ``before`` (the window as it was
before #15: an AUTOSIZE window, imshow at the source size), ``full`` (the window now, told a bound
as large as the frame: nothing scaled), ``scaled`` (the default 1280x720 bound). Also each way's
resize alone, with its PSNR to INTER_AREA's. Medians over ``--frames`` frames after 20 warm-up
frames, in ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np

SIZES = {"1080p": (1920, 1080), "4K": (3840, 2160)}
WARMUP = 20


def overlays(size: tuple[int, int], n: int = 8) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    w, h = size
    frames = []
    for i in range(n):
        image = cv2.resize(rng.integers(0, 255, (h // 16, w // 16, 3), dtype=np.uint8), size)
        cv2.circle(image, (w * (i + 1) // (n + 1), h // 2), h // 6, (0, 200, 255), -1)
        for j in range(6):  # labels and the stats line as the renderer draws them, and 1-pixel lines
            cv2.putText(image, f"#{j} point +461,1339 | 12.3 FPS", (30, 40 + 50 * j), cv2.FONT_HERSHEY_SIMPLEX,
                        0.45 * (1 + j / 2), (255, 255, 255), 1, cv2.LINE_AA)
        for j in range(40):
            cv2.line(image, (30 + 7 * j, h // 2), (130 + 7 * j, h - 30), (0, 0, 255), 1)
        frames.append(image)
    return frames


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples[WARMUP:]) * 1000, 2)


def run_window(size: tuple[int, int], bound: tuple[int, int], frames: int) -> dict:
    from rtseg.config import Config
    from rtseg.output.sinks import StreamInfo
    from rtseg.output.window import Window

    window = Window(SimpleNamespace(config=Config()), title="rtseg - bench", max_size=bound)  # type: ignore[arg-type]
    window.open(StreamInfo("bench", None, True))
    images, write, pump = overlays(size), [], []
    for i in range(frames + WARMUP):
        result = SimpleNamespace(overlay=images[i % len(images)], image=images[i % len(images)])
        t0 = time.perf_counter()
        window.write(result)  # type: ignore[arg-type]
        t1 = time.perf_counter()
        window.pump(1)
        t2 = time.perf_counter()
        write.append(t1 - t0)
        pump.append(t2 - t1)
    shown = window.shown.size if window.shown else None
    window.close()
    return {"shown": f"{shown[0]}x{shown[1]}" if shown else None, "write_ms": median_ms(write),
            "pump_ms": median_ms(pump), "total_ms": median_ms([a + b for a, b in zip(write, pump)])}


def run_before(size: tuple[int, int], frames: int) -> dict:
    title = "rtseg - bench before"
    cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
    images, total = overlays(size), []
    for i in range(frames + WARMUP):
        t0 = time.perf_counter()
        cv2.imshow(title, images[i % len(images)])
        cv2.waitKey(1)
        total.append(time.perf_counter() - t0)
    cv2.destroyWindow(title)
    cv2.waitKey(1)
    return {"shown": f"{size[0]}x{size[1]}", "total_ms": median_ms(total)}


def run_resize(size: tuple[int, int], frames: int) -> dict:
    """Each way's resize to 1280x720 alone: ms, and PSNR (dB) to INTER_AREA's on the first frame."""
    from rtseg.output.render import shrink

    images, out = overlays(size), {}
    ways = {name: (lambda image, f=getattr(cv2, name): cv2.resize(image, (1280, 720), interpolation=f))
            for name in ("INTER_AREA", "INTER_LINEAR", "INTER_NEAREST")}
    ways["rtseg downscale"] = lambda image: shrink(image, (1280, 720))
    reference = ways["INTER_AREA"](images[0])
    for name, way in ways.items():
        samples = []
        for i in range(frames + WARMUP):
            t0 = time.perf_counter()
            way(images[i % len(images)])
            samples.append(time.perf_counter() - t0)
        psnr = cv2.PSNR(reference, way(images[0]))
        out[name] = {"ms": median_ms(samples), "psnr_db": round(psnr, 1) if psnr < 100 else None}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=1, help="runs of the whole set (shared machines are noisy)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    xvfb = None
    if not os.environ.get("DISPLAY"):
        number = 90 + os.getpid() % 100
        xvfb = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "3840x2160x24", "-nolisten", "tcp"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.environ["DISPLAY"] = f":{number}"
        for _ in range(100):
            if Path(f"/tmp/.X11-unix/X{number}").exists():
                break
            time.sleep(0.05)
    try:
        runs = []
        for _ in range(args.repeats):
            rows = {}
            for name, size in SIZES.items():
                rows[name] = {"before": run_before(size, args.frames), "full": run_window(size, size, args.frames),
                              "scaled": run_window(size, (1280, 720), args.frames),
                              "resize_to_720p": run_resize(size, args.frames)}
                print(name, json.dumps(rows[name]), flush=True)
            runs.append(rows)
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(timeout=10)
    report = {"frames": args.frames, "display": "own Xvfb 3840x2160" if xvfb else os.environ["DISPLAY"],
              "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
              "opencv": cv2.__version__, "gui": "Qt5", "date": time.strftime("%Y-%m-%d"),
              "command": f"benchmarks/window_show.py --frames {args.frames} --repeats {args.repeats}", "runs": runs}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
