"""The README's picture of the Rerun viewer (docs/rerun-viewer.png), taken from the real viewer.

A showcase scene with depth is tracked with ``--rerun-save``; Rerun's own web viewer
(``rerun FILE --serve-web``) opens the recording in Chromium (Playwright), which saves what it shows.
The native viewer needs a GPU (wgpu); the web viewer renders with Chromium's software WebGL here.

    .venv/bin/python benchmarks/rerun_picture.py            # writes docs/rerun-viewer.png
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def record(folder: Path) -> Path:
    """Track a scene with depth (configs/synth-depth.yaml: the shapes world's intrinsics) to ``folder/run.rrd``."""
    from rtseg.cli import main

    assert main(["synth", "video", str(folder / "scene"), "--scenario", "showcase", "--seed", "3", "--frames", "60",
                 "--depth"]) == 0
    meta = json.loads((folder / "scene" / "objects.json").read_text())
    config = ROOT / "configs" / "synth-depth.yaml"
    prompts = [a for o in meta["objects"][:4] for a in ("--point", "{},{}".format(*o["prompts"]["point"]))]
    assert main(["track", str(folder / "scene" / "video.mp4"), "--config", str(config), "--depth",
                 str(folder / "scene" / "depth"), *prompts, "--no-show", "--quiet",
                 "--rerun-save", str(folder / "run.rrd")]) == 0
    return folder / "run.rrd"


def screenshot(rrd: Path, out: Path, settle_s: float) -> None:
    from playwright.sync_api import sync_playwright

    web, grpc = free_port(), free_port()
    viewer = subprocess.Popen([str(Path(sys.executable).with_name("rerun")), str(rrd), "--serve-web",
                               "--web-viewer-port", str(web), "--port", str(grpc)],
                              env={**os.environ, "XDG_RUNTIME_DIR": tempfile.gettempdir()},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:  # the web server is up
            try:
                socket.create_connection(("127.0.0.1", web), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and viewer.poll() is None, "the Rerun web viewer did not start"
                time.sleep(0.2)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"), args=[
                "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"])
            page = browser.new_page(viewport={"width": 1400, "height": 860})
            page.goto(f"http://127.0.0.1:{web}/?url=rerun%2Bhttp%3A%2F%2F127.0.0.1%3A{grpc}%2Fproxy")
            time.sleep(settle_s)  # the viewer streams the recording in and draws it (a picture, not a test)
            page.screenshot(path=str(out))
            browser.close()
    finally:  # the `rerun` script runs the viewer binary as its child: the whole group goes
        os.killpg(viewer.pid, signal.SIGTERM)
        viewer.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "rerun-viewer.png")
    parser.add_argument("--settle", type=float, default=30.0, help="seconds the viewer draws before the picture")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        screenshot(record(Path(tmp)), args.out, args.settle)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
