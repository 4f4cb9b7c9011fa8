"""``rtseg web`` in a real browser: the server on localhost, Debian's Chromium (headless) driven by
Playwright, the bundled sample uploaded and clicked as a person would.

Playwright drives the system Chromium (no browser download). Without Chromium these tests skip,
unless RTSEG_REQUIRE_BROWSER is set (as in CI), where they fail. A screenshot of the result page
is kept in $RTSEG_ARTIFACTS (or the test's temp folder) and its path printed.

Nothing here decides on the clock: each step waits for the page state it needs (Playwright's
wait_for_function, expect), and every wait has a deadline of minutes that only bounds a hang.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pytest

from playwright.sync_api import expect

from rtseg.evaluate import evaluate_arrays, load_folder

from conftest import DEMO_CONFIG, ROOT, SHOWCASE

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
FLOORS = json.loads((Path(__file__).with_name("quality.json")).read_text())
MAX_UPLOAD_MB = 5
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]  # a synthetic webcam
WAIT_MS = 300_000  # every browser step's deadline: bounds a hang only (each waits for a state)
RUN_MS = 900_000  # a 300-frame run, on the busiest machine
SERVER_S = 900.0  # rtseg web loading its models and answering; and stopping
# rtseg web lost the free port to another process before it bound it, or Gradio's own start-up
# clock (its server thread up within 5 s, its first HEAD within 3 s) ran out on a busy machine:
# the test starts it again, on a new port.
START_AGAIN = ("cannot serve on", "localhost is not accessible")
STARTS = 5


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("RTSEG_REQUIRE_BROWSER"):
            pytest.fail("Chromium is required here (RTSEG_REQUIRE_BROWSER is set): apt-get install chromium")
        pytest.skip("Chromium not installed (apt-get install chromium)")
    return path


def free_port() -> int:
    """A port the OS gives (bind to port 0); rtseg web binds it in turn (Gradio takes no port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=SERVER_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _serving(tmp: Path, log_path: Path, options: tuple[str, ...]) -> tuple[str, subprocess.Popen] | None:
    """One start of ``rtseg web`` on a port from the OS: its URL and process once it says it serves
    on that port (so the page that answers is its own) and the page answers; None when it stopped
    for a reason in START_AGAIN (then it is to be started again); fails the test otherwise."""
    port = free_port()
    env = {**os.environ, "GRADIO_TEMP_DIR": str(tmp / "gradio"), "HF_HOME": str(tmp / "hf"),
           "XDG_CACHE_HOME": str(tmp / "cache"), "TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1"}
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "rtseg.cli", "web", "--config", str(DEMO_CONFIG), "--port",
                                 str(port), *options], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    serving = re.compile(rf"Running on local URL:\s+http://127\.0\.0\.1:{port}\s*$", re.MULTILINE)
    deadline = time.monotonic() + SERVER_S
    said = False
    while True:
        said = said or bool(serving.search(log_path.read_text()))
        if said:
            try:
                with urllib.request.urlopen(url, timeout=SERVER_S) as response:
                    if response.status == 200:
                        return url, proc
            except OSError:
                pass
        if proc.poll() is not None:
            text = log_path.read_text()
            if not said and any(why in text for why in START_AGAIN):
                return None
            pytest.fail(f"rtseg web exited with {proc.returncode}: {text}")
        if time.monotonic() > deadline:
            stop(proc)
            pytest.fail(f"rtseg web did not answer within {SERVER_S:.0f} s: {log_path.read_text()}")
        time.sleep(0.2)


