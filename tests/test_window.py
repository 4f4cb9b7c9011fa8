"""The live window, for real: Xvfb as the screen, xdotool as the user's mouse and keyboard.

Nothing here decides on the clock: each step waits for the state it needs (a record count in the
JSON file, the window's title, which says the shown frame's size and when the run is paused, after
how many frames), each wait bounded by a deadline of minutes that only stops a hang.
"""

from __future__ import annotations

import json
import os
import re
import select
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


DEADLINE_S = 600.0  # bounds a hang only: every wait below ends on the state it waits for


def _unavailable(why: str):
    if os.environ.get("RTSEG_REQUIRE_XVFB"):
        pytest.fail(f"{why} (RTSEG_REQUIRE_XVFB is set)")
    pytest.skip(why)


def _xvfb(screen: str):
    """An Xvfb screen on the display number it picks itself (-displayfd: it writes the number once
    it accepts clients), so that no other X server, of this run or another, is ever in the way."""
    if not (shutil.which("Xvfb") and shutil.which("xdotool")):
        _unavailable("Xvfb or xdotool not installed (apt-get install xvfb xdotool)")
    read, write = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", f"{screen}x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(write,))
    os.close(write)
    number, deadline = b"", time.monotonic() + DEADLINE_S
    try:
        while not number.endswith(b"\n") and time.monotonic() < deadline:
            if select.select([read], [], [], 1.0)[0]:
                chunk = os.read(read, 64)
                if not chunk:  # Xvfb exited without a display
                    break
                number += chunk
    finally:
        os.close(read)
    if not number.strip().isdigit():
        proc.kill()
        proc.wait()
        _unavailable(f"Xvfb did not start (exit status {proc.returncode}, said {number!r})")
    try:
        yield f":{int(number)}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def display():
    yield from _xvfb("1024x768")


@pytest.fixture
def wide_display():  # room for the default 1280x720 window
    yield from _xvfb("1600x1000")


def xdotool(display: str, *args: str) -> str:
    return subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": display}, capture_output=True,
                          text=True, timeout=DEADLINE_S).stdout.strip()


def window_titled(display: str, pattern: str, proc: subprocess.Popen) -> tuple[str, str]:
    """Waits (xdotool search --sync) for the one window whose title matches ``pattern`` (a regex);
    its id and title. Fails when ``proc`` (rtseg, which owns the window) exits first."""
    search = subprocess.Popen(["xdotool", "search", "--sync", "--name", pattern], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, env={**os.environ, "DISPLAY": display})
    deadline = time.monotonic() + DEADLINE_S
    try:
        while True:
            try:
                found = search.communicate(timeout=0.5)[0].split()
                break
            except subprocess.TimeoutExpired:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"no window titled {pattern!r} (rtseg exit status {proc.poll()})") from None
    finally:
        if search.poll() is None:
            search.kill()
            search.wait()
    assert len(found) == 1, f"windows titled {pattern!r}: {found}"
    return found[0], xdotool(display, "getwindowname", found[0])


def records(path: Path) -> list[dict]:
    """The whole lines of a JSONL file being written (each ends with a newline; a line still being
    written is left for the next look)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().split("\n")[:-1] if line]


def geometry(display: str, window: str) -> tuple[int, int]:
    found = re.search(r"Geometry: (\d+)x(\d+)", xdotool(display, "getwindowgeometry", window))
    assert found, f"no geometry for window {window}"
    return int(found[1]), int(found[2])


def wait_for(condition, proc: subprocess.Popen | None = None, timeout: float = DEADLINE_S) -> None:
    """Until ``condition()`` holds; fails when ``proc`` (rtseg) exits first, or on a hang."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None and not condition():
            raise AssertionError(f"rtseg exited ({proc.returncode}) before the state waited for")
        if time.monotonic() > deadline:
            raise AssertionError(f"no such state within {timeout:.0f} s{state_of(proc)}")
        time.sleep(0.1)


def state_of(proc: subprocess.Popen | None) -> str:
    """What rtseg wrote so far (records, the last one's objects, its stderr): for a failure's message."""
    out = getattr(proc, "out", None)
    if out is None:
        return ""
    written = records(out)
    last = [(o["id"], o["prompt"]) for o in written[-1]["objects"]] if written else None
    return f"; {len(written)} records, the last one's objects {last}; stderr: {stderr_of(out)[-2000:]!r}"


