"""``rtseg web`` without a browser: uploads, prompts, the first-frame preview, a run with its outputs,
the webcam handler, the shared models, and the command line."""

from __future__ import annotations

import json
import socket
import sys
import tempfile
import threading
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from rtseg.cli import main
from rtseg.errors import RtsegError
from rtseg.output.png import read_index_png
from rtseg.prompt.prompts import parse_box
from rtseg.prompt.prompts import TextPrompt
from rtseg.web import inputs, jobs
from rtseg.web.inputs import WebState
from rtseg.web.models import LoadedModels, ModelBank, Settings, SharedSegmenter

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
