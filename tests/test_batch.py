"""``rtseg batch`` on a real local Ray: many videos, a corrupt one, a killed worker, Ctrl-C and resume,
bad manifests. Masks must be those of ``rtseg track``, bit for bit."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rtseg.batch.manifest import read_manifest
from rtseg.cli import main
from rtseg.errors import RtsegError

from conftest import DEMO_CONFIG

ray = pytest.importorskip("ray", reason="pip install -e '.[batch]'")


def make_videos(folder: Path, specs: list[tuple[str, int]], frames: int = 16) -> list[Path]:
    from rtseg.synth.video import write_video

    out = []
    for scenario, seed in specs:
        video = folder / f"{scenario}-{seed}"
        write_video(video, scenario, seed, frames)
        out.append(video)
    return out


def points(video: Path) -> list:
    return [{"points": [o["prompts"]["point"]]} for o in json.loads((video / "objects.json").read_text())["objects"]]


def write_manifest(path: Path, videos: list[Path], extra: list[dict] = ()) -> Path:
    rows = [{"source": str(v / "video.mp4"), "objects": points(v), "gt": str(v / "gt"), "id": v.name} for v in videos]
    path.write_text("".join(json.dumps(r) + "\n" for r in [*rows, *extra]))
    return path


def masks_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for png in sorted(folder.glob("*.png")):
        h.update(png.name.encode() + png.read_bytes())
    return h.hexdigest()


def batch(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rtseg.cli", "batch", *args, "--config", str(DEMO_CONFIG)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def summary(out: Path) -> dict[str, dict]:
    with open(out / "summary.csv") as f:
        return {r["id"]: r for r in csv.DictReader(f)}


def test_six_videos_two_workers_one_corrupt(tmp_path):
    videos = make_videos(tmp_path, [("occlusion", 1), ("occlusion", 2), ("crossing", 3), ("fast", 4), ("exit", 5)])
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes((videos[0] / "video.mp4").read_bytes()[:3000])  # a header, then nothing
    manifest = write_manifest(tmp_path / "videos.jsonl", videos,
                              [{"source": str(corrupt), "objects": [{"text": "the red star"}], "id": "corrupt"}])
    proc = batch(str(manifest), "--out", str(tmp_path / "out"), "--workers", "2")
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 1, stderr  # one failed
    rows = summary(tmp_path / "out")
    assert [r["status"] for r in rows.values()] == ["done"] * 5 + ["failed"]
    assert len({r["worker"] for r in rows.values() if r["status"] == "done"}) == 2  # both workers took videos
    track = subprocess.run([sys.executable, "-m", "rtseg.cli", "track", str(corrupt), "--text", "the red star",
                            "--config", str(DEMO_CONFIG), "--quiet"], capture_output=True, text=True)
    assert rows["corrupt"]["error"] in track.stderr  # the same one-line message as rtseg track
    assert "cannot" in rows["corrupt"]["error"] and (tmp_path / "out/corrupt.failed/error.log").is_file()
    assert not (tmp_path / "out/corrupt").exists()
    assert "| corrupt | failed |" in stdout
    for video in videos:  # bit for bit what rtseg track writes, and scored against the ground truth
        args = [a for o in points(video) for a in ("--point", "{},{}".format(*o["points"][0]))]
        assert main(["track", str(video / "video.mp4"), "--config", str(DEMO_CONFIG), *args, "--quiet",
                     "--save-masks", str(tmp_path / "track" / video.name)]) == 0
        assert masks_hash(tmp_path / "out" / video.name / "masks") == masks_hash(tmp_path / "track" / video.name)
        assert 0.5 < float(rows[video.name]["mean_j"]) <= 1.0
        assert (tmp_path / "out" / video.name / "scores.json").is_file()


def wait_for(predicate, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def partial_pid(out: Path, vid: str, frames: int) -> int | None:
    """The pid of the worker on video ``vid`` once it has written ``frames`` masks."""
    partial = out / f".{vid}.partial"
    try:
        if len(list((partial / "masks").glob("*.png"))) < frames:
            return None
        return json.loads((partial / "worker.json").read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None


def test_killed_worker_is_restarted_and_a_video_that_always_kills_it_fails(tmp_path):
    videos = make_videos(tmp_path, [("occlusion", 1), ("crossing", 2)], frames=60)
    out = tmp_path / "out"
    proc = batch(str(write_manifest(tmp_path / "v.jsonl", videos)), "--out", str(out), "--workers", "1",
                 "--max-retries", "1")
    try:
        first, second = videos[0].name, videos[1].name
        wait_for(lambda: partial_pid(out, first, 5) is not None)
        os.kill(partial_pid(out, first, 5), signal.SIGKILL)  # once: retried, then done
        wait_for(lambda: partial_pid(out, second, 3) is not None)
        killed = partial_pid(out, second, 3)
        os.kill(killed, signal.SIGKILL)  # every time it tries the second video
        wait_for(lambda: (partial_pid(out, second, 3) or killed) != killed)
        os.kill(partial_pid(out, second, 3), signal.SIGKILL)
        proc.communicate(timeout=300)
    finally:
        proc.kill()
    rows = summary(out)
    assert rows[first]["status"] == "done" and int(rows[first]["frames"]) == 60
    assert rows[second]["status"] == "failed" and "died 2 times" in rows[second]["error"]
    assert proc.returncode == 1


def test_ctrl_c_keeps_finished_videos_and_resume_skips_them(tmp_path):
    videos = make_videos(tmp_path, [("occlusion", 1), ("crossing", 2), ("fast", 3), ("exit", 4)], frames=30)
    manifest, out = write_manifest(tmp_path / "v.jsonl", videos), tmp_path / "out"
    proc = batch(str(manifest), "--out", str(out), "--workers", "1")
    try:
        wait_for(lambda: sum((out / v.name / "done.json").is_file() for v in videos) >= 2)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    first = summary(out)
    done = [k for k, r in first.items() if r["status"] == "done"]
    assert len(done) >= 2 and all((out / k / "masks").is_dir() for k in done)
    again = batch(str(manifest), "--out", str(out), "--workers", "1")
    _, stderr = again.communicate(timeout=600)
    assert again.returncode == 0, stderr
    rows = summary(out)
    assert {k for k, r in rows.items() if r["status"] == "skipped"} == set(done)
    assert all(r["status"] in ("done", "skipped") for r in rows.values())
    assert not list(out.glob(".*.partial"))  # nothing half-written is left


@pytest.mark.parametrize("content, words", [
    ('{"source": "a.mp4", "objects": [{"text": "x"}]}\n{"source": "b.mp4"}\n', ["row 2", "no prompts"]),
    ('{"source": "a.mp4", "objects": [{"points": "nope"}]}\n', ["row 1", "column objects", "malformed points"]),
    ('{"source": "a.mp4", "colour": "red", "everything": true}\n', ["row 1", "unknown column 'colour'"]),
    ('{"objects": [{"text": "x"}]}\n', ["row 1", "column source"]),
    ("not json\n", ["row 1", "not valid JSON"]),
])
def test_bad_manifest_rows_are_named(tmp_path, capsys, content, words):
    path = tmp_path / "m.jsonl"
    path.write_text(content)
    assert main(["batch", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and all(w in err for w in words), err
    assert not (tmp_path / "out").exists()  # nothing started


def test_csv_manifest_and_sources_on_the_command_line(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text('source,prompts,gt,id\nv1.mp4,"[{box: [1, 2, 30, 40]}]",gt1,\nv2.mp4,everything,,,\n')
    with pytest.raises(RtsegError, match="row 2: more values than columns"):
        read_manifest(path)
    path.write_text('source,prompts,gt,id\nv1.mp4,"[{box: [1, 2, 30, 40]}]",gt1,\nv1.mp4,everything,,\n')
    jobs = read_manifest(path)
    assert [j.id for j in jobs] == ["v1", "v1-2"] and str(jobs[0].prompts[0]) == "box 1,2,30,40"
    assert jobs[0].gt == str(tmp_path / "gt1") and jobs[1].everything


def test_without_ray_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails
    assert main(["batch", "a.mp4", "--text", "x", "--out", str(tmp_path)]) == 2
    assert "pip install -e '.[batch]'" in capsys.readouterr().err
