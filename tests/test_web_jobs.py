"""``rtseg web`` without a browser: uploads, prompts, the first-frame preview, a run with its outputs,
the webcam handler, the shared models, and the command line."""

from __future__ import annotations

import itertools
import json
import os
import socket
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from rtseg.capture.base import Source
from rtseg.cli import main
from rtseg.errors import RtsegError
from rtseg.output.png import read_index_png
from rtseg.prompt.prompts import parse_box
from rtseg.prompt.prompts import TextPrompt
from rtseg.web import inputs, jobs
from rtseg.web.inputs import WebState
from rtseg.web.models import LoadedModels, ModelBank, Settings, SharedSegmenter
from rtseg.web.guard import is_loopback
from rtseg.web.server import auth_pairs

from conftest import DEMO_CONFIG, SHOWCASE

VIDEO = SHOWCASE / "video.mp4"
OBJECTS = json.loads((SHOWCASE / "objects.json").read_text())["objects"]


@pytest.fixture(scope="module")
def bank(demo_config, segmenter, text_scorer):
    """The demo models, loaded once for the whole test session (conftest), as the server shares them."""
    return ModelBank({"demo": demo_config}, {"demo": LoadedModels(demo_config, segmenter.inner, text_scorer)})


@pytest.fixture
def settings(demo_config):
    m = demo_config.model
    return Settings("demo", m.imgsz, m.conf, m.iou)


@pytest.fixture(scope="module")
def short_video(tmp_path_factory):
    """The first 12 frames of the showcase, as a video file."""
    path = tmp_path_factory.mktemp("short") / "short.mp4"
    cap = cv2.VideoCapture(str(VIDEO))
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (640, 480))
    for _ in range(12):
        ok, image = cap.read()
        assert ok
        out.write(image)
    cap.release()
    out.release()
    return path


def loaded(path: Path) -> WebState:
    state = WebState()
    inputs.load_source(state, path, 2**30)
    return state


# -- uploads ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("content, limit, words", [
    (b"", 100, ["clip.mp4 is empty"]),
    (b"x" * 3000, 2000, ["clip.mp4 is 0.0 MB", "limit"]),
    (b"this is not a video\n", 100, ["cannot", "clip.mp4", "not a video"]),
])
def test_bad_uploads_say_why_without_server_paths(tmp_path, content, limit, words):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(content)
    state = WebState()
    with pytest.raises(RtsegError) as exc:
        inputs.load_source(state, bad, limit)
    for word in words:
        assert word in str(exc.value)
    assert str(tmp_path) not in str(exc.value)
    assert state.source is None


def test_upload_a_video_or_an_image(tmp_path):
    state = loaded(VIDEO)
    assert (state.frames, state.first.shape) == (300, (480, 640, 3))
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), state.first)
    state.prompts.append(TextPrompt("x"))
    message = inputs.load_source(state, image, 2**30)
    assert "frame.png" in message and "640x480" in message
    assert state.frames == 1 and state.prompts == []  # a new upload starts with no objects
    inputs.forget_source(state)
    assert state.source is None and state.first is None


# -- prompts ---------------------------------------------------------------------------------------

def test_prompts_are_checked_against_the_first_frame():
    state = loaded(VIDEO)
    with pytest.raises(RtsegError, match="outside the 640x480 frame"):
        inputs.click(state, 700, 10, "object")
    with pytest.raises(RtsegError, match="belongs to an object"):
        inputs.click(state, 10, 10, "negative")
    with pytest.raises(RtsegError, match="bad box"):
        parse_box("1,2,3")
    with pytest.raises(RtsegError, match="X2 > X1"):
        inputs.add(state, parse_box("50,50,10,10"))
    inputs.click(state, 5, 5, "box")
    with pytest.raises(RtsegError, match="differ in x and in y"):
        inputs.click(state, 5, 40, "box")
    with pytest.raises(RtsegError, match="type a text"):
        inputs.text_prompt("  ", None)
    with pytest.raises(RtsegError, match="not available: no CLIP"):
        inputs.text_prompt("the red star", "no CLIP model is configured")
    assert state.prompts == [] and inputs.describe(state) == "No objects yet."
    with pytest.raises(RtsegError, match="upload a video"):
        inputs.click(WebState(), 1, 1, "object")


