"""``rtseg web``: the browser app (Gradio) on localhost, over the same pipeline as ``rtseg track``.

The page: upload a video or an image (or turn on the webcam), add objects on the first frame
(clicks, negative clicks, a drawn or typed box, a text, everything), choose the config and the
segmenter's settings, run with a progress bar, then watch the overlay video, read the table of
tracked objects and download the masks (zip of indexed PNGs) and the JSON lines.

Gradio is imported here (``rtseg web`` alone needs it). Every handler only moves values between
the page and :mod:`rtseg.web.jobs`; a bad input becomes a line in the page's status area, never a
traceback.
"""

from __future__ import annotations

import functools
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable

import gradio as gr
from starlette.middleware import Middleware

from rtseg.errors import RtsegError
from rtseg.prompt.prompts import parse_box
from rtseg.web import guard, inputs, jobs
from rtseg.web.inputs import WebState
from rtseg.web.models import ModelBank, Settings
from rtseg.web.uploads import FilePolicy, UploadSpace

TITLE = "rtseg web"
INTRO = ("Upload a video or an image, click the objects to follow on its first frame (or draw a box, "
         "type a text, or tick *everything*), then **Run**. The same pipeline as `rtseg track`: FastSAM "
         "segments, a mask-IoU tracker follows, CLIP reads text prompts.")
# System fonts only: the page must load and render without reaching any other host.
FONT = ("ui-sans-serif", "system-ui", "sans-serif")
FONT_MONO = ("ui-monospace", "Consolas", "monospace")
CSS = "#status p { margin: 0.2em 0; } #first-frame img { cursor: crosshair; }"


def error_line(exc: BaseException) -> str:
    """The one line the page shows for a failure."""
    if isinstance(exc, RtsegError):
        return f"**Error:** {exc}"
    print(f"rtseg web: internal error: {''.join(traceback.format_exception(exc))}", file=sys.stderr)
    first = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return f"**Internal error:** {first} (the server's log has the details)"