def still_frames(folder: Path, image: np.ndarray, frames: int) -> Path:
    """A folder of ``frames`` frames, all ``image`` (links to one JPEG): a still scene that outlasts
    any test (which quits it)."""
    folder.mkdir()
    cv2.imwrite(str(folder / "00000.jpg"), image)
    for i in range(1, frames):
        (folder / f"{i:05d}.jpg").symlink_to("00000.jpg")
    return folder


def track_shown(display: str, frames: Path, out: Path, *options: str) -> subprocess.Popen:
    """``rtseg track --show`` on ``display``; its stderr goes to a file beside ``out`` (a pipe
    nobody reads could fill and stop it)."""
    with open(out.with_suffix(".stderr"), "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rtseg.cli", "track", str(frames), "--config", str(DEMO_CONFIG), "--show",
             "--save-json", str(out), "--quiet", *options],
            env={**os.environ, "DISPLAY": display}, stderr=err, text=True)
    proc.out = out  # type: ignore[attr-defined]  # for state_of
    return proc


def stderr_of(out: Path) -> str:
    return out.with_suffix(".stderr").read_text()


def quit_with(display: str, window: str, key: str, proc: subprocess.Popen) -> None:
    xdotool(display, "key", "--window", window, key)
    proc.wait(timeout=DEADLINE_S)


def test_click_adds_an_object_and_drag_adds_a_box(display, tmp_path):
    meta = json.loads((SHOWCASE / "objects.json").read_text())
    first = cv2.VideoCapture(str(SHOWCASE / "video.mp4")).read()[1]
    frames = still_frames(tmp_path / "frames", first, 20000)
    out = tmp_path / "t.jsonl"
    proc = track_shown(display, frames, out)
    try:
        window, _ = window_titled(display, r"^rtseg - .* \(640x480\)$", proc)  # a frame is on the screen
        assert geometry(display, window) == (640, 480)  # a frame that fits is shown as it is
        wait_for(lambda: len(records(out)) >= 3, proc)
        assert all(not r["objects"] for r in records(out))
        x, y = meta["objects"][0]["prompts"]["point"]
        xdotool(display, "mousemove", "--window", window, str(x), str(y), "click", "1")
        wait_for(lambda: any(r["objects"] for r in records(out)), proc)
        x1, y1, x2, y2 = meta["objects"][1]["prompts"]["box"]
        xdotool(display, "mousemove", "--window", window, str(x1 - 3), str(y1 - 3), "mousedown", "1")
        xdotool(display, "mousemove", "--window", window, str(x2 + 3), str(y2 + 3), "mouseup", "1")
        wait_for(lambda: any(len(r["objects"]) == 2 for r in records(out)), proc)
        two = next(r for r in records(out) if len(r["objects"]) == 2)
        # Right click: a negative point for the last object (the box), which is then chosen again.
        xdotool(display, "mousemove", "--window", window, "600", "20", "click", "3")
        wait_for(lambda: any("box" in o["prompt"] and "-600,20" in o["prompt"]
                             for r in records(out)[-3:] for o in r["objects"]), proc)
        # Space pauses: no new frames until it is pressed again. The title says after how many
        # frames; each is written, and no frame after them until space is pressed again.
        xdotool(display, "key", "--window", window, "space")
        _, title = window_titled(display, r"^rtseg - .* - paused after [0-9]+ frames$", proc)
        paused = int(re.search(r"paused after (\d+) frames$", title)[1])
        wait_for(lambda: len(records(out)) >= paused, proc)
        assert [r["index"] for r in records(out)] == list(range(paused))
        assert window_titled(display, r"paused after", proc)[1] == title  # still paused, after as many
        assert len(records(out)) == paused
        xdotool(display, "key", "--window", window, "space")
        window_titled(display, r"^rtseg - .* \(640x480\)$", proc)  # running again
        wait_for(lambda: len(records(out)) > paused + 2, proc)
        assert [r["index"] for r in records(out)[: paused + 3]] == list(range(paused + 3))  # none lost
        xdotool(display, "key", "--window", window, "r")  # reset: every object forgotten
        wait_for(lambda: not records(out)[-1]["objects"], proc)
        quit_with(display, window, "q", proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr_of(out)
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
                   timeout=DEADLINE_S)
    first = cv2.VideoCapture(str(folder / "sample" / "video.mp4")).read()[1]
    still = still_frames(folder / "frames", first, frames)
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


