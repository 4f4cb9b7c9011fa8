"""The live window, for real: Xvfb as the screen, xdotool as the user's mouse and keyboard."""

from __future__ import annotations

import json
import os
import re
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


def _xvfb(screen: str, offset: int):
    if not (shutil.which("Xvfb") and shutil.which("xdotool")):
        if os.environ.get("RTSEG_REQUIRE_XVFB"):
            pytest.fail("Xvfb and xdotool are required here (RTSEG_REQUIRE_XVFB is set)")
        pytest.skip("Xvfb or xdotool not installed (apt-get install xvfb xdotool)")
    number = 60 + offset + os.getpid() % 200
    proc = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", f"{screen}x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    socket = Path(f"/tmp/.X11-unix/X{number}")
    for _ in range(100):
        if socket.exists():
            break
        time.sleep(0.05)
    yield f":{number}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def display():
    yield from _xvfb("1024x768", 0)


@pytest.fixture
def wide_display():  # room for the default 1280x720 window
    yield from _xvfb("1600x1000", 200)


def xdotool(display: str, *args: str) -> str:
    return subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": display}, capture_output=True,
                          text=True, timeout=30).stdout.strip()


def records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines[:-1] if line] + (
        [json.loads(lines[-1])] if lines and lines[-1].endswith("}") else [])


def geometry(display: str, window: str) -> tuple[int, int]:
    found = re.search(r"Geometry: (\d+)x(\d+)", xdotool(display, "getwindowgeometry", window))
    assert found, f"no geometry for window {window}"
    return int(found[1]), int(found[2])


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
        assert geometry(display, window) == (640, 480)  # a frame that fits is shown as it is
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


def still_sample(folder: Path, size: str, frames: int) -> tuple[Path, dict, np.ndarray]:
    """The showcase at ``size`` (rtseg synth): its first frame ``frames`` times as a folder (links to
    one JPEG), its objects and its first ground-truth mask."""
    subprocess.run([sys.executable, "-m", "rtseg.cli", "synth", "video", str(folder / "sample"), "--scenario",
                    "showcase", "--seed", "11", "--size", size, "--frames", "2"], check=True, capture_output=True,
                   timeout=600)
    first = cv2.VideoCapture(str(folder / "sample" / "video.mp4")).read()[1]
    still = folder / "frames"
    still.mkdir()
    cv2.imwrite(str(still / "0000.jpg"), first)
    for i in range(1, frames):
        (still / f"{i:04d}.jpg").symlink_to("0000.jpg")
    meta = json.loads((folder / "sample" / "objects.json").read_text())
    return still, meta, read_index_png(folder / "sample" / "gt" / "00000.png")


def shown_at(x: int, y: int, shown: tuple[int, int], source: tuple[int, int]) -> tuple[int, int]:
    """Where source pixel (x, y) is on a frame shown at ``shown`` (the pixel a user would click)."""
    return round(x * shown[0] / source[0]), round(y * shown[1] / source[1])


def source_of(x: int, y: int, shown: tuple[int, int], source: tuple[int, int]) -> tuple[int, int]:
    """The source pixel holding the centre of shown pixel (x, y), in integers."""
    return (2 * x + 1) * source[0] // (2 * shown[0]), (2 * y + 1) * source[1] // (2 * shown[1])


def mask_of(obj: dict) -> np.ndarray:
    return sv.rle_to_mask(obj["mask"]["counts"], obj["mask"]["size"][::-1])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def track_shown(display: str, frames: Path, out: Path, *options: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rtseg.cli", "track", str(frames), "--config", str(DEMO_CONFIG), "--show",
         "--save-json", str(out), "--quiet", *options],
        env={**os.environ, "DISPLAY": display}, stderr=subprocess.PIPE, text=True)