@contextlib.contextmanager
def start_server(tmp: Path, *options: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """``rtseg web`` with the demo config and ``options`` on a free localhost port, its work folder
    under ``tmp``; yields its URL and process once its page answers (or its login page does)."""
    for attempt in range(1, STARTS + 1):
        log_path = tmp / f"server-{attempt}.log"
        started = _serving(tmp, log_path, options)
        if started is not None:
            break
    else:
        pytest.fail(f"rtseg web did not start in {STARTS} tries: {log_path.read_text()}")
    url, proc = started
    try:
        yield url, proc
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``rtseg web`` on a free localhost port with the demo config; yields its URL. Its upload quota
    is the default, 10 x --max-upload-mb."""
    chromium_path()
    with start_server(tmp_path_factory.mktemp("web-server"), "--max-upload-mb", str(MAX_UPLOAD_MB)) as (url, _):
        yield url


@pytest.fixture(scope="module")
def browser(server, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    home = tmp_path_factory.mktemp("browser-home")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), headless=True, args=BROWSER_ARGS,
                              env={**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
                                   "XDG_CACHE_HOME": str(home / "cache")})
        yield b
        b.close()


def new_context(browser, **options):
    """A browser session whose every step (actions, waits, navigation, requests) waits up to WAIT_MS."""
    context = browser.new_context(**options)
    context.set_default_timeout(WAIT_MS)
    context.set_default_navigation_timeout(WAIT_MS)
    return context


def open_app(pg, url: str) -> None:
    """Load the app and wait until it is up: its upload field is there (the page is built by script)."""
    pg.goto(url)
    pg.wait_for_selector("#upload input[type=file]", state="attached")


@pytest.fixture
def page(browser, server):
    """A new browser session on the app; fails the test if the page reached for any other host."""
    context = new_context(browser, viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    elsewhere: list[str] = []
    pg.on("request", lambda r: elsewhere.append(r.url) if not r.url.startswith((server, "data:", "blob:")) else None)
    open_app(pg, server)
    yield pg
    context.close()
    assert not elsewhere, f"the page reached beyond localhost: {elsewhere[:5]}"


def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("RTSEG_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def upload(page, path: Path) -> None:
    page.set_input_files("#upload input[type=file]", str(path))


def status(page) -> str:
    return page.locator("#status").inner_text()


def wait_status(page, *words: str, timeout: float = WAIT_MS) -> str:
    """The status line once it has every one of ``words``."""
    return page.wait_for_function(
        "words => { const t = document.querySelector('#status').innerText;"
        " return words.every(w => t.includes(w)) && t; }",
        arg=list(words), timeout=timeout).json_value()


def watch_progress(page, total: int) -> None:
    """From now on, remember every "N/total frames" the page shows (the progress bar counts frames),
    however briefly it shows it: :func:`progress_seen` reads them."""
    page.evaluate(r"""total => {
        window.progressSeen = [];
        const re = new RegExp("(\\d+)/" + total + " frames", "g");
        const look = () => { for (const m of document.body.innerText.matchAll(re)) window.progressSeen.push(+m[1]); };
        new MutationObserver(look).observe(document.body, {subtree: true, childList: true, characterData: true});
    }""", total)


def progress_seen(page) -> list[int]:
    """The frame counts shown since :func:`watch_progress`, once there is one."""
    return page.wait_for_function("() => window.progressSeen.length > 0 && window.progressSeen").json_value()


def click_pixel(page, x: float, y: float) -> None:
    """Click the first-frame image at pixel (x, y), wherever and however large the page shows it (once it
    has loaded and been laid out: the status line can show the video before the image has arrived)."""
    page.wait_for_function("() => { const i = document.querySelector('#first-frame img');"
                           " return !!i && i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().width > 0; }")
    img = page.locator("#first-frame img")
    box = img.bounding_box()
    nw, nh = page.evaluate("() => { const i = document.querySelector('#first-frame img');"
                           " return [i.naturalWidth, i.naturalHeight]; }")
    scale = min(box["width"] / nw, box["height"] / nh)  # object-fit: contain
    left, top = box["x"] + (box["width"] - nw * scale) / 2, box["y"] + (box["height"] - nh * scale) / 2
    page.mouse.click(left + (x + 0.5) * scale, top + (y + 0.5) * scale)


# -- plain HTTP, as another page or program would send it ------------------------------------------

PASSIVE = {"video/webm", "video/mp4", "image/png", "image/jpeg", "image/webp", "application/zip",
           "application/x-ndjson", "application/octet-stream"}


def assert_download(headers, content_type: str) -> None:
    """A file the server sends: a download of a passive type, which no browser runs as a page."""
    headers = {k.lower(): v for k, v in dict(headers).items()}
    assert headers["content-type"].split(";")[0] == content_type and content_type in PASSIVE, headers
    assert headers["content-disposition"].startswith("attachment"), headers
    assert headers["x-content-type-options"] == "nosniff", headers
    assert headers["content-security-policy"].startswith("sandbox"), headers


def send(url: str, method: str = "GET", path: str = "/", headers: dict | None = None,
         body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request to the server at ``url``, with exactly these headers (a Host of its own, say):
    its status, headers (lower-case names) and body."""
    where = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(where.hostname, where.port, timeout=SERVER_S)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def send_upload(url: str, name: str, content: bytes, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """POST a file to Gradio's upload route as the page does (multipart, field ``files``)."""
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", **headers}
    return send(url, "POST", "/gradio_api/upload", {k.replace("_", "-"): v for k, v in headers.items()}, body)


def test_click_run_download_and_score(page, server, tmp_path):
    """Upload the sample, click the purple square on its first frame, run, watch, download, score."""
    obj = json.loads((SHOWCASE / "objects.json").read_text())["objects"][0]
    x, y = obj["prompts"]["point"]
    upload(page, SHOWCASE / "video.mp4")
    wait_status(page, "video.mp4", "640x480", "300 frames")
    page.wait_for_selector("#first-frame img")
    click_pixel(page, x, y)
    page.wait_for_function(f"() => document.querySelector('#prompts').innerText.includes('point +{x},{y}')")
    watch_progress(page, 300)
    start = time.monotonic()
    page.click("#run")
    wait_status(page, "Done: 300 frames", timeout=RUN_MS)
    seconds = time.monotonic() - start
    assert all(0 <= n <= 300 for n in progress_seen(page))  # the progress bar counted frames
    page.wait_for_selector("#result-video video[src]")
    page.wait_for_function("p => [...document.querySelectorAll('#objects [role=row]')].slice(1)"
                           ".some(r => r.innerText.includes(p))", arg=f"point +{x},{y}")
    rows = [r for r in page.locator("#objects [role=row]").all_inner_texts()[1:] if r.strip()]  # after the header
    assert len(rows) == 1 and f"point +{x},{y}" in rows[0], rows
    seen = int(rows[0].split()[-1])
    assert 250 <= seen <= 300, rows
    page.wait_for_function("() => document.querySelector('#result-video video').readyState >= 2")
    shot = artifacts(tmp_path) / "web-result.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nresult page screenshot: {shot} (run took {seconds:.1f} s)")

    video_src = page.locator("#result-video video").get_attribute("src")
    assert_download(page.request.get(urllib.parse.urljoin(server, video_src)).headers, "video/webm")  # yet it plays
    zip_href = page.locator("#downloads a[href*='masks.zip']").first.get_attribute("href")
    assert_download(page.request.get(urllib.parse.urljoin(server, zip_href)).headers, "application/zip")
    with page.expect_download() as download:
        page.locator("#downloads a[href*='masks.zip']").first.click()
    masks_zip = tmp_path / "masks.zip"
    download.value.save_as(masks_zip)
    with zipfile.ZipFile(masks_zip) as z:
        z.extractall(tmp_path / "unzipped")
    names, gt = load_folder(SHOWCASE / "gt")
    _, pred = load_folder(tmp_path / "unzipped" / "masks", names)
    j = evaluate_arrays(pred, gt, objects=[obj["id"]])["objects"][str(obj["id"])]["J"]
    print(f"web: mean J of object {obj['id']} = {j:.4f}")
    assert j >= FLOORS["web/showcase-point-1"] - FLOORS["margin"]


@pytest.mark.parametrize("name, content, words", [
    ("clip.mp4", b"this is not a video\n", ["Error", "clip.mp4", "not a video"]),
    ("empty.mp4", b"", ["Error", "empty.mp4", "is empty"]),
])
def test_bad_upload_says_why(page, tmp_path, name, content, words):
    bad = tmp_path / name
    bad.write_bytes(content)
    upload(page, bad)
    text = wait_status(page, *words)
    assert "Traceback" not in text and str(tmp_path) not in text


def test_too_large_upload_says_why(page, tmp_path):
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (MAX_UPLOAD_MB + 1) * 2**20)
    upload(page, big)
    page.get_by_text("exceed the maximum allowed size").first.wait_for()
    expect(page.locator("body")).to_contain_text("big.mp4", timeout=WAIT_MS)