def test_a_1080p_source_is_shown_scaled_and_clicks_land_on_its_pixels(wide_display, tmp_path):
    display, source = wide_display, (1920, 1080)
    frames, meta, gt = still_sample(tmp_path, "1920x1080", 20000)
    out = tmp_path / "t.jsonl"
    proc = track_shown(display, frames, out)
    try:
        first = (1280, 720)  # the default output.window_size: the frame at 2/3, aspect kept
        window, _ = window_titled(display, r"^rtseg - .* \(1280x720 of 1920x1080\)$", proc)
        assert geometry(display, window) == first
        point = shown_at(*meta["objects"][0]["prompts"]["point"], first, source)
        xdotool(display, "mousemove", "--window", window, *map(str, point), "click", "1")
        wait_for(lambda: any(r["objects"] for r in records(out)), proc)
        # The user makes the window smaller: the next frames are scaled to it (1/2), and clicks follow
        # (once such a frame is on the screen: the title says so).
        xdotool(display, "windowsize", window, "960", "540")
        second = (960, 540)
        assert window_titled(display, r"^rtseg - .* \(960x540 of 1920x1080\)$", proc)[0] == window
        assert geometry(display, window) == second  # rtseg does not fight the user's size
        x1, y1, x2, y2 = meta["objects"][1]["prompts"]["box"]
        corner, far = shown_at(x1 - 6, y1 - 6, second, source), shown_at(x2 + 6, y2 + 6, second, source)
        xdotool(display, "mousemove", "--window", window, *map(str, corner), "mousedown", "1")
        xdotool(display, "mousemove", "--window", window, *map(str, far), "mouseup", "1")
        wait_for(lambda: any(len(r["objects"]) == 2 for r in records(out)), proc)
        negative = shown_at(1200, 1000, second, source)  # background: a negative point for the box
        xdotool(display, "mousemove", "--window", window, *map(str, negative), "click", "3")
        negative = source_of(*negative, second, source)
        wait_for(lambda: any(" -" in o["prompt"] for o in records(out)[-1]["objects"]), proc)
        assert geometry(display, window) == second  # still the user's size
        quit_with(display, window, "q", proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr_of(out)
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
    frames, meta, gt = still_sample(tmp_path, "3840x2160", 20000)
    out = tmp_path / "t.jsonl"
    proc = track_shown(display, frames, out, "--window-size", "1000x700")
    try:
        shown = (1000, 562)  # 1000x700 is the bound; the frame's aspect is kept (scales 3.84 and 3.84-3.85)
        window, _ = window_titled(display, r"^rtseg - .* \(1000x562 of 3840x2160\)$", proc)
        assert geometry(display, window) == shown
        wait_for(lambda: len(records(out)) >= 2, proc)
        point = shown_at(*meta["objects"][2]["prompts"]["point"], shown, source)  # the green star
        xdotool(display, "mousemove", "--window", window, *map(str, point), "click", "1")
        wait_for(lambda: any(r["objects"] for r in records(out)), proc)
        quit_with(display, window, "Escape", proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr_of(out)
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
    window.write(SimpleNamespace(overlay=overlay, image=np.zeros((source[1], source[0], 3), np.uint8), detections=None))
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


def test_the_title_says_what_is_shown_and_when_paused_after_how_many_frames():
    """No screen needed: the title's state (what the tests above wait for with xdotool)."""
    from types import SimpleNamespace

    from rtseg.output.window import Window

    window = Window(_Prompts("1280x720"), title="rtseg - clip")  # type: ignore[arg-type]
    assert window.state_title() == "rtseg - clip"  # nothing shown yet
    for size, shown in (((640, 480), "(640x480)"), ((1920, 1080), "(1280x720 of 1920x1080)")):
        frame = np.zeros((size[1], size[0], 3), np.uint8)
        window.write(SimpleNamespace(overlay=frame, image=frame, detections=None))
        window.shown = window.last
        assert window.state_title() == f"rtseg - clip {shown}"
    window.taken, window.paused = 57, True
    assert window.state_title() == "rtseg - clip (1280x720 of 1920x1080) - paused after 57 frames"


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