def test_several_objects_then_reset():
    state = loaded(VIDEO)
    inputs.click(state, 77, 298, "object")
    inputs.click(state, 100, 100, "negative")
    inputs.add(state, parse_box("423,67,479,125"))
    inputs.add(state, inputs.text_prompt("the red cross", None))
    state.everything = True
    assert inputs.describe(state).splitlines() == [
        "1. point +77,298 -100,100", "2. box 423,67,479,125", "3. the red cross",
        "4. everything (each other segment gets its own id)"]
    version = state.version
    inputs.reset_prompts(state)
    assert (state.prompts, state.everything, state.version) == ([], False, version + 1)


def test_preview_shows_what_the_click_picks(bank, settings):
    state = loaded(VIDEO)
    plain = jobs.preview(state, bank, settings)
    assert plain.shape == (480, 640, 3)
    inputs.click(state, 77, 298, "object")
    shown = jobs.preview(state, bank, settings)
    changed = np.abs(shown.astype(int) - plain.astype(int)).sum(axis=2) > 0
    gt = read_index_png(SHOWCASE / "gt" / "00000.png") == 1
    assert changed[gt].mean() > 0.9  # the purple square is painted over ...
    assert changed[~gt].mean() < 0.05  # ... and little else (its label, the marker)


# -- a run -----------------------------------------------------------------------------------------

def test_run_writes_rtseg_track_outputs(bank, settings, short_video, tmp_path):
    state = loaded(short_video)
    x, y = OBJECTS[0]["prompts"]["point"]
    inputs.click(state, x, y, "object")
    inputs.add(state, parse_box("600,10,630,40"))  # background only: never seen
    progress: list[tuple[int, int | None]] = []
    result = jobs.run_job(state, bank, settings, tmp_path, lambda done, total: progress.append((done, total)))
    assert result.frames == 12 and progress[-1] == (12, 12) and len(progress) == 12
    assert result.table[0] == [1, f"point +{x},{y}", 12]
    assert result.table[1][0] == 2 and result.table[1][2] == 0
    with zipfile.ZipFile(result.masks_zip) as z:
        names = sorted(z.namelist())
    assert names == [f"masks/{i:05d}.png" for i in range(12)]
    records = [json.loads(line) for line in result.jsonl.read_text().splitlines()]
    assert [r["index"] for r in records] == list(range(12))
    assert records[0]["objects"][0]["id"] == 1
    cap = cv2.VideoCapture(str(result.video))
    frames = 0
    while cap.read()[0]:
        frames += 1
    cap.release()
    assert result.video.suffix == ".webm" and frames == 12
    assert result.video.is_relative_to(state.folder) and state.folder.parent == tmp_path

    first_run = result.video.parent
    again = jobs.run_job(state, bank, settings, tmp_path)
    assert not first_run.exists() and again.video.exists()  # a session keeps its latest run only
    jobs.remove_folder(state)
    assert not state.folder.exists()


def test_sessions_write_to_their_own_folders(bank, settings, short_video, tmp_path):
    a, b = loaded(short_video), loaded(short_video)
    inputs.click(a, 77, 298, "object")
    b.everything = True
    ra, rb = jobs.run_job(a, bank, settings, tmp_path), jobs.run_job(b, bank, settings, tmp_path)
    assert a.folder != b.folder and ra.video.exists() and rb.video.exists()
    assert len(ra.table) == 1 and len(rb.table) > 3


def test_run_needs_an_upload_and_an_object(bank, settings):
    with pytest.raises(RtsegError, match="upload a video"):
        jobs.run_job(WebState(), bank, settings, Path("unused"))
    with pytest.raises(RtsegError, match="nothing to track"):
        jobs.run_job(loaded(VIDEO), bank, settings, Path("unused"))


# -- webcam ----------------------------------------------------------------------------------------