def test_sessions_keep_their_own_prompts(browser, server, page, tmp_path):
    """Two browser sessions at once: one's objects never show in the other."""
    upload(page, SHOWCASE / "video.mp4")
    wait_status(page, "video.mp4")
    click_pixel(page, 449, 96)
    page.wait_for_function("() => document.querySelector('#prompts').innerText.includes('point +449,96')")
    other = new_context(browser, viewport={"width": 1280, "height": 1000}).new_page()
    try:
        open_app(other, server)
        expect(other.locator("#prompts")).to_contain_text("No objects yet", timeout=WAIT_MS)
        frame = tmp_path / "first.png"
        cap = cv2.VideoCapture(str(SHOWCASE / "video.mp4"))
        ok, image = cap.read()
        cap.release()
        assert ok and cv2.imwrite(str(frame), image)
        other.set_input_files("#upload input[type=file]", str(frame))
        other.wait_for_function("() => document.querySelector('#status').innerText.includes('first.png')")
        other.fill("#box-text textarea, #box-text input", "423,67,479,125")
        other.click("#add-box")
        other.wait_for_function("() => document.querySelector('#prompts').innerText.includes('box 423,67,479,125')")
        assert "point" not in other.locator("#prompts").inner_text()
        prompts = page.locator("#prompts").inner_text()
        assert "point +449,96" in prompts and "box" not in prompts
        assert "first.png" not in status(page)
    finally:
        other.context.close()