def test_a_1080p_source_is_shown_scaled_and_clicks_land_on_its_pixels(wide_display, tmp_path):
    display, source = wide_display, (1920, 1080)
    frames, meta, gt = still_sample(tmp_path, "1920x1080", 1000)
    out = tmp_path / "t.jsonl"
    proc = track_shown(display, frames, out)
    try:
        wait_for(lambda: len(records(out)) >= 3)
        window = xdotool(display, "search", "--sync", "--name", "^rtseg")
        assert window, "no rtseg window on the screen"
        first = (1280, 720)  # the default output.window_size: the frame at 2/3, aspect kept
        assert geometry(display, window) == first
        point = shown_at(*meta["objects"][0]["prompts"]["point"], first, source)
        xdotool(display, "mousemove", "--window", window, *map(str, point), "click", "1")
        wait_for(lambda: any(r["objects"] for r in records(out)))
        # The user makes the window smaller: the next frames are scaled to it (1/2), and clicks follow.
        xdotool(display, "windowsize", window, "960", "540")
        done = len(records(out))
        wait_for(lambda: len(records(out)) > done + 5)
        second = (960, 540)
        assert geometry(display, window) == second  # rtseg does not fight the user's size
        x1, y1, x2, y2 = meta["objects"][1]["prompts"]["box"]
        corner, far = shown_at(x1 - 6, y1 - 6, second, source), shown_at(x2 + 6, y2 + 6, second, source)
        xdotool(display, "mousemove", "--window", window, *map(str, corner), "mousedown", "1")
        xdotool(display, "mousemove", "--window", window, *map(str, far), "mouseup", "1")
        wait_for(lambda: any(len(r["objects"]) == 2 for r in records(out)))
        negative = shown_at(1200, 1000, second, source)  # background: a negative point for the box
        xdotool(display, "mousemove", "--window", window, *map(str, negative), "click", "3")
        negative = source_of(*negative, second, source)
        wait_for(lambda: any(" -" in o["prompt"] for o in records(out)[-1]["objects"]))
        xdotool(display, "key", "--window", window, "q")
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, proc.stderr.read()
    by_id = {o["id"]: o for o in records(out)[-1]["objects"]}
    assert set(by_id) == {1, 2}
    # Prompts in source pixels: the pixel under the centre of the one clicked, within a shown pixel
    # of the object's own point.
    px, py = source_of(*point, first, source)
    assert by_id[1]["prompt"] == f"point +{px},{py}"
    gx, gy = meta["objects"][0]["prompts"]["point"]
    assert abs(px - gx) <= 1 and abs(py - gy) <= 1
    box = (*source_of(*corner, second, source), *source_of(*far, second, source))
    assert by_id[2]["prompt"] == "box {},{},{},{} -{},{}".format(*box, *negative)
    assert all(abs(b - v) <= 2 for b, v in zip(box, (x1 - 6, y1 - 6, x2 + 6, y2 + 6)))
    # Masks and boxes at the source's resolution, on the objects clicked.
    for oid in (1, 2):
        mask = mask_of(by_id[oid])
        assert mask.shape == (1080, 1920)
        assert iou(mask, gt == oid) > 0.7
        ys, xs = np.nonzero(gt == oid)
        assert np.allclose(by_id[oid]["box"], (xs.min(), ys.min(), xs.max(), ys.max()), atol=12)
    assert mask_of(by_id[1])[py, px]


def test_window_size_option_and_a_4k_source(display, tmp_path):
    source = (3840, 2160)
    frames, meta, gt = still_sample(tmp_path, "3840x2160", 400)
    out = tmp_path / "t.jsonl"
    proc = track_shown(display, frames, out, "--window-size", "1000x700")
    try:
        wait_for(lambda: len(records(out)) >= 2)
        window = xdotool(display, "search", "--sync", "--name", "^rtseg")
        assert window, "no rtseg window on the screen"
        shown = (1000, 562)  # 1000x700 is the bound; the frame's aspect is kept (scales 3.84 and 3.84-3.85)
        assert geometry(display, window) == shown
        point = shown_at(*meta["objects"][2]["prompts"]["point"], shown, source)  # the green star
        xdotool(display, "mousemove", "--window", window, *map(str, point), "click", "1")
        wait_for(lambda: any(r["objects"] for r in records(out)))
        xdotool(display, "key", "--window", window, "Escape")
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, proc.stderr.read()
    (star,) = next(r for r in records(out) if r["objects"])["objects"]
    px, py = source_of(*point, shown, source)
    assert star["prompt"] == f"point +{px},{py}"
    gx, gy = meta["objects"][2]["prompts"]["point"]
    assert abs(px - gx) <= 2 and abs(py - gy) <= 2
    mask = mask_of(star)
    assert mask.shape == (2160, 3840) and mask[py, px]
    assert iou(mask, gt == 3) > 0.7


class _Prompts:
    """Stands in for a Session: the config, and the prompts the window adds."""

    def __init__(self, window_size: str) -> None:
        from rtseg.config import Config, OutputConfig

        self.config = Config(output=OutputConfig(window_size=window_size))
        self.added: list = []

    def add(self, prompt) -> int:
        self.added.append(prompt)
        return len(self.added)

    def add_negative(self, oid: int, point: tuple[float, float]) -> None:
        self.added.append((oid, point))