def build(bank: ModelBank, workdir: Path, max_upload_mb: float, max_concurrent: int,
          max_pixels: int = inputs.MAX_PIXELS, max_minutes: float = inputs.MAX_MINUTES,
          keep_hours: float = 24.0, max_frames: int | None = None,
          max_job_minutes: float = jobs.MAX_JOB_MINUTES) -> Any:
    """The Gradio Blocks of the page (not launched). Results older than ``keep_hours`` go: the
    sessions' folders when a run starts, Gradio's copies on its own timer. A run stops at
    ``max_frames`` decoded frames (default: ``max_minutes`` at 30 fps), a frame over ``max_pixels``
    or ``max_job_minutes`` of wall time; a session has one run queued or running at a time."""
    max_frames = max_frames or inputs.frame_cap(max_minutes)
    limits = jobs.JobLimits(max_frames, max_pixels, max_job_minutes * 60)
    max_bytes = int(max_upload_mb * 2**20)
    keep_s = keep_hours * 3600
    loaded = bank.get(bank.default)
    model = loaded.config.model

    cache = (int(min(3600, max(60, keep_s))), int(max(1, keep_s)))  # Gradio's copies: (check every, age)
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=cache) as page:
        state = gr.State(WebState(), delete_callback=jobs.end_session)
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        with gr.Row():
            with gr.Column(scale=1):
                with gr.Tab("Video or image"):
                    upload = gr.File(label=f"Video or image (up to {max_upload_mb:g} MB)", type="filepath",
                                     elem_id="upload")
                with gr.Tab("Webcam"):
                    webcam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam",
                                      elem_id="webcam")
                    live = gr.Image(label="Live overlay", type="numpy", interactive=False, elem_id="live")
                    capture = gr.Button("Use the current camera frame as the first frame", elem_id="capture")
                with gr.Accordion("Settings", open=False):
                    config_name = gr.Dropdown(list(bank.configs), value=bank.default, label="Config (model)",
                                              elem_id="config")
                    imgsz = gr.Slider(160, 1280, value=model.imgsz, step=32, label="Inference size (imgsz)")
                    conf = gr.Slider(0.05, 0.95, value=model.conf, step=0.05, label="Confidence")
                    iou = gr.Slider(0.1, 0.95, value=model.iou, step=0.05, label="IoU threshold (NMS)")
            with gr.Column(scale=2):
                first = gr.Image(label="First frame: click to add objects", type="numpy", interactive=False,
                                 elem_id="first-frame", format="png")
                mode = gr.Radio(list(inputs.CLICK_MODES), value=next(iter(inputs.CLICK_MODES)), label="A click adds",
                                elem_id="click-mode")
                with gr.Row():
                    box_text = gr.Textbox(label="Box", placeholder="x1,y1,x2,y2", elem_id="box-text", scale=3)
                    add_box = gr.Button("Add box", elem_id="add-box", scale=1)
                with gr.Row():
                    text = gr.Textbox(label="Text", placeholder="the red circle", elem_id="text", scale=3)
                    every = gr.Checkbox(label="every instance", elem_id="every-instance", scale=1)
                    add_text = gr.Button("Add text", elem_id="add-text", scale=1)
                with gr.Row():
                    everything = gr.Checkbox(label="everything", elem_id="everything")
                    reset = gr.Button("Reset objects", elem_id="reset")
                prompts = gr.Markdown("No objects yet.", elem_id="prompts")
        status = gr.Markdown("Upload a video or an image to start.", elem_id="status")
        with gr.Row():
            run = gr.Button("Run", variant="primary", elem_id="run", scale=3)
            cancel = gr.Button("Cancel", elem_id="cancel", scale=1)
        with gr.Row():
            video = gr.Video(label="Overlay", show_label=False, elem_id="result-video", interactive=False,
                             autoplay=True, loop=True)
            with gr.Column():
                table = gr.Dataframe(headers=["id", "prompt", "frames seen"], label="Tracked objects",
                                     elem_id="objects", interactive=False)
                files = gr.File(label="Downloads: masks (indexed PNGs) and JSON lines", file_count="multiple",
                                elem_id="downloads", interactive=False)

        # Each handler gets one dict of its inputs' values, by component.
        def given(*extra: Any) -> set[Any]:
            return {state, config_name, imgsz, conf, iou, *extra}

        def settings_of(v: dict) -> Settings:
            return Settings(v[config_name], int(v[imgsz]), float(v[conf]), float(v[iou]))

        def guarded(fn: Callable[..., dict]) -> Callable[..., dict]:
            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> dict:
                try:
                    return fn(*args, **kwargs)
                except Exception as exc:  # a line in the page instead of a traceback
                    return {status: error_line(exc)}
            return wrapper

        def view(v: dict, message: str) -> dict:
            """The first frame with its prompts, the list of objects, and a message."""
            st: WebState = v[state]  # changed in place: each browser session has its own
            return {first: jobs.preview(st, bank, settings_of(v)), prompts: inputs.describe(st), status: message,
                    everything: st.everything}

        prompt_outputs = [first, prompts, status, everything]

        @guarded
        def on_upload(v: dict) -> dict:
            st: WebState = v[state]
            if v[upload] is None:  # the upload was cleared
                inputs.forget_source(st)
                UploadSpace.release(st.folder)
                return view(v, "Upload a video or an image to start.")
            message = inputs.load_source(st, v[upload], max_bytes, max_pixels, max_minutes, max_frames)
            # the session's own link to it: deleting old uploads never takes it (rtseg.web.uploads)
            st.source = UploadSpace.hold(v[upload], jobs.session_folder(st, workdir))
            return view(v, message)

        @guarded
        def on_click(v: dict, evt: gr.SelectData) -> dict:
            x, y = evt.index
            return view(v, inputs.click(v[state], float(x), float(y), inputs.CLICK_MODES[v[mode]]))

        @guarded
        def on_box(v: dict) -> dict:
            return view(v, inputs.add(v[state], parse_box(v[box_text])))

        @guarded
        def on_text(v: dict) -> dict:
            clip_error = bank.get(v[config_name]).clip_error
            return view(v, inputs.add(v[state], inputs.text_prompt(v[text], clip_error, v[every])))

        @guarded
        def on_everything(v: dict) -> dict:
            st: WebState = v[state]
            if st.everything != v[everything]:
                st.everything = v[everything]
                st.changed()
            return view(v, "Everything: every other segment gets an id too." if st.everything else "")

        @guarded
        def on_reset(v: dict) -> dict:
            inputs.reset_prompts(v[state])
            return view(v, "Objects reset.")

        @guarded
        def on_settings(v: dict) -> dict:
            return {first: jobs.preview(v[state], bank, settings_of(v))}

        @guarded
        def on_run(v: dict, progress: gr.Progress = gr.Progress()) -> dict:
            def report(done: int, total: int | None) -> None:
                progress((done, total), desc="tracking", unit="frames")

            try:
                jobs.prune_results(workdir, keep_s, keep=v[state].folder)
                result = jobs.run_job(v[state], bank, settings_of(v), workdir, report, limits)
            finally:  # done, failed or cancelled: Run starts another
                jobs.release_run(v[state])
            seen = sum(1 for row in result.table if row[2])
            return {video: str(result.video), table: result.table, files: [str(result.masks_zip), str(result.jsonl)],
                    status: f"Done: {result.frames} frames, {seen} of {len(result.table)} objects seen."}

        def on_arm(v: dict) -> dict:  # not queued: a Cancel pressed from now on stops this run
            try:
                jobs.claim_run(v[state])
            except RtsegError as exc:  # already one: on_busy says so, and on_run is not queued
                raise gr.Error(str(exc), visible=False, print_exception=False) from None
            v[state].cancelled = False
            return {}

        def on_busy(v: dict) -> dict:  # not queued: Run pressed while this session's run is queued or running
            return {status: f"**Busy:** {jobs.BUSY}; Cancel stops it."}

        def on_cancel(v: dict) -> dict:  # not queued: heard while a run holds the model
            v[state].cancelled = True
            return {status: "Cancelling: the run stops after its current frame."}

        @guarded
        def on_stream(v: dict) -> dict:
            if v[webcam] is None:
                return {}
            return {live: jobs.live_frame(v[state], bank, settings_of(v), v[webcam], max_pixels)}

        @guarded
        def on_capture(v: dict) -> dict:
            st: WebState = v[state]
            if st.last_live is None:
                raise RtsegError("turn the webcam on first")
            UploadSpace.release(st.folder)
            return view(v, inputs.use_frame(st, st.last_live))

        upload.change(on_upload, given(upload), prompt_outputs)
        first.select(on_click, given(mode), prompt_outputs)
        add_box.click(on_box, given(box_text), prompt_outputs)
        box_text.submit(on_box, given(box_text), prompt_outputs)
        add_text.click(on_text, given(text, every), prompt_outputs)
        text.submit(on_text, given(text, every), prompt_outputs)
        everything.input(on_everything, given(everything), prompt_outputs)
        reset.click(on_reset, given(), prompt_outputs)
        gr.on([config_name.change, imgsz.change, conf.change, iou.change], on_settings, given(), [first, status])
        armed = run.click(on_arm, {state}, [], queue=False)
        armed.success(on_run, given(), [video, table, files, status], concurrency_limit=max_concurrent,
                      concurrency_id="model")
        armed.failure(on_busy, {state}, [status], queue=False)
        cancel.click(on_cancel, {state}, [status], queue=False)
        webcam.stream(on_stream, given(webcam), [live, status], stream_every=0.2, concurrency_limit=max_concurrent,
                      concurrency_id="model", show_progress="hidden")
        capture.click(on_capture, given(), prompt_outputs)
    page.rtseg_outputs = (first, live, video, files)  # the components whose files the page fetches (guard)
    return page


