"""Bad input: a one-line error naming the problem, exit code 2, no traceback, nothing lost."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys

import cv2
import pytest

from rtseg.cli import main

import conftest
from conftest import DEMO_CONFIG, ROOT, SHOWCASE

VIDEO = str(SHOWCASE / "video.mp4")


def run_main(capsys, *argv):
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return code, err


def assert_one_line_error(code, err, *words):
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize("argv, words", [
    (["track", "no-such-file.mp4", "--point", "5,5"], ["source not found", "no-such-file.mp4"]),
    (["track", "7", "--point", "5,5"], ["cannot open camera 7"]),
    (["track", VIDEO, "--point", "5"], ["bad point", "'5'"]),
    (["track", VIDEO, "--box", "1,2,3"], ["bad box"]),
    (["track", VIDEO, "--point", "9999,5"], ["outside the 640x480 frame"]),
    (["track", VIDEO, "--box", "700,500,800,600"], ["outside the 640x480 frame"]),
    (["track", VIDEO, "--box", "50,50,10,10"], ["X2 > X1"]),
    (["track", VIDEO, "--neg", "5,5", "--point", "6,6"], ["--neg 5,5 comes before"]),
    (["track", VIDEO, "--text", "  "], ["empty --text"]),
    (["track", VIDEO, "--no-show"], ["nothing to track"]),
    (["track", VIDEO, "--point", "5,5", "--model", "no/such/model.pt"], ["model not found"]),
    (["track", VIDEO, "--point", "5,5", "--config", "no-such.yaml"], ["cannot read config"]),
    (["track", VIDEO, "--point", "5,5", "--imgsz", "100"], ["multiple of 32"]),
    (["eval", "no-such-dir", str(SHOWCASE / "gt")], ["not a folder"]),
    (["track", VIDEO, "--point", "5,5", "--clip-model", "NoSuchNet"], []),  # no text prompt: CLIP never loaded
])
def test_bad_arguments(capsys, argv, words):
    code, err = run_main(capsys, *argv, *(["--config", DEMO_CONFIG, "--max-frames", "1", "--quiet"]
                                         if argv[0] == "track" and "--config" not in argv else []))
    if not words:
        assert code == 0, err
        return
    assert_one_line_error(code, err, *words)


def test_unknown_config_key(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(DEMO_CONFIG.read_text() + "tracker:\n  jump: 3\n")
    assert_one_line_error(*run_main(capsys, "track", VIDEO, "--point", "5,5", "--config", cfg), "unknown key 'jump'")


def test_argparse_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["track"])
    assert exc.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_not_a_video(tmp_path, capsys):
    fake = tmp_path / "clip.mp4"
    fake.write_text("this is not a video\n")
    assert_one_line_error(*run_main(capsys, "track", fake, "--point", "5,5"), "not a video")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(*run_main(capsys, "track", empty, "--point", "5,5"), "no images in folder")


def test_missing_weights_say_what_and_where(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RTSEG_OFFLINE", "1")
    code, err = run_main(capsys, "track", VIDEO, "--point", "5,5", "--model", "fastsam-x", "--max-frames", "1")
    assert_one_line_error(code, err, "FastSAM-x.pt", "--model")
    code, err = run_main(capsys, "track", VIDEO, "--text", "the red circle", "--config", DEMO_CONFIG,
                         "--clip-model", "ViT-B-32:laion2b_s34b_b79k", "--max-frames", "1")
    assert_one_line_error(code, err, "ViT-B-32:laion2b_s34b_b79k", "--clip-model")
    code, err = run_main(capsys, "track", VIDEO, "--text", "the red circle", "--config", DEMO_CONFIG,
                         "--clip-model", "rtseg-shapes-clip:missing/weights.pt", "--max-frames", "1")
    assert_one_line_error(code, err, "missing/weights.pt")


def test_unwritable_outputs(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for option in ("--output", "--save-json"):
        code, err = run_main(capsys, "track", VIDEO, "--point", "5,5", option, blocker / "out.x")
        assert_one_line_error(code, err, "cannot")
    assert_one_line_error(*run_main(capsys, "track", VIDEO, "--point", "5,5", "--save-masks", blocker / "m"), "cannot")
    assert_one_line_error(*run_main(capsys, "track", VIDEO, "--point", "5,5", "--output", tmp_path), "is a folder")


def _video_frames(path):
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    return n


def _truncated_copy(tmp_path, frames=60):
    """A video whose second half is cut off mid-file."""
    src = tmp_path / "full.mp4"
    cap, out = cv2.VideoCapture(VIDEO), None
    for _ in range(frames):
        image = cap.read()[1]
        if out is None:
            out = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"mp4v"), 30, image.shape[1::-1])
        out.write(image)
    out.release()
    data = src.read_bytes()
    # mp4v from OpenCV writes the index (moov) at the end: keep it, zero a block of frame data.
    bad = tmp_path / "broken.mp4"
    cut = bytearray(data)
    start = len(data) // 2
    cut[start:start + len(data) // 6] = bytes(len(data) // 6)
    bad.write_bytes(bytes(cut))
    return bad


def test_corrupt_frames_mid_stream_keep_what_was_written(tmp_path, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    cap = cv2.VideoCapture(VIDEO)
    for i in range(6):
        cv2.imwrite(str(folder / f"{i:03d}.png"), cap.read()[1])
    (folder / "003.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "out"
    code, err = run_main(capsys, "track", folder, "--config", DEMO_CONFIG, "--point", "320,240", "--output",
                         out / "o.mp4", "--save-masks", out / "m", "--save-json", out / "t.jsonl", "--quiet")
    assert_one_line_error(code, err, "003.png")
    assert sorted(p.name for p in (out / "m").iterdir()) == ["00000.png", "00001.png", "00002.png"]
    assert [json.loads(line)["index"] for line in (out / "t.jsonl").read_text().splitlines()] == [0, 1, 2]
    assert _video_frames(out / "o.mp4") == 3


def test_damaged_video_mid_file(tmp_path):
    bad = _truncated_copy(tmp_path)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "rtseg.cli", "track", str(bad), "--config", str(DEMO_CONFIG),
                           "--point", "320,240", "--output", str(out / "o.mp4"), "--save-masks", str(out / "m"),
                           "--quiet"], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "cannot be decoded" in proc.stderr and "of 60" in proc.stderr
    n = len(list((out / "m").glob("*.png")))
    assert 10 <= n < 60 and _video_frames(out / "o.mp4") == n


wait_for = functools.partial(conftest.wait_until, timeout=600.0)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_leaves_playable_video_and_every_record(tmp_path, sig, code):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtseg.cli", "track", VIDEO, "--config", str(DEMO_CONFIG), "--prompts",
         str(SHOWCASE / "prompts.yaml"), "--output", str(out / "o.mp4"), "--save-masks", str(out / "m"),
         "--save-json", str(out / "t.jsonl"), "--no-show", "--quiet"],
        stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))  # as a background job of a shell

    def twenty_records() -> bool:
        assert proc.poll() is None, f"ended (exit {proc.returncode}) before 20 records: {proc.stderr.read()}"
        path = out / "t.jsonl"
        return path.exists() and path.read_bytes().count(b"\n") >= 20  # whole lines only

    try:
        wait_for(twenty_records, "20 JSON lines")
        assert proc.poll() is None  # still mid-run (the sample has 300 frames)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=600)
    finally:
        proc.kill()
        proc.wait(timeout=600)
    assert proc.returncode == code, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    records = [json.loads(line) for line in (out / "t.jsonl").read_text().splitlines()]
    n = len(records)
    assert 20 <= n < 300
    assert [r["index"] for r in records] == list(range(n))
    masks = sorted((out / "m").glob("*.png"))
    assert n <= len(masks) <= n + 1  # the frame in flight may have its mask but not its line yet
    assert abs(_video_frames(out / "o.mp4") - n) <= 1


def test_missing_clip_weights_in_a_real_process(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "rtseg.cli", "track", VIDEO, "--config", str(DEMO_CONFIG),
                           "--text", "the red star", "--clip-model", "ViT-B-32:laion2b_s34b_b79k"],
                          capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "RTSEG_OFFLINE": "1"},
                          timeout=600)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "ViT-B-32" in proc.stderr, proc.stderr


def test_python_module_entry_point_reports_bad_input():
    proc = subprocess.run([sys.executable, "-m", "rtseg.cli", "track", "nope.mp4", "--point", "1,1"],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 2 and proc.stderr.strip() == "rtseg: error: source not found: nope.mp4"
