"""``rtseg web``'s guard without a server: the host and origin checks, which files are served and
how, the upload quota's count and pruning, driven through the ASGI middleware itself; and the
command line's new options. (The real server's answers are checked in test_web.py.)"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time

import pytest

from rtseg.errors import RtsegError
from rtseg.web.guard import Guard, HostPolicy, checked_host, host_name
from rtseg.web.uploads import FilePolicy, UploadSpace

from rtseg.cli import main

from conftest import DEMO_CONFIG


@pytest.mark.parametrize("header, name", [
    ("localhost:7860", "localhost"), ("127.0.0.1", "127.0.0.1"), ("[::1]:7860", "::1"), ("Rtseg.LAN.", "rtseg.lan"),
    ("evil.example:80", "evil.example"), ("::1", None), ("[::1", None), ("localhost:", None), ("a:b", None),
    ("[::1]x", None), ("", None),
])
def test_host_names(header, name):
    assert host_name(header) == name


def test_hosts_and_origins():
    hosts = HostPolicy(["0.0.0.0", "Rtseg.lan"])
    assert [hosts.allows(h) for h in ("localhost:1", "127.0.0.2:80", "[::1]:1", "0.0.0.0:7860", "rtseg.lan",
                                      "evil.example", "localhost.evil.example", "127.0.0.1.evil.example",
                                      "192.168.1.2", "", None)] == [True] * 5 + [False] * 6
    assert [hosts.allows_origin(o) for o in ("http://127.0.0.1:7860", "https://rtseg.lan", "http://[::1]:9",
                                             "http://evil.example", "null", "file://", "chrome-extension://abc",
                                             "http://[::1", "")] == [True] * 3 + [False] * 6
    assert checked_host("[::1]") == "::1" and checked_host("Host.Example.") == "host.example"
    for bad in ("evil example", "host:80", "http://x", "", "-x"):
        with pytest.raises(RtsegError, match="expected a host name or an IP address"):
            checked_host(bad)


@pytest.fixture
def folders(tmp_path):
    """An upload folder with an upload, an output copy and a stray file; a results folder with a run
    and a session's hold on its upload."""
    up, res = tmp_path / "uploads", tmp_path / "sessions"
    for path in ("uploads/a1/page.html", "uploads/b2/overlay.webm", "uploads/stray.svg",
                 "sessions/s1/run-1/tracks.jsonl", "sessions/s1/upload/t/clip.mp4"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(b"x" * 1000)
    uploaded, produced = {str(up / "a1/page.html")}, {str(up / "b2/overlay.webm")}
    return up, res, FilePolicy(up, res, lambda: uploaded, lambda: [produced])


def test_only_outputs_and_results_are_served(folders, tmp_path):
    up, res, policy = folders
    (up / "b2/link.webm").symlink_to(tmp_path / "elsewhere")
    served = [str(up / "b2/overlay.webm"), str(res / "s1/run-1/tracks.jsonl"), f"{up}/a1/../b2/overlay.webm"]
    refused = [str(up / "a1/page.html"), str(up / "stray.svg"), str(res / "s1/upload/t/clip.mp4"),
               str(res / "s1"), f"{res}/s1/run-1/../upload/t/clip.mp4", str(up / "b2/link.webm"), "/etc/passwd",
               "http://example.com/x.html", "file:///etc/passwd", f"{up}/b2/overlay.webm\0", ""]
    assert [policy.allows(p) for p in served + refused] == [True] * len(served) + [False] * len(refused)


def test_upload_space_counts_and_prunes(folders):
    up, res, policy = folders
    space = UploadSpace(up, res, quota=10_000, keep_s=3600, produced=policy.is_produced)
    assert space.usage() == 3000  # the upload, the stray file and the session's hold; not the output
    os.link(up / "a1/page.html", res / "s1/upload/t/page.html")  # a hold on the upload: counted once
    assert space.usage() == 3000
    old = time.time() - 7200
    for path in (up / "a1/page.html", up / "stray.svg", up / "b2/overlay.webm", up / "a1"):
        os.utime(path, (old, old))
    assert sorted(space.prune()) == [str(up / "a1/page.html"), str(up / "stray.svg")]
    assert (up / "b2/overlay.webm").exists() and not (up / "a1").exists()  # outputs stay; empty folders go
    assert (res / "s1/upload/t/page.html").read_bytes() == b"x" * 1000  # the session's hold is its own
    assert space.usage() == 2000
    held = UploadSpace.hold(up / "b2/overlay.webm", res / "s2")
    assert held.parent.parent == res / "s2/upload" and os.path.samefile(held, up / "b2/overlay.webm")
    again = UploadSpace.hold(up / "b2/overlay.webm", res / "s2")
    assert list((res / "s2/upload").iterdir()) == [again.parent]  # a session holds its latest upload only
    UploadSpace.release(res / "s2")
    assert not (res / "s2/upload").exists()


async def call(app, method: str = "GET", path: str = "/", headers: dict | None = None, body: bytes = b"",
               kind: str = "http"):
    """One request through an ASGI app: (status, headers, body) as it answered."""
    headers = {"host": "127.0.0.1:7860", **(headers or {})}
    scope = {"type": kind, "method": method, "path": path,
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    sent, parts = [], [{"type": "http.request", "body": body[i:i + 100], "more_body": i + 100 < len(body)}
                       for i in range(0, max(len(body), 1), 100)]

    async def receive():
        return parts.pop(0) if parts else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    if kind == "websocket":
        return sent[0]["type"], {}, b""
    start = next(m for m in sent if m["type"] == "http.response.start")
    return (start["status"], {k.decode(): v.decode() for k, v in start["headers"]},
            b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))


async def inner(scope, receive, send):
    """The app behind the guard: reads the body, answers 200 text/html inline."""
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/html"), (b"content-disposition", b"inline")]})
    await send({"type": "http.response.body", "body": b"<script>alert(1)</script>"})


def test_the_guard(folders):
    up, res, policy = folders
    space = UploadSpace(up, res, quota=5000, keep_s=3600, produced=policy.is_produced)
    guard = Guard(inner, HostPolicy(), policy, space, max_body=4000)

    def answer(*args, **kwargs):
        return asyncio.run(call(guard, *args, **kwargs))

    assert answer()[0] == 200
    assert answer(headers={"host": "evil.example"})[0] == 400
    assert answer(kind="websocket", headers={"host": "evil.example"})[0] == "websocket.close"
    assert answer(kind="websocket", headers={"origin": "http://evil.example"})[0] == "websocket.close"
    assert answer("POST", "/gradio_api/queue/join", {"origin": "http://evil.example"})[0] == 403
    assert answer("POST", "/gradio_api/queue/join", {"sec-fetch-site": "cross-site"})[0] == 403
    assert answer("POST", "/gradio_api/queue/join", {"origin": "http://localhost:7860",
                                                     "sec-fetch-site": "same-origin"})[0] == 200
    assert answer("POST", "/gradio_api/process_recording")[0] == 403
    assert answer(path=f"/gradio_api/file={up}/a1/page.html")[0] == 403
    status, headers, _ = answer(path=f"/gradio_api/file/{up}/b2/overlay.webm")
    assert status == 200 and headers["content-type"] == "video/webm" and headers["x-content-type-options"] == "nosniff"
    assert headers["content-disposition"] == 'attachment; filename="overlay.webm"'
    assert headers["content-security-policy"] == "sandbox; default-src 'none'"
    assert answer("POST", "/gradio_api/upload", body=b"x" * 10)[0] == 411  # no Content-Length
    # 3000 bytes of uploads (the upload, the stray file, the hold): 2000 more fit in the quota, 2001 do not
    assert answer("POST", "/gradio_api/upload", {"content-length": "2000"}, b"x" * 2000)[0] == 200
    status, _, text = answer("POST", "/gradio_api/upload", {"content-length": "2001"}, b"x" * 2001)
    assert status == 413 and b"upload space is full" in text and b"--upload-quota-mb" in text
    old = time.time() - 7200
    os.utime(up / "stray.svg", (old, old))  # deleted first: then it fits
    assert answer("POST", "/gradio_api/upload", {"content-length": "2001"}, b"x" * 2001)[0] == 200
    assert not (up / "stray.svg").exists() and guard.reserved == 0


def test_uploads_under_way_count_too(folders):
    """Two uploads at once: the second is refused while the first, which it would pass the quota
    with, is still being received."""
    up, res, policy = folders
    guard = Guard(None, HostPolicy(), policy, UploadSpace(up, res, 5000, 3600, policy.is_produced), 4000)

    async def both():
        first_started, release = asyncio.Event(), asyncio.Event()

        async def slow(scope, receive, send):
            first_started.set()
            await release.wait()
            await inner(scope, receive, send)

        guard.app = slow
        first = asyncio.create_task(call(guard, "POST", "/gradio_api/upload", {"content-length": "1500"}, b"x" * 1500))
        await first_started.wait()
        second = await call(guard, "POST", "/gradio_api/upload", {"content-length": "1500"}, b"x" * 1500)
        release.set()
        return (await first)[0], second[0]

    assert asyncio.run(both()) == (200, 413)


@pytest.fixture
def server_tmp(tmp_path, monkeypatch):
    """``rtseg web`` run in this process keeps its work folder and uploads in the test's temp folder."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    return tmp_path


@pytest.mark.parametrize("argv, words", [
    (["--upload-quota-mb", "100", "--max-upload-mb", "200"], ["--upload-quota-mb must be at least --max-upload-mb"]),
    (["--keep-uploads", "0"], ["--keep-uploads must be > 0"]),
    (["--allowed-host", "evil example"], ["--allowed-host 'evil example': expected a host name"]),
    (["--host", "a b", "--auth", "a:b"], ["--host 'a b': expected a host name"]),
])
def test_web_bad_guard_options(capsys, server_tmp, argv, words):
    """Refused in one line before a model loads."""
    code = main(["web", "--config", str(DEMO_CONFIG), *argv])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and all(w in lines[0] for w in words), lines