def test_webcam_streams_live_overlays(page):
    """Chromium's synthetic camera streams to the server, which sends back frames with overlays."""
    page.get_by_role("tab", name="Webcam").click()
    page.locator("#everything input").check()
    page.wait_for_function("() => document.querySelector('#prompts').innerText.includes('everything')")
    page.get_by_text("Click to Access Webcam").click()
    page.wait_for_function("() => { const v = document.querySelector('#webcam video');"
                           " return !!v && v.readyState >= 2 && v.videoWidth > 0; }")  # the camera is playing
    page.locator("#webcam button[aria-label='capture photo']").click()  # starts streaming
    page.wait_for_function("() => { const i = document.querySelector('#live img');"
                           " return i && i.complete && i.naturalWidth > 0; }")
    src = page.locator("#live img").get_attribute("src")
    data = page.request.get(src).body()
    frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert frame is not None and frame.shape[0] > 100
    # The overlay's stats line (per-stage milliseconds, white on a black box at the top left) is
    # drawn by rtseg; the synthetic camera's frame is green there.
    assert frame[6:10, 6:10].mean() < 40, frame[6:10, 6:10].mean(axis=(0, 1))


ACTIVE = b"<script>fetch('/config').then(r => r.text()).then(t => document.title = t)</script>"


@pytest.mark.parametrize("name, content", [
    ("page.html", b"<!doctype html>" + ACTIVE),
    ("image.svg", b'<svg xmlns="http://www.w3.org/2000/svg">' + ACTIVE + b"</svg>"),
    ("doc.xhtml", b'<html xmlns="http://www.w3.org/1999/xhtml">' + ACTIVE + b"</html>"),
    ("app.js", b"fetch('/config')"),
    ("clip.mp4", b"<!doctype html>" + ACTIVE),  # a video's name, a page's content
], ids=["html", "svg", "xhtml", "js", "html-named-mp4"])
def test_uploads_are_never_served_back(server, name, content):
    """Whatever its name or content, an upload does not come back from the file routes (a page there
    would run its script under the app's origin, past any login)."""
    status, _, body = send_upload(server, name, content)
    assert status == 200, body
    (path,) = json.loads(body)
    for route in ("/gradio_api/file=", "/gradio_api/file/"):
        status, headers, body = send(server, "GET", route + urllib.parse.quote(path))
        assert status == 403 and content not in body, (route, status, headers)