def test_live_frames_follow_the_prompts(bank, settings):
    state = WebState()
    cap = cv2.VideoCapture(str(VIDEO))
    rgb = [cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB) for _ in range(3)]
    cap.release()
    assert jobs.live_frame(state, bank, settings, rgb[0]) is rgb[0]  # nothing to follow yet
    state.prompts.append(TextPrompt("the purple square"))
    state.changed()
    out = jobs.live_frame(state, bank, settings, rgb[0])
    session = state.live[2]
    assert out.shape == rgb[0].shape and not np.array_equal(out, rgb[0])
    jobs.live_frame(state, bank, settings, rgb[1])
    assert state.live[2] is session  # one Session along the stream
    gt = read_index_png(SHOWCASE / "gt" / "00001.png") == 1
    assert np.abs(out.astype(int) - rgb[0].astype(int)).sum(axis=2)[gt].mean() > 10
    message = inputs.use_frame(state, state.last_live)
    assert "640x480" in message and state.first.shape == (480, 640, 3) and state.source is None
    inputs.click(state, 77, 298, "object")
    jobs.live_frame(state, bank, settings, rgb[2])
    assert state.live[2] is not session  # new prompts, a new Session


def test_a_webcam_frame_over_max_pixels_is_refused_and_not_kept(bank, settings):
    """What a browser streams is its own choice: a frame over --max-pixels is an error, not a run."""
    state = WebState()
    small, big = np.zeros((48, 64, 3), np.uint8), np.zeros((49, 64, 3), np.uint8)
    assert jobs.live_frame(state, bank, settings, small, max_pixels=48 * 64) is small
    with pytest.raises(RtsegError, match="the webcam frame is 64x49, larger than this server's limit of 3072 pixels"):
        jobs.live_frame(state, bank, settings, big, max_pixels=48 * 64)
    assert state.last_live is small  # "Use this frame" still takes the last good one


# -- shared models ---------------------------------------------------------------------------------

