"""Outputs on a full disk, and a run killed with SIGKILL: what is there stays whole.

A full disk ends the run with one line naming "disk full" and the path, exit 2; every mask PNG and
JSON line already written is whole, and the overlay video is finalised while there is still room for
its index. The disk is a small tmpfs mounted for the test (as root, like CI); where mounting is not
allowed, those tests are skipped.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv

from rtseg.errors import RtsegError
from rtseg.output import sinks
from rtseg.output.png import read_index_png
from rtseg.session import FrameResult

import conftest
from conftest import DEMO_CONFIG, SHOWCASE

VIDEO = SHOWCASE / "video.mp4"
PROMPTS = ["--prompts", str(SHOWCASE / "prompts.yaml")]


@pytest.fixture
def small_disk(tmp_path):
    """``small_disk(size)``: a tmpfs of ``size`` ("2m") mounted under tmp_path, unmounted after the test."""
    mounts: list[Path] = []

    def mount(size: str) -> Path:
        folder = tmp_path / f"disk{len(mounts)}"
        folder.mkdir()
        try:
            proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                                  capture_output=True, text=True)
        except FileNotFoundError:
            pytest.skip("no mount command: cannot make a small filesystem to fill")
        if proc.returncode:
            pytest.skip(f"cannot mount a tmpfs to fill (needs root): {proc.stderr.strip()}")
        mounts.append(folder)
        return folder

    yield mount
    for folder in mounts:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(disk: Path, leave: int) -> None:
    """Fill ``disk`` up to ``leave`` free bytes."""
    (disk / "filler").write_bytes(bytes(max(shutil.disk_usage(disk).free - leave, 0)))


def check_whole(out: Path) -> tuple[list[dict], list[Path]]:
    """The JSON records and mask files under ``out``, after checking each is whole; no temporary file
    a reader of the folder could take for a mask."""
    text = (out / "t.jsonl").read_text() if (out / "t.jsonl").exists() else ""
    assert text == "" or text.endswith("\n"), "the JSON lines file ends in half a line"
    records = [json.loads(line) for line in text.splitlines()]
    assert [r["index"] for r in records] == list(range(len(records)))
    masks = sorted((out / "m").glob("*.png")) if (out / "m").exists() else []
    assert [p.name for p in masks] == [f"{i:05d}.png" for i in range(len(masks))]
    for p in masks:
        read_index_png(p)
    return records, masks


def video_frames(path: Path) -> int | None:
    """Frames OpenCV reads from ``path``; None when it cannot open it."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        return None
    n = 0
    while cap.read()[0]:
        n += 1
    return n


def mp4_boxes(path: Path) -> list[str]:
    """The top-level boxes of an mp4 (an mp4 without ``moov``, its index, cannot be played)."""
    data, at, names = path.read_bytes(), 0, []
    while at + 8 <= len(data):
        size, name = struct.unpack(">I4s", data[at:at + 8])
        names.append(name.decode("latin-1"))
        size = struct.unpack(">Q", data[at + 8:at + 16])[0] if size == 1 else size
        if size < 8:
            break
        at += size
    return names


def track(out: Path, *extra: str, masks: bool = True) -> subprocess.CompletedProcess:
    """``rtseg track`` on the sample in a process of its own, writing JSON lines (and masks) under ``out``."""
    outputs = ["--save-json", str(out / "t.jsonl"), *(["--save-masks", str(out / "m")] if masks else [])]
    return subprocess.run([sys.executable, "-m", "rtseg.cli", "track", str(VIDEO), "--config", str(DEMO_CONFIG),
                           *PROMPTS, "--quiet", *outputs, *extra], capture_output=True, text=True, timeout=600)


def test_disk_full_with_a_video_stops_while_the_video_can_be_finalised(small_disk):
    disk = small_disk("4m")
    # A 640x480 frame, 1 MiB and the index must stay free for the video: leave room for a few frames more.
    fill(disk, (1 << 20) + 640 * 480 * 3 + 150_000)
    proc = track(disk, "--output", str(disk / "o.mp4"))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0] == f"rtseg: error: disk full: cannot write {disk / 'o.mp4'}"
    records, masks = check_whole(disk)
    assert 3 <= len(records) == len(masks) < 100
    # playable, every frame up to the stop (configs/demo.yaml runs the model on the CPU: the writers take turns)
    assert video_frames(disk / "o.mp4") == len(records)
    assert "moov" in mp4_boxes(disk / "o.mp4")


def test_disk_full_masks_and_json_stay_whole(small_disk, tmp_path):
    disk = small_disk("1m")
    fill(disk, 120_000)
    proc = track(disk)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("rtseg: error: disk full: cannot write ")
    records, masks = check_whole(disk)
    assert lines[0].endswith((str(disk / "t.jsonl"), str(disk / "m" / f"{len(masks):05d}.png")))
    assert len(records) <= len(masks) <= len(records) + 1  # a frame's mask is written before its line
    assert sorted(os.listdir(disk / "m")) == [p.name for p in masks]  # nothing temporary left behind