def test_other_hosts_are_refused(server):
    """A request naming another host (DNS rebinding: a page elsewhere, its name now resolving to this
    machine) is refused on every route; this machine's own names are answered."""
    port = urllib.parse.urlsplit(server).port
    for method, path in (("GET", "/"), ("GET", "/config"), ("POST", "/gradio_api/upload")):
        status, _, body = send(server, method, path, {"Host": f"evil.example:{port}"})
        assert status == 400 and b"does not answer to host" in body, (path, status)
    status, _, body = send_upload(server, "a.png", b"x", Host="evil.example")
    assert status == 400, body
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
        assert [send(server, "GET", path, {"Host": host})[0] for path in ("/", "/config")] == [200, 200], host


def test_cross_origin_uploads_are_refused(server):
    """A page of another site cannot drive the app: its POSTs (and websockets) carry its Origin."""
    status, _, body = send_upload(server, "a.txt", b"x", Origin="http://evil.example")
    assert status == 403 and b"refused" in body, body
    status, _, body = send_upload(server, "a.txt", b"x", Origin="null")
    assert status == 403, body
    status, _, body = send_upload(server, "a.txt", b"x", Sec_Fetch_Site="cross-site")
    assert status == 403, body
    for origin in (server.rstrip("/"), server.rstrip("/").replace("127.0.0.1", "localhost")):  # the page's own
        status, _, body = send_upload(server, "a.txt", b"x", Origin=origin, Sec_Fetch_Site="same-origin")
        assert status == 200, (origin, body)


def test_uploads_have_a_quota(server):
    """Uploads past --upload-quota-mb (here the default, 10 x 5 MB) are refused with 413 and a line;
    uploads older than --keep-uploads are deleted first, and then it fits again."""
    status, _, body = send_upload(server, "where.bin", b"z")
    assert status == 200, body
    uploads = Path(json.loads(body)[0]).parent.parent  # the server's upload folder: UPLOADS/SHA/NAME
    filler = uploads / "filler" / "old-upload.bin"  # an upload of earlier visitors
    filler.parent.mkdir()
    with open(filler, "wb") as f:
        f.truncate((10 * MAX_UPLOAD_MB - 1) * 2**20)  # sparse: counted at its size, takes no disk
    try:
        status, _, body = send_upload(server, "one.bin", b"y" * 2**20)
        assert status == 413 and b"upload space is full" in body and b"--upload-quota-mb" in body, (status, body)
        old = time.time() - 2 * 3600
        os.utime(filler, (old, old))
        status, _, body = send_upload(server, "one.bin", b"y" * 2**20)
        assert status == 200, body
        assert not filler.exists()  # pruned before the upload was counted
    finally:
        shutil.rmtree(filler.parent, ignore_errors=True)


# -- logins (--auth, --auth-file) ------------------------------------------------------------------

@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    """``rtseg web`` with two logins: one from --auth, one from --auth-file; yields its URL and work folder."""
    chromium_path()
    tmp = tmp_path_factory.mktemp("web-auth")
    (tmp / "logins.txt").write_text("# user:password\nbob:builder\n")
    with start_server(tmp, "--auth", "alice:wonder", "--auth-file", str(tmp / "logins.txt")) as (url, _):
        yield url, tmp


def login(page, user: str, password: str) -> None:
    page.locator("input[type=password]").wait_for()
    page.locator("input[type=text], input:not([type])").first.fill(user)
    page.locator("input[type=password]").fill(password)
    page.get_by_role("button", name="Login").click()