def launch(page: Any, workdir: Path, host: str, port: int, max_concurrent: int, max_upload_mb: float,
           auth: list[tuple[str, str]] | None = None, allowed_hosts: Iterable[str] = (),
           upload_quota_mb: float | None = None, keep_uploads_min: float = 60.0) -> None:
    """Serve ``page`` until Ctrl-C: a queue, no share link, system fonts, uploads limited in size, and
    Gradio's login page when ``auth`` gives (user, password) pairs. :mod:`rtseg.web.guard` stands in
    front: only ``host``, loopback names and ``allowed_hosts`` are answered, only the page's outputs
    and the sessions' results are served (as downloads), and uploads older than ``keep_uploads_min``
    go once they would take more than ``upload_quota_mb`` (default 10 x ``max_upload_mb``)."""
    page.queue(default_concurrency_limit=max_concurrent)
    theme = gr.themes.Default(font=FONT, font_mono=FONT_MONO)
    results, uploads = workdir / "sessions", Path(gr.utils.get_upload_folder())
    outputs = page.rtseg_outputs
    files = FilePolicy(uploads, results, lambda: page.upload_file_set, lambda: [c.temp_files for c in outputs])
    quota = int((upload_quota_mb or 10 * max_upload_mb) * 2**20)
    space = UploadSpace(uploads, results, quota, keep_uploads_min * 60, files.is_produced)
    middleware = Middleware(guard.Guard, hosts=guard.HostPolicy([host, *allowed_hosts]), files=files, space=space,
                            max_body=int(max_upload_mb * 2**20))
    try:
        page.launch(server_name=host, server_port=port, share=False, max_file_size=f"{max_upload_mb:g}mb",
                    allowed_paths=[str(results)], ssr_mode=False, theme=theme, css=CSS, show_error=False,
                    footer_links=[], pwa=False, mcp_server=False, quiet=False, num_workers=0,
                    auth=auth or None, app_kwargs={"middleware": [middleware]})
    except OSError as exc:
        raise RtsegError(f"cannot serve on {host}:{port}: {exc}".splitlines()[0]) from exc
