"""``rtseg batch`` on a real local Ray: many videos, a corrupt one, a killed worker, Ctrl-C and resume,
bad manifests. Masks must be those of ``rtseg track``, bit for bit."""

from __future__ import annotations

import csv
import hashlib
import functools
import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rtseg.batch.manifest import read_manifest
from rtseg.cli import main
from rtseg.errors import RtsegError

import conftest
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


HANG_S = 600.0  # a deadline that only bounds a hang: nothing in these tests is decided on the clock


wait_for = functools.partial(conftest.wait_until, timeout=HANG_S)


def session_pids(sid: int) -> list[int]:
    """The live processes of session ``sid`` (zombies are dead)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[3]) == sid and fields[0] not in "ZX":
            pids.append(int(stat.parent.name))
    return pids


def read_lines(stream, lines: list[str]) -> None:
    for line in stream:
        lines.append(line)


class Batch:
    """``rtseg batch`` in a session of its own (Ray's processes start in it too), its stdout and stderr
    read as they come. Leaving the ``with`` block kills whatever is left of the session and waits until
    it is gone: a failed test leaves no Ray on the machine, and nothing writes under ``--out`` after."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "rtseg.cli", "batch", *args, "--config", str(DEMO_CONFIG)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.readers = [threading.Thread(target=read_lines, args=(self.proc.stdout, self.stdout), daemon=True),
                        threading.Thread(target=read_lines, args=(self.proc.stderr, self.stderr), daemon=True)]
        for reader in self.readers:
            reader.start()

    def __enter__(self) -> "Batch":
        return self

    def __exit__(self, *exc) -> None:
        self.end_session()
        self.proc.wait(timeout=HANG_S)

    def end_session(self) -> None:
        """SIGKILL what is left of the session until nothing is."""
        def gone() -> bool:
            pids = session_pids(self.proc.pid)
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return not pids

        wait_for(gone, "the batch's processes to end")

    def running(self) -> bool:
        """True while it runs; it ending early fails the test, with its stderr."""
        assert self.proc.poll() is None, f"exit {self.proc.returncode}: {''.join(self.stderr)}"
        return True

    def wait_line(self, pattern: str) -> None:
        """Wait for a line of stderr that matches ``pattern`` (while the batch runs)."""
        wait_for(lambda: self.running() and any(re.match(pattern, line) for line in list(self.stderr)),
                 f"a line {pattern!r} on stderr")

    def finish(self) -> tuple[int, str, str]:
        """Exit code, stdout and stderr, once it has ended (and what it left of Ray with it)."""
        code = self.proc.wait(timeout=HANG_S)
        self.end_session()  # Ray's processes hold its stdout and stderr open
        for reader in self.readers:
            reader.join(timeout=HANG_S)
            assert not reader.is_alive()
        return code, "".join(self.stdout), "".join(self.stderr)


def summary(out: Path) -> dict[str, dict]:
    with open(out / "summary.csv") as f:
        return {r["id"]: r for r in csv.DictReader(f)}


def test_six_videos_two_workers_one_corrupt(tmp_path):
    videos = make_videos(tmp_path, [("occlusion", 1), ("occlusion", 2), ("crossing", 3), ("fast", 4), ("exit", 5)])
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes((videos[0] / "video.mp4").read_bytes()[:3000])  # a header, then nothing
    manifest = write_manifest(tmp_path / "videos.jsonl", videos,
                              [{"source": str(corrupt), "objects": [{"text": "the red star"}], "id": "corrupt"}])
    with Batch(str(manifest), "--out", str(tmp_path / "out"), "--workers", "2", "--mcap") as run:
        code, stdout, stderr = run.finish()
    assert code == 1, stderr  # one failed
    rows = summary(tmp_path / "out")
    assert [r["status"] for r in rows.values()] == ["done"] * 5 + ["failed"]
    assert len({r["worker"] for r in rows.values() if r["status"] == "done"}) == 2  # both workers took videos
    track = subprocess.run([sys.executable, "-m", "rtseg.cli", "track", str(corrupt), "--text", "the red star",
                            "--config", str(DEMO_CONFIG), "--quiet"], capture_output=True, text=True,
                           timeout=HANG_S)
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
        # --mcap: a ROS 2 bag per video, its detections those of the video's JSON lines
        from rtseg.ros2.bag import recover
        from rtseg.ros2.types import DETECTIONS_2D, deserialize

        lines = (tmp_path / "out" / video.name / "tracks.jsonl").read_text().splitlines()
        bag = [deserialize(d, DETECTIONS_2D) for t, _, d in recover(tmp_path / "out" / video.name / "run.mcap")
               if t == "/rtseg/detections"]
        assert [[d.id for d in m.detections] for m in bag] == [[str(o["id"]) for o in json.loads(line)["objects"]]
                                                              for line in lines]