def test_disk_full_json_is_cut_back_to_its_last_whole_line(small_disk):
    disk = small_disk("64k")
    proc = track(disk, masks=False)
    assert proc.returncode == 2 and proc.stderr.strip() == f"rtseg: error: disk full: cannot write {disk / 't.jsonl'}"
    records, _ = check_whole(disk)
    assert len(records) >= 5 and (disk / "t.jsonl").stat().st_size > 60_000  # cut back, not emptied


class _FullAfter:
    """A file whose next write stores ``keep`` bytes, then finds the disk full."""

    def __init__(self, file, keep: int, code: int = errno.ENOSPC) -> None:
        self.file, self.keep, self.code = file, keep, code

    def write(self, data) -> int:
        if self.keep <= 0:
            raise OSError(self.code, os.strerror(self.code))
        n = self.file.write(data[:self.keep])
        self.keep -= n
        return n

    def fileno(self) -> int:
        return self.file.fileno()

    def tell(self) -> int:
        return self.file.tell()


def _result(index: int) -> FrameResult:
    mask = np.zeros((1, 48, 64), bool)
    mask[0, 10:30, 5:40] = True
    dets = sv.Detections(xyxy=np.array([[5.0, 10, 40, 30]]), mask=mask, tracker_id=np.array([1]))
    return FrameResult(index, index / 30, np.zeros((48, 64, 3), np.uint8), dets)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_jsonl_sink_never_leaves_half_a_line(tmp_path, code):
    sink = sinks.JsonlSink(tmp_path / "t.jsonl")
    sink.open(sinks.StreamInfo("x", 30.0, False))
    sink.write(_result(0))
    first = (tmp_path / "t.jsonl").read_bytes()
    sink.file = _FullAfter(sink.file, keep=len(first) // 2, code=code)
    with pytest.raises(RtsegError, match=f"^disk full: cannot write {tmp_path / 't.jsonl'}$"):
        sink.write(_result(1))
    sink.file = sink.file.file
    sink.close()
    assert (tmp_path / "t.jsonl").read_bytes() == first


def test_mask_sink_removes_its_temporary_file_on_a_full_disk(tmp_path, monkeypatch):
    def half_written(path, labels):
        Path(path).write_bytes(b"\x89PNG\r\n\x1a\n")
        raise OSError(errno.ENOSPC, "No space left on device")

    sink = sinks.MaskSink(tmp_path / "m")
    sink.write(_result(0))
    monkeypatch.setattr(sinks, "write_index_png", half_written)
    with pytest.raises(RtsegError, match="^disk full: cannot write .*00001.png$"):
        sink.write(_result(1))
    assert os.listdir(tmp_path / "m") == ["00000.png"]


def test_other_write_errors_are_one_line_too():
    error = sinks.write_error(OSError(errno.EIO, "Input/output error"), Path("out/m/00003.png"))
    assert str(error) == "cannot write out/m/00003.png: Input/output error"


wait_for = functools.partial(conftest.wait_until, timeout=600.0)


def test_kill_9_leaves_whole_files_and_an_mp4_without_its_index(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "rtseg.cli", "track", str(VIDEO), "--config", str(DEMO_CONFIG),
                             *PROMPTS, "--output", str(out / "o.mp4"), "--save-masks", str(out / "m"),
                             "--save-json", str(out / "t.jsonl"), "--no-show", "--quiet"],
                            stderr=subprocess.PIPE, text=True)
    try:
        def twenty_masks() -> bool:
            assert proc.poll() is None, f"ended (exit {proc.returncode}) before 20 masks: {proc.stderr.read()}"
            # whole masks only: the folder also holds the temporary file of the mask being written
            return len(list((out / "m").glob("*.png"))) >= 20

        wait_for(twenty_masks, "20 whole masks")
        assert proc.poll() is None  # still mid-run (the sample has 300 frames)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=600)
    finally:
        proc.kill()
        proc.wait(timeout=600)
    assert proc.returncode == -signal.SIGKILL
    records, masks = check_whole(out)
    assert len(masks) >= 20 and len(records) <= len(masks) <= len(records) + 1  # the frame in flight may have
    # its mask and not yet its line
    others = sorted(set(os.listdir(out / "m")) - {p.name for p in masks})
    assert all(name.startswith(".") and name.endswith(".png.tmp") for name in others), others  # never *.png
    # The overlay mp4 is killed mid-write: OpenCV's writer puts the index (moov) at the end, on close,
    # so the file has its header and frame data but no index, and no player opens it.
    boxes = mp4_boxes(out / "o.mp4")
    assert boxes[:1] == ["ftyp"] and "mdat" in boxes and "moov" not in boxes, boxes
    assert video_frames(out / "o.mp4") is None
    print(f"killed after {len(masks)} masks, {len(records)} JSON lines; temporary files {others}; "
          f"mp4 boxes {boxes}")