@pytest.mark.parametrize("source, drawn, bound, shown", [
    ((1920, 1080), (1920, 1080), "1280x720", (1280, 720)),  # the runner drew it at the frame's size
    ((1920, 1080), (1280, 720), "1280x720", (1280, 720)),  # ... or already at the window's
    ((3840, 2160), (3840, 2160), "1000x700", (1000, 562)),
    ((3840, 2160), (1280, 720), "1000x700", (1000, 562)),
    ((640, 480), (640, 480), "1280x720", (640, 480)),  # fits: shown as it is
    ((1080, 1920), (1080, 1920), "1280x720", (405, 720)),  # portrait
])
def test_frames_are_scaled_to_the_bound_and_clicks_map_to_source_pixels(source, drawn, bound, shown):
    """No screen needed: ``write`` scales (the output thread's part) and mouse events map back."""
    from types import SimpleNamespace

    from rtseg.output.window import Window

    prompts = _Prompts(bound)
    window = Window(prompts)  # type: ignore[arg-type]
    overlay = np.zeros((drawn[1], drawn[0], 3), np.uint8)
    overlay[: drawn[1] // 2] = 255  # the top half white: kept in place by the scaling
    window.write(SimpleNamespace(overlay=overlay, image=np.zeros((source[1], source[0], 3), np.uint8)))
    assert window.last is not None and window.last.size == shown and window.last.source == source
    assert window.last.image[: shown[1] // 2 - 1].min() == 255 and window.last.image[shown[1] // 2 + 1:].max() == 0
    window.shown = window.last  # what pump does when it shows it
    far = (shown[0] - 1, shown[1] - 1)
    window._on_mouse(cv2.EVENT_LBUTTONDOWN, 0, 0, 0, None)
    window._on_mouse(cv2.EVENT_LBUTTONUP, 0, 0, 0, None)  # a click: a point
    window._on_mouse(cv2.EVENT_LBUTTONDOWN, 2, 3, 0, None)
    window._on_mouse(cv2.EVENT_LBUTTONUP, *far, 0, None)  # a drag: a box
    window._on_mouse(cv2.EVENT_RBUTTONDOWN, *far, 0, None)  # a negative point for the box
    point, box, (oid, negative) = prompts.added
    sx, sy = source[0] / shown[0], source[1] / shown[1]  # a shown pixel maps to the one under its centre
    corner = (float(int((far[0] + 0.5) * sx)), float(int((far[1] + 0.5) * sy)))
    assert point.points == ((float(int(0.5 * sx)), float(int(0.5 * sy))),)
    assert box.box == (float(int(2.5 * sx)), float(int(3.5 * sy)), *corner)
    assert (oid, negative) == (2, corner)
    assert source[0] - sx <= corner[0] <= source[0] - 1 and source[1] - sy <= corner[1] <= source[1] - 1
    assert not window.messages


def test_window_size_comes_from_the_option_or_the_config(tmp_path):
    from rtseg.cli.commands import _config_from_args
    from rtseg.cli.parser import build_parser
    from rtseg.config import load_config
    from rtseg.errors import RtsegError

    parse = build_parser().parse_args
    assert _config_from_args(parse(["track", "0"])).output.window == (1280, 720)
    assert _config_from_args(parse(["track", "0", "--window-size", "800x450"])).output.window == (800, 450)
    config = tmp_path / "c.yaml"
    config.write_text("output:\n  window_size: 1920x1080\n")
    assert load_config(config).output.window == (1920, 1080)
    args = parse(["track", "0", "--config", str(config), "--window-size", "960X540"])
    assert _config_from_args(args).output.window == (960, 540)  # the option overrides the file
    for bad in ("big", "1280", "1280x720x3", "16x16", "-1x720", "''"):
        config.write_text(f"output:\n  window_size: {bad}\n")
        with pytest.raises(RtsegError, match=r"output\.window_size"):  # naming the key
            load_config(config)
    config.write_text("output:\n  video_size: ''\n")  # the video may be empty: the frame's size
    assert load_config(config).output.video is None
    config.write_text("output:\n  video_size: 1280\n")
    with pytest.raises(RtsegError, match=r"output\.video_size"):
        load_config(config)
    with pytest.raises(SystemExit):
        parse(["track", "0", "--window-size", "wide"])