def worker_pid(out: Path, vid: str, frames: int = 0) -> int | None:
    """The pid of the worker on video ``vid`` once it has written ``frames`` masks (None before, and
    once the video is finished: its ``worker.json`` is removed before the folder is renamed)."""
    partial = out / f".{vid}.partial"
    try:
        if len(list((partial / "masks").glob("*.png"))) < frames:
            return None
        return json.loads((partial / "worker.json").read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None


def kill_mid_video(out: Path, vid: str, pid: int) -> None:
    """SIGKILL worker ``pid``, checked to be still on video ``vid``: stopped first, so that what is
    checked is where the kill finds it."""
    def stopped() -> bool:  # every thread of it
        return all(stat.read_text().rsplit(")", 1)[1].split()[0] in "Tt"
                   for stat in Path(f"/proc/{pid}/task").glob("*/stat"))

    os.kill(pid, signal.SIGSTOP)
    try:
        wait_for(stopped, f"worker {pid} to stop")
        assert worker_pid(out, vid) == pid, f"worker {pid} is no longer on {vid}"
    finally:
        os.kill(pid, signal.SIGKILL)


def test_killed_worker_is_restarted_and_a_video_that_always_kills_it_fails(tmp_path):
    videos = make_videos(tmp_path, [("occlusion", 1), ("crossing", 2)], frames=60)
    out = tmp_path / "out"
    first, second = videos[0].name, videos[1].name
    pids: list[int] = []

    def working(vid: str, frames: int) -> bool:
        """A worker not killed yet is on ``vid`` with ``frames`` masks written: its pid goes to ``pids``."""
        pid = worker_pid(out, vid, frames)
        if pid is None or pid in pids:  # a killed worker's worker.json stays until the retry starts over
            return False
        pids.append(pid)
        return True

    with Batch(str(write_manifest(tmp_path / "v.jsonl", videos)), "--out", str(out), "--workers", "1",
               "--max-retries", "1") as run:
        wait_for(lambda: run.running() and working(first, 5), f"a worker on {first}")
        kill_mid_video(out, first, pids[-1])  # once: retried, then done
        wait_for(lambda: run.running() and working(second, 3), f"a worker on {second}")
        kill_mid_video(out, second, pids[-1])  # every time it tries the second video
        wait_for(lambda: run.running() and working(second, 3), f"the retry of {second}")
        kill_mid_video(out, second, pids[-1])
        code, _, stderr = run.finish()
    assert code == 1, stderr
    rows = summary(out)
    assert rows[first]["status"] == "done" and int(rows[first]["frames"]) == 60
    assert rows[first]["worker"].rsplit(":", 1)[1] == str(pids[1])  # by the restarted worker, which then
    assert rows[second]["status"] == "failed" and "died 2 times" in rows[second]["error"]  # took the second


def test_ctrl_c_keeps_finished_videos_and_resume_skips_them(tmp_path):
    videos = make_videos(tmp_path, [("occlusion", 1), ("crossing", 2), ("fast", 3), ("exit", 4)], frames=30)
    manifest, out = write_manifest(tmp_path / "v.jsonl", videos), tmp_path / "out"
    with Batch(str(manifest), "--out", str(out), "--workers", "1") as run:
        run.wait_line(r"\[2/4\] ")  # the driver has recorded two videos
        run.proc.send_signal(signal.SIGINT)
        code, _, stderr = run.finish()
    # Nothing of that run is left to write under out: what is there now is what resume finds.
    assert code == 130, stderr
    told = re.findall(r"^\[(\d)/4\] (\S+): (\w+)", stderr, re.M)
    assert [(n, status) for n, _, status in told[:2]] == [("1", "done"), ("2", "done")], stderr
    first = summary(out)
    done = {k for k, r in first.items() if r["status"] == "done"}
    kept = {v.name for v in videos if (out / v.name / "done.json").is_file()}
    # Told done before Ctrl-C, so done in the summary; done in the summary, so whole on disk. (A video
    # that its worker finished after Ctrl-C, before Ray was shut down, is kept, and "not run" here.)
    assert {vid for _, vid, _ in told[:2]} <= done <= kept
    assert all(r["status"] == "not run" for k, r in first.items() if k not in done)
    assert all((out / k / "masks").is_dir() for k in kept)
    with Batch(str(manifest), "--out", str(out), "--workers", "1") as again:
        code, _, stderr = again.finish()
    assert code == 0, stderr
    rows = summary(out)
    assert {k for k, r in rows.items() if r["status"] == "skipped"} == kept
    assert {k for k, r in rows.items() if r["status"] == "done"} == {v.name for v in videos} - kept
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