def test_views_share_one_model_and_take_turns(bank, settings):
    models = bank.get("demo")
    config, a = models.for_settings(settings)
    _, b = models.for_settings(Settings("demo", 320, 0.5, 0.7))
    assert a.view.model is b.view.model is models.segmenter.model
    assert (b.view.kwargs["imgsz"], b.view.kwargs["conf"], b.view.kwargs["iou"]) == (320, 0.5, 0.7)
    assert config.model.imgsz == settings.imgsz and a.view.kwargs["imgsz"] == settings.imgsz

    inside, most = [0], [0]

    class Probe:
        device = "cpu"

        def __call__(self, image):
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            threading.Event().wait(0.02)
            inside[0] -= 1
            return image

    shared = [SharedSegmenter(models.segmenter, models.lock) for _ in range(4)]
    for s in shared:
        s.view = Probe()
    threads = [threading.Thread(target=s, args=(None,)) for s in shared for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1


def test_unknown_config_and_missing_clip(demo_config, segmenter):
    bank = ModelBank({"demo": demo_config}, {"demo": LoadedModels(demo_config, segmenter.inner, None, "broken")})
    with pytest.raises(RtsegError, match="unknown config 'x'"):
        bank.get("x")
    models = bank.get("demo")
    assert models.clip_error == "broken" and models.config.model.clip == ""


# -- command line ----------------------------------------------------------------------------------

@pytest.fixture
def server_tmp(tmp_path, monkeypatch):
    """``rtseg web`` run in this process keeps its work folder and uploads in the test's temp folder."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    return tmp_path


def one_line_error(capsys, argv, *words):
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], lines[0]


def test_web_without_gradio_names_the_extra(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio now raises ImportError
    monkeypatch.delitem(sys.modules, "rtseg.web.app", raising=False)
    monkeypatch.delattr("rtseg.web.app", raising=False)
    one_line_error(capsys, ["web", "--config", DEMO_CONFIG], "needs gradio", "pip install -e '.[web]'")


@pytest.mark.parametrize("argv, words", [
    (["--max-concurrent", "0"], ["--max-concurrent must be >= 1"]),
    (["--max-upload-mb", "0"], ["--max-upload-mb must be > 0"]),
    (["--model", "no/such/model.pt"], ["model not found"]),
    (["--keep-results", "0"], ["--keep-results must be > 0"]),
    (["--max-pixels", "-1"], ["--max-pixels must be > 0"]),
    (["--max-minutes", "0"], ["--max-minutes must be > 0"]),
    (["--max-frames", "0"], ["--max-frames must be > 0"]),
    (["--max-job-minutes", "-1"], ["--max-job-minutes must be > 0"]),
    (["--auth", "alice"], ["--auth #1: expected user:password"]),
])
def test_web_bad_options(capsys, server_tmp, argv, words):
    one_line_error(capsys, ["web", "--config", DEMO_CONFIG, *argv], *words)


def test_web_port_in_use(capsys, server_tmp):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        one_line_error(capsys, ["web", "--config", DEMO_CONFIG, "--port", port], f"cannot serve on 127.0.0.1:{port}")


def test_runs_and_streams_share_one_concurrency_limit(bank, tmp_path):
    """A run and a webcam stream both hold the model: they queue behind one limit (--max-concurrent)."""
    from rtseg.web.app import build

    page = build(bank, tmp_path, max_upload_mb=5, max_concurrent=2)
    limits = {fn.name: (fn.concurrency_limit, fn.concurrency_id) for fn in page.fns.values()}
    assert limits["on_run"] == limits["on_stream"] == (2, "model")


# -- uploads: by content, frame size and length limits (--max-pixels, --max-minutes) ---------------

def test_uploads_are_read_by_content_not_by_name(short_video, tmp_path):
    image = tmp_path / "frame.mp4"  # an image named like a video ...
    cv2.imwrite(str(tmp_path / "frame.png"), np.full((40, 60, 3), 90, np.uint8))
    (tmp_path / "frame.png").rename(image)
    state = loaded(image)
    assert (state.kind, state.frames, state.first.shape) == ("image", 1, (40, 60, 3))
    video = tmp_path / "clip.png"  # ... and a video named like an image
    video.write_bytes(short_video.read_bytes())
    state = loaded(video)
    assert (state.kind, state.frames, state.first.shape) == ("video", 12, (480, 640, 3))


def test_a_too_large_image_is_refused_before_it_is_decoded(tmp_path, monkeypatch):
    big = tmp_path / "big.png"
    assert cv2.imwrite(str(big), np.zeros((5000, 5000, 3), np.uint8))
    monkeypatch.setattr(cv2, "imread", lambda *a, **k: pytest.fail("decoded"))
    state = WebState()
    with pytest.raises(RtsegError) as exc:
        inputs.load_source(state, big, 2**30)
    message = str(exc.value)
    assert "big.png is 5000x5000" in message and "8294400 pixels" in message and "\n" not in message
    assert str(tmp_path) not in message and state.source is None
    assert inputs.probe(big, max_pixels=5000 * 5000) == "image"


class ClaimingCapture:
    """A cv2.VideoCapture whose container claims other properties; decoding a frame fails the test."""

    def __init__(self, path: str, claims: dict[int, float]) -> None:
        self.real, self.claims = REAL_CAPTURE(path), claims

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return self.real.isOpened()

    def get(self, prop: int) -> float:
        return self.claims.get(prop, self.real.get(prop))

    def read(self, *args):
        pytest.fail("a frame was decoded")

    grab = retrieve = read

    def release(self) -> None:
        self.real.release()


REAL_CAPTURE = cv2.VideoCapture


@pytest.mark.parametrize("claims, words", [
    ({cv2.CAP_PROP_FRAME_COUNT: 10 * 3600 * 30.0}, ["short.mp4 is 600 minutes long", "limit of 30 minutes"]),
    ({cv2.CAP_PROP_FRAME_WIDTH: 16384.0, cv2.CAP_PROP_FRAME_HEIGHT: 16384.0}, ["short.mp4 is 16384x16384",
                                                                             "8294400 pixels"]),
])
def test_a_video_claiming_to_be_huge_is_refused_unread(short_video, monkeypatch, claims, words):
    monkeypatch.setattr(cv2, "VideoCapture", lambda path, *a: ClaimingCapture(path, claims))
    state = WebState()
    with pytest.raises(RtsegError) as exc:
        inputs.load_source(state, short_video, 2**30)
    for word in words:
        assert word in str(exc.value)
    assert "\n" not in str(exc.value) and state.source is None


def test_length_limit_is_an_option(short_video):
    assert inputs.probe(short_video, max_minutes=1) == "video"  # 12 frames at 30 fps: 0.4 s
    with pytest.raises(RtsegError, match="0 minutes long, more than this server's limit of 0.001 minutes"):
        inputs.probe(short_video, max_minutes=0.001)


# -- results kept for --keep-results hours ---------------------------------------------------------

def test_old_results_are_removed(tmp_path):
    now = time.time()
    folders = {}
    for name, age_h in (("old", 30), ("older", 100), ("fresh", 1), ("mine", 50)):
        folders[name] = tmp_path / name
        (folders[name] / "run-1").mkdir(parents=True)
        (folders[name] / "run-1" / "tracks.jsonl").write_text("{}\n")
        os.utime(folders[name], (now - age_h * 3600, now - age_h * 3600))
    removed = jobs.prune_results(tmp_path, 24 * 3600, keep=folders["mine"])
    assert sorted(p.name for p in removed) == ["old", "older"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh", "mine"]
    assert jobs.prune_results(tmp_path, 0.5 * 3600) == [folders["fresh"], folders["mine"]]
    assert jobs.prune_results(tmp_path / "none yet", 1.0) == []


def test_a_pruned_session_runs_again(bank, settings, short_video, tmp_path):
    state = loaded(short_video)
    inputs.click(state, 77, 298, "object")
    jobs.run_job(state, bank, settings, tmp_path)
    os.utime(state.folder, (1, 1))
    assert jobs.prune_results(tmp_path, 3600) == [state.folder] and not state.folder.exists()
    assert jobs.run_job(state, bank, settings, tmp_path).video.exists()


# -- logins, and the error without one -------------------------------------------------------------

def test_auth_pairs(tmp_path):
    logins = tmp_path / "logins"
    logins.write_text("# comment\n\nbob:builder\ncarol:a:b:c\n")
    assert auth_pairs(["alice:wonder"], str(logins)) == [("alice", "wonder"), ("bob", "builder"), ("carol", "a:b:c")]
    assert auth_pairs(None, None) == []
    with pytest.raises(RtsegError, match="--auth #2: expected user:password") as exc:
        auth_pairs(["alice:wonder", "nopassword"])
    logins.write_text("dave:\n")
    with pytest.raises(RtsegError, match="line 1: expected user:password"):
        auth_pairs([], str(logins))
    logins.write_text("# nobody\n")
    with pytest.raises(RtsegError, match="no user:password line"):
        auth_pairs([], str(logins))
    with pytest.raises(RtsegError, match="cannot read --auth-file"):
        auth_pairs([], str(tmp_path / "missing"))
    assert "wonder" not in str(exc.value)
    assert [is_loopback(h) for h in ("127.0.0.1", "127.0.1.1", "::1", "localhost", "0.0.0.0", "192.168.1.2",
                                      "example.org")] == [True, True, True, True, False, False, False]


@pytest.mark.parametrize("auth", [[], ["--auth", "alice:wonder"]])
def test_open_host_needs_a_login(capsys, server_tmp, auth):
    """Served beyond this machine: without a login, one error line and exit 2 before anything loads;
    with one, it goes on (and here stops at the busy port)."""
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["web", "--config", str(DEMO_CONFIG), "--host", "0.0.0.0", "--port", str(port), *auth])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and "Traceback" not in "".join(lines), lines
    if auth:
        assert lines[-1].startswith("rtseg: ") and f"0.0.0.0:{port}" in lines[-1], lines
        assert not [line for line in lines if "login" in line], lines
    else:
        assert lines == ["rtseg: error: serving on 0.0.0.0 to other machines needs a login: set --auth USER:PASSWORD "
                         "or --auth-file FILE (or serve on 127.0.0.1)"], lines


def test_a_cancelled_run_stops_and_keeps_nothing(bank, settings, short_video, tmp_path):
    state = loaded(short_video)
    inputs.click(state, 77, 298, "object")

    def press_cancel(done: int, total: int | None) -> None:
        if done == 3:
            state.cancelled = True

    with pytest.raises(RtsegError, match=r"cancelled after \d+ of 12 frames") as exc:
        jobs.run_job(state, bank, settings, tmp_path, press_cancel)
    assert int(str(exc.value).split()[2]) < 12
    assert list(state.folder.iterdir()) == []  # the partial run is gone
    with pytest.raises(RtsegError, match="cancelled after 0 of 12 frames"):  # pressed while queued
        jobs.run_job(state, bank, settings, tmp_path)


# -- a run is held to what it decodes (--max-frames, --max-pixels, --max-job-minutes), one at a time ----

@pytest.fixture(scope="module")
def fast_video(tmp_path_factory):
    """A video of 64x48 whose header lies: it claims 20 frames at 10,000 a second (2 ms), and has 40
    (two MPEG-TS files one after the other: the container's count is the first one's)."""
    folder = tmp_path_factory.mktemp("fast")
    parts = [folder / "a.ts", folder / "b.ts"]
    for part in parts:
        out = cv2.VideoWriter(str(part), cv2.VideoWriter_fourcc(*"mp4v"), 10000, (64, 48))
        for k in range(20):
            image = np.full((48, 64, 3), 40, np.uint8)
            cv2.rectangle(image, (4 + k, 10), (24 + k, 30), (200, 60, 160), -1)
            out.write(image)
        out.release()
    path = folder / "fast.ts"
    path.write_bytes(b"".join(part.read_bytes() for part in parts))
    return path


@pytest.fixture
def tiny_settings(demo_config):
    m = demo_config.model
    return Settings("demo", 160, m.conf, m.iou)


def tiny_state(path: Path) -> WebState:
    state = loaded(path)
    state.everything = True
    return state


def stopped(state: WebState, bank, settings, tmp_path, limits: jobs.JobLimits) -> str:
    """The one line a run held to ``limits`` stops with; it keeps nothing."""
    with pytest.raises(RtsegError) as exc:
        jobs.run_job(state, bank, settings, tmp_path, limits=limits)
    assert list(state.folder.iterdir()) == [] and "\n" not in str(exc.value)
    return str(exc.value)


def test_a_run_stops_at_the_frame_cap_whatever_the_header_claims(bank, tiny_settings, fast_video, tmp_path):
    assert inputs.probe(fast_video, max_minutes=0.001, max_frames=25) == "video"  # 20 frames, 2 ms: it says
    state = tiny_state(fast_video)
    assert state.frames == 20
    assert stopped(state, bank, tiny_settings, tmp_path, jobs.JobLimits(frames=25)) == (
        "stopped at frame 25: this server's limit is 25 frames (--max-frames)")
    progress: list[tuple[int, int | None]] = []
    limits = jobs.JobLimits(frames=40)
    result = jobs.run_job(state, bank, tiny_settings, tmp_path, lambda *p: progress.append(p), limits)
    assert result.frames == 40 and progress[19] == (20, 20) and progress[-1] == (40, None)  # no "40/20"
    with pytest.raises(RtsegError, match=r"fast.ts has 20 frames, more than this server's limit of 10 frames"):
        inputs.probe(fast_video, max_frames=10)  # a header that says too many is refused at the upload


def test_a_frame_over_the_pixel_limit_stops_the_run(bank, tiny_settings, fast_video, tmp_path, monkeypatch):
    """The stream grows mid-way (OpenCV's FFmpeg reader scales a real one back to its first size:
    the frames come from a source that does not)."""

    class Growing(Source):
        def __init__(self, inner: Source) -> None:
            self.inner, self.size, self.fps = inner, inner.size, inner.fps

        def __iter__(self):
            for frame in self.inner:
                if frame.index >= 6:
                    frame.image = cv2.resize(frame.image, (128, 96))
                yield frame

        def close(self) -> None:
            self.inner.close()

    state = tiny_state(fast_video)
    monkeypatch.setattr(jobs, "open_upload", lambda st: Growing(inputs.open_upload(st)))
    assert stopped(state, bank, tiny_settings, tmp_path, jobs.JobLimits(pixels=64 * 48)) == (
        "stopped at frame 6: frame 7 is 128x96, larger than this server's limit of 3072 pixels a frame (--max-pixels)")


def test_an_image_whose_header_lies_is_refused_as_decoded(tmp_path, monkeypatch):
    image = tmp_path / "wide.png"
    cv2.imwrite(str(image), np.zeros((100, 200, 3), np.uint8))
    monkeypatch.setattr(inputs, "image_size", lambda path: (20, 10))  # what a lying header would say
    with pytest.raises(RtsegError) as exc:
        inputs.load_source(WebState(), image, 2**30, max_pixels=10_000)
    assert str(exc.value) == ("wide.png: its first frame decodes as 200x100, larger than this server's limit of "
                              "10000 pixels a frame (--max-pixels)")


def test_a_run_stops_after_its_wall_time(bank, tiny_settings, fast_video, tmp_path):
    minutes = itertools.count(0, 60.0)  # each reading of the clock a minute later: at the start, then a frame
    limits = jobs.JobLimits(seconds=5 * 60, clock=lambda: next(minutes))
    assert stopped(tiny_state(fast_video), bank, tiny_settings, tmp_path, limits) == (
        "stopped at frame 5 after 6.0 minutes: this server's limit is 5 minutes a run (--max-job-minutes)")


def test_one_run_queued_or_running_per_session(bank, tmp_path):
    import gradio as gr

    from rtseg.web.app import build

    fns = {fn.name: fn for fn in build(bank, tmp_path, max_upload_mb=5, max_concurrent=1).fns.values()}
    arm, run, busy = fns["on_arm"], fns["on_run"], fns["on_busy"]
    assert (run.trigger_after, run.trigger_only_on_success) == (arm._id, True)  # queued only if on_arm passed
    assert (busy.trigger_after, busy.trigger_only_on_failure, busy.queue) == (arm._id, True, False)
    state = arm.inputs[0]
    st = WebState(cancelled=True)
    arm.fn({state: st})
    assert st.busy and not st.cancelled
    st.cancelled = True  # Cancel pressed while queued, then Run again: no second job, still cancelled
    with pytest.raises(gr.Error):
        arm.fn({state: st})
    assert st.busy and st.cancelled
    assert busy.fn({state: st}) == {busy.outputs[0]: f"**Busy:** {jobs.BUSY}; Cancel stops it."}
    values = {c: c.value for c in run.inputs} | {state: st}
    assert "upload a video" in run.fn(values)[run.outputs[-1]]  # the run ended (failed): Run starts another
    assert not st.busy
    arm.fn({state: st})
    jobs.end_session(st)  # the tab closed: its run stops, and the session holds nothing
    assert not st.busy and st.cancelled


def test_every_instance_of_a_text_is_a_concept_whose_instances_get_ids(bank, settings, short_video, tmp_path):
    state = loaded(short_video)
    inputs.add(state, inputs.text_prompt("the red star", None, every=True))
    inputs.click(state, 77, 298, "object")
    assert inputs.describe(state).splitlines() == ["1. every the red star (each its own id)", "2. point +77,298"]
    result = jobs.run_job(state, bank, settings, tmp_path)
    rows = {r[0]: r for r in result.table}
    assert rows[1][1] == "point +77,298" and rows[1][2] == 12  # the click is object 1: a concept takes no id
    stars = [r for r in result.table if r[1] == "the red star"]
    assert stars and all(r[0] >= 2 and r[2] > 0 for r in stars), result.table
    state.everything = True
    with pytest.raises(RtsegError, match="untick one"):
        inputs.add(state, inputs.text_prompt("the red cross", None, every=True))