def test_login_is_required(browser, auth_server, tmp_path):
    """Without logging in neither the page nor a results file comes back; after it, both do."""
    url, tmp = auth_server
    stranger = new_context(browser)
    member = new_context(browser, viewport={"width": 1280, "height": 1000})
    try:
        pg = stranger.new_page()
        pg.goto(url)
        pg.locator("input[type=password]").wait_for()  # Gradio's login form, not the app
        assert pg.locator("#upload").count() == 0 and pg.locator("#run").count() == 0
        assert stranger.request.get(url + "config").status == 401
        wrong = stranger.request.post(url + "login", form={"username": "alice", "password": "nope"})
        assert not wrong.ok

        page = member.new_page()
        page.goto(url)
        login(page, "bob", "builder")  # from --auth-file
        page.wait_for_selector("#upload input[type=file]", state="attached")
        cap = cv2.VideoCapture(str(SHOWCASE / "video.mp4"))
        ok, image = cap.read()
        cap.release()
        frame = tmp_path / "first.png"
        assert ok and cv2.imwrite(str(frame), image)
        upload(page, frame)
        wait_status(page, "first.png", "640x480")
        page.fill("#box-text textarea, #box-text input", "45,266,110,331")
        page.click("#add-box")
        page.wait_for_function("() => document.querySelector('#prompts').innerText.includes('box 45,266')")
        page.click("#run")
        wait_status(page, "Done: 1 frames", timeout=RUN_MS)
        href = page.locator("#downloads a[href*='tracks.jsonl']").first.get_attribute("href")
        download = urllib.parse.urljoin(url, href)
        (original,) = tmp.glob("rtseg-web-*/sessions/*/run-1/tracks.jsonl")  # the session's own results folder
        direct = urllib.parse.urljoin(url, f"gradio_api/file={original}")
        for results_file in (download, direct):
            got = member.request.get(results_file)
            assert got.ok and '"objects"' in got.text()
            assert_download(got.headers, "application/x-ndjson")  # the page's copy and the session's own
            assert stranger.request.get(results_file, max_redirects=0).status in (401, 403), results_file
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(results_file, timeout=WAIT_MS / 1000)
            assert refused.value.code in (401, 403)
        alice = new_context(browser)
        assert alice.request.post(url + "login", form={"username": "alice", "password": "wonder"}).ok  # --auth
        assert alice.request.get(direct).ok
        alice.close()
    finally:
        stranger.close()
        member.close()


def test_logins_and_hosts_together(auth_server):
    """With --auth, every route still needs the login (an upload too) from this machine's names,
    and another host is refused before any login."""
    url, tmp = auth_server
    port = urllib.parse.urlsplit(url).port
    # a session's results when test_login_is_required ran first, else a file that is there in any case
    results_file = str(next(tmp.glob("rtseg-web-*/sessions/*/run-*/tracks.jsonl"), tmp / "logins.txt"))
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        assert send(url, "GET", "/config", {"Host": host})[0] == 401
        assert send(url, "GET", "/gradio_api/file=" + urllib.parse.quote(results_file), {"Host": host})[0] in (401, 403)
        assert send_upload(url, "a.txt", b"x", Host=host)[0] == 401
    for path in ("/", "/config", "/login"):
        assert send(url, "GET", path, {"Host": "evil.example"})[0] == 400, path
    assert send(url, "POST", "/login", {"Host": f"127.0.0.1:{port}", "Origin": "http://evil.example",
                                        "Content-Type": "application/x-www-form-urlencoded"},
                b"username=alice&password=wonder")[0] == 403  # a login from another site's form


def test_cancel_stops_a_run(page):
    obj = json.loads((SHOWCASE / "objects.json").read_text())["objects"][0]
    upload(page, SHOWCASE / "video.mp4")
    wait_status(page, "video.mp4", "300 frames")
    page.wait_for_selector("#first-frame img")
    click_pixel(page, *obj["prompts"]["point"])
    page.wait_for_function("() => document.querySelector('#prompts').innerText.includes('point +')")
    page.click("#run")
    page.get_by_text("/300 frames").first.wait_for()  # running
    page.click("#cancel")
    text = wait_status(page, "cancelled after", "of 300 frames")
    first = int(text.split("cancelled after")[1].split()[0])
    assert first < 300, text
    page.click("#run")  # the next run is not cancelled: it goes past where the first one stopped
    page.wait_for_function("n => [...document.body.innerText.matchAll(/(\\d+)\\/300 frames/g)].some(m => +m[1] > n)",
                           arg=first + 3, timeout=RUN_MS)
    page.click("#run")  # again, while it runs: a line, and no second job of this session
    wait_status(page, "a run of this session is already queued or running")
    page.click("#cancel")
    page.wait_for_function("n => { const m = document.querySelector('#status').innerText.match(/cancelled after "
                           "(\\d+)/); return m && +m[1] > n; }", arg=first + 3)
