"""What ``rtseg web`` serves, to whom, and how much it keeps of what it is sent: an ASGI middleware
(:class:`Guard`) in front of the Gradio app, and the policies it applies.

- **Who**: every request (HTTP and websocket) must name an allowed host in ``Host`` (a loopback
  name, the ``--host`` served on, or an ``--allowed-host``), so that a page elsewhere cannot reach
  the server through DNS rebinding; a request with an ``Origin`` (browsers send one with POSTs,
  fetches and websockets) must come from an allowed host too, and a state-changing one must not be
  ``Sec-Fetch-Site: cross-site``.
- **What**: the file routes (``/gradio_api/file=PATH``, ``/gradio_api/file/PATH``) serve only what
  :class:`~rtseg.web.uploads.FilePolicy` allows: the page's own outputs and the sessions' results, never an upload; and
  always as a download of a passive type (:data:`PASSIVE_TYPES` by suffix, else
  ``application/octet-stream``) with ``nosniff`` and a sandboxing CSP, so that no file can run a
  script under the app's origin. Routes the page does not use that echo an upload back are refused.
- **How much**: an upload (``/gradio_api/upload``) must declare its length, and is refused with 413
  when it would take :class:`~rtseg.web.uploads.UploadSpace` over its quota, once uploads older than its age limit are
  deleted. A session holds the upload it took with a hard link of its own (:meth:`~rtseg.web.uploads.UploadSpace.hold`),
  so deleting old uploads never takes a file from a live session; the link goes with the session.

Nothing here imports gradio: the app gives the policies what Gradio recorded (as callables).

>>> hosts = HostPolicy(["0.0.0.0", "rtseg.lan"])
>>> [hosts.allows(h) for h in ("localhost:7860", "127.0.0.1", "[::1]:80", "RTSEG.lan:7860", "evil.example")]
[True, True, True, True, False]
>>> passive_type("overlay.webm"), passive_type("page.html"), passive_type("a.svg")
('video/webm', 'application/octet-stream', 'application/octet-stream')
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import sys
from typing import Any, Awaitable, Callable, Iterable
from urllib.parse import quote, urlsplit

from rtseg.errors import RtsegError
from rtseg.web.uploads import FilePolicy, UploadSpace

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The types a file route may answer with, by the suffix of what the app writes; anything else is a
# download of bytes. None of these runs a script.
PASSIVE_TYPES = {".webm": "video/webm", ".mp4": "video/mp4", ".png": "image/png", ".jpg": "image/jpeg",
                 ".jpeg": "image/jpeg", ".webp": "image/webp", ".zip": "application/zip",
                 ".jsonl": "application/x-ndjson"}
FILE_HEADERS = {"x-content-type-options": "nosniff", "content-security-policy": "sandbox; default-src 'none'",
                "cross-origin-resource-policy": "same-origin"}
FILE_ROUTE = re.compile(r"/gradio_api/file[=/](.*)", re.DOTALL)
UPLOAD_ROUTE = "/gradio_api/upload"
# Gradio's routes that rtseg's page never calls and that send an upload (or another host's file) back.
REFUSED_ROUTES = re.compile(r"/gradio_api/(process_recording|proxy=)")
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


def passive_type(name: str) -> str:
    """The content type a file route answers ``name`` with."""
    return PASSIVE_TYPES.get(os.path.splitext(name)[1].lower(), "application/octet-stream")


def attachment(name: str) -> str:
    """A ``Content-Disposition`` that makes ``name`` a download."""
    quoted = quote(name)
    return f'attachment; filename="{name}"' if quoted == name else f"attachment; filename*=utf-8''{quoted}"


# -- who: hosts and origins ------------------------------------------------------------------------

def host_name(value: str) -> str | None:
    """The name in a ``Host`` header (``name``, ``name:port``, ``[v6]:port``), lower case, or None
    when it is malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        name, rest = value[1:end], value[end + 1:]
        if end < 0 or (rest and not re.fullmatch(r":\d+", rest)):
            return None
    else:
        name, sep, port = value.rpartition(":")
        if not sep:
            name = value
        elif ":" in name or not port.isdigit():
            return None
    return name.rstrip(".") or None


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a bare name or address) only serves this machine (127.x, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def checked_host(name: str, flag: str = "--allowed-host") -> str:
    """An ``--allowed-host`` (or ``--host``) value as a host name to compare, lower case without
    brackets; raises RtsegError for one that is not a host name or an IP address."""
    plain = name.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")
    try:
        return str(ipaddress.ip_address(plain))
    except ValueError:
        if HOST_NAME.fullmatch(plain) and len(plain) <= 253:
            return plain
    raise RtsegError(f"{flag} {name!r}: expected a host name or an IP address, without a port")


class HostPolicy:
    """The host names the server answers to: loopback names (``localhost``, 127.x, ``::1``) and
    ``names`` (the ``--host`` served on and the ``--allowed-host`` values)."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.names = {checked_host(n) for n in names}

    def allows(self, host: str | None) -> bool:
        """Whether ``host`` (a ``Host`` header, or a bare name) is one of this server's names."""
        name = host_name(host) if host else None
        if name is None:
            return False
        if is_loopback(name) or name in self.names:
            return True
        try:
            return str(ipaddress.ip_address(name)) in self.names
        except ValueError:
            return False

    def allows_origin(self, origin: str) -> bool:
        """Whether a request with this ``Origin`` header comes from a page of an allowed host."""
        try:
            parts = urlsplit(origin.strip())
            name = parts.hostname
        except ValueError:
            return False
        return parts.scheme in ("http", "https") and bool(name) and self.allows(
            f"[{name}]" if name and ":" in name else name)


# -- the middleware --------------------------------------------------------------------------------

async def answer(scope: Scope, send: Send, status: int, text: str) -> None:
    """A short plain-text refusal (a websocket is closed before it opens: the client gets 403)."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": text[:120]})
        return
    body = f"{text}\n".encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), (b"x-content-type-options", b"nosniff")]})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """ASGI middleware: the host and origin checks on every request, the file routes' policy and
    headers, and the upload quota (see the module's docstring). ``max_body``: the largest upload
    (an upload refused for the quota is read and dropped up to this size, so that a browser that is
    still sending sees the refusal)."""

    def __init__(self, app: ASGIApp, hosts: HostPolicy, files: FilePolicy | None = None,
                 space: UploadSpace | None = None, max_body: int = 0) -> None:
        self.app, self.hosts, self.files, self.space, self.max_body = app, hosts, files, space, max_body
        self.reserved = 0  # bytes of the uploads under way
        self.lock = asyncio.Lock()
        self.told: set[str] = set()

    def log_host(self, host: str) -> None:
        if host not in self.told and len(self.told) < 64:  # once per name, for the server's user
            self.told.add(host)
            print(f"rtseg web: refused a request for host {host!r} (allow it with --allowed-host NAME)",
                  file=sys.stderr)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host, origin = headers.get("host", ""), headers.get("origin")
        method, path = scope.get("method", "GET"), scope.get("path", "")
        if not self.hosts.allows(host):
            self.log_host(host[:100])
            await answer(scope, send, 400, f"rtseg web: this server does not answer to host {host[:100]!r}")
            return
        if origin is not None and not self.hosts.allows_origin(origin):
            await answer(scope, send, 403, f"rtseg web: requests from {origin[:100]!r} are refused (another site)")
            return
        if method not in SAFE_METHODS and headers.get("sec-fetch-site") == "cross-site":
            await answer(scope, send, 403, "rtseg web: requests from another site are refused")
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        if REFUSED_ROUTES.match(path):
            await answer(scope, send, 403, "rtseg web: not served")
            return
        route = FILE_ROUTE.fullmatch(path)
        if route is not None and self.files is not None:
            await self.serve_file(route.group(1), scope, receive, send)
        elif path.rstrip("/") == UPLOAD_ROUTE and method == "POST" and self.space is not None:
            await self.upload(headers.get("content-length"), scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def serve_file(self, raw: str, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.files is not None
        if not self.files.allows(raw):
            await answer(scope, send, 403, "rtseg web: file not served")
            return
        name = os.path.basename(raw)

        async def send_as_download(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                fixed = {**FILE_HEADERS, "content-disposition": attachment(name), "content-type": passive_type(name)}
                kept = [(k, v) for k, v in message.get("headers", []) if k.decode("latin-1").lower() not in fixed]
                message = {**message, "headers": kept + [(k.encode(), v.encode()) for k, v in fixed.items()]}
            await send(message)

        await self.app(scope, receive, send_as_download)

    async def upload(self, length: str | None, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.space is not None
        if length is None or not length.strip().isdigit():
            await answer(scope, send, 411, "rtseg web: an upload must say its length (Content-Length)")
            return
        size = int(length)
        async with self.lock:
            await asyncio.to_thread(self.space.prune)
            used = await asyncio.to_thread(self.space.usage)
            full = used + self.reserved + size > self.space.quota
            if not full:
                self.reserved += size
        if full:
            if size <= self.max_body + 2**20:
                await drain(receive)
            taken, quota, needs = (used + self.reserved) / 2**20, self.space.quota / 2**20, size / 2**20
            await answer(scope, send, 413, f"The server's upload space is full: {taken:.0f} of {quota:.0f} MB taken, "
                                           f"this upload needs {needs:.1f} MB (--upload-quota-mb); try again later")
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.reserved -= size


async def drain(receive: Receive) -> None:
    """Read a request's body to its end, keeping nothing."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return
