"""The live window, for real: Xvfb as the screen, xdotool as the user's mouse and keyboard."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv

from rtseg.output.png import read_index_png

from conftest import DEMO_CONFIG, SHOWCASE


@pytest.fixture
def display():
    if not (shutil.which("Xvfb") and shutil.which("xdotool")):
        if os.environ.get("RTSEG_REQUIRE_XVFB"):
            pytest.fail("Xvfb and xdotool are required here (RTSEG_REQUIRE_XVFB is set)")
        pytest.skip("Xvfb or xdotool not installed (apt-get install xvfb xdotool)")
    number = 60 + os.getpid() % 200
    proc = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    socket = Path(f"/tmp/.X11-unix/X{number}")
    for _ in range(100):
        if socket.exists():
            break
        time.sleep(0.05)
    yield f":{number}"
    proc.terminate()
    proc.wait(timeout=10)


def xdotool(display: str, *args: str) -> str:
    return subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": display}, capture_output=True,
                          text=True, timeout=30).stdout.strip()


def records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines[:-1] if line] + (
        [json.loads(lines[-1])] if lines and lines[-1].endswith("}") else [])


def wait_for(condition, timeout: float = 90.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_click_adds_an_object_and_drag_adds_a_box(display, tmp_path):
    meta = json.loads((SHOWCASE / "objects.json").read_text())
    first = cv2.VideoCapture(str(SHOWCASE / "video.mp4")).read()[1]
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(400):  # a still scene, long enough to click in
        cv2.imwrite(str(frames / f"{i:04d}.jpg"), first)
    out = tmp_path / "t.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtseg.cli", "track", str(frames), "--config", str(DEMO_CONFIG), "--show",
         "--save-json", str(out), "--quiet"],
        env={**os.environ, "DISPLAY": display}, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(records(out)) >= 3)
        window = xdotool(display, "search", "--sync", "--name", "^rtseg")
        assert window, "no rtseg window on the screen"
        assert all(not r["objects"] for r in records(out))
        x, y = meta["objects"][0]["prompts"]["point"]
        xdotool(display, "mousemove", "--window", window, str(x), str(y), "click", "1")
        wait_for(lambda: any(r["objects"] for r in records(out)))
        x1, y1, x2, y2 = meta["objects"][1]["prompts"]["box"]
        xdotool(display, "mousemove", "--window", window, str(x1 - 3), str(y1 - 3), "mousedown", "1")
        xdotool(display, "mousemove", "--window", window, str(x2 + 3), str(y2 + 3), "mouseup", "1")
        wait_for(lambda: any(len(r["objects"]) == 2 for r in records(out)))
        two = next(r for r in records(out) if len(r["objects"]) == 2)
        # Right click: a negative point for the last object (the box), which is then chosen again.
        xdotool(display, "mousemove", "--window", window, "600", "20", "click", "3")
        wait_for(lambda: any("box" in o["prompt"] and "-600,20" in o["prompt"]
                             for r in records(out)[-3:] for o in r["objects"]))
        # Space pauses: no new frames until it is pressed again.
        xdotool(display, "key", "--window", window, "space")
        time.sleep(1.0)
        paused = len(records(out))
        time.sleep(1.5)
        assert len(records(out)) == paused
        xdotool(display, "key", "--window", window, "space")
        wait_for(lambda: len(records(out)) > paused + 2)
        xdotool(display, "key", "--window", window, "r")  # reset: every object forgotten
        wait_for(lambda: not records(out)[-1]["objects"])
        xdotool(display, "key", "--window", window, "q")
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, proc.stderr.read()
    assert not records(out)[-1]["objects"]
    last = two
    by_id = {o["id"]: o for o in last["objects"]}
    assert set(by_id) == {1, 2}
    assert by_id[1]["prompt"] == f"point +{x},{y}"
    assert by_id[2]["prompt"].startswith("box ")
    mask = sv.rle_to_mask(by_id[1]["mask"]["counts"], by_id[1]["mask"]["size"][::-1])
    assert mask[y, x]
    gt = read_index_png(SHOWCASE / "gt" / "00000.png")
    for oid in (1, 2):
        m = sv.rle_to_mask(by_id[oid]["mask"]["counts"], by_id[oid]["mask"]["size"][::-1])
        assert (m & (gt == oid)).sum() / (m | (gt == oid)).sum() > 0.7
    assert np.isfinite(last["time"])
