"""The shipped Zenoh configs for a tracker reachable from other machines (configs/zenoh/, SECURITY.md):
TLS, a login and an ACL, run as they are (only their paths, the tracker's name and the port replaced)
with a real tracker and real Zenoh sessions on this machine's loopback."""

from __future__ import annotations

import functools
import json
import socket
import threading
from pathlib import Path

import pytest

from rtseg.errors import RtsegError
from rtseg.runner import run

import conftest
from conftest import ROOT, SHOWCASE

zenoh = pytest.importorskip("zenoh", reason="pip install -e '.[robot]'")
trustme = pytest.importorskip("trustme", reason="pip install -e '.[test]'")
from rtseg.output.publish import Publisher, open_zenoh, prompt_publisher  # noqa: E402

DEADLINE = 120.0  # seconds: only bounds a hang; no test decides on the clock
KEY = "robot1/rtseg"  # the key the shipped ACL names
wait_until = functools.partial(conftest.wait_until, timeout=DEADLINE, poll=0.01)
USERS = {"operator": "op-secret-1", "viewer": "view-secret-2"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def configs(tmp_path_factory) -> dict[str, Path]:
    """The shipped tracker config and client configs (one per login, one without the CA, one in
    clear TCP), pointing at a CA, certificate and users file made here."""
    where = tmp_path_factory.mktemp("zenoh-tls")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ca.cert_pem.write_to_path(str(where / "ca.pem"))
    cert.private_key_pem.write_to_path(str(where / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(where / "cert.pem"))
    (where / "users.txt").write_text("".join(f"{u}:{p}\n" for u, p in USERS.items()))
    port = free_port()

    def write(name: str, shipped: str, **replace: str) -> Path:
        text = (ROOT / "configs" / "zenoh" / shipped).read_text()
        for old, new in replace.items():  # each change a test makes: first, and to what is shipped
            assert old in text, f"{shipped} has no {old!r}"
            text = text.replace(old, new)
        for old, new in {"/etc/rtseg/zenoh": str(where), "robot.local:7447": f"localhost:{port}",
                         "0.0.0.0:7447": f"127.0.0.1:{port}"}.items():
            text = text.replace(old, new)
        (where / name).write_text(text)
        return where / name

    login = 'user: "operator", password: "CHANGE-ME"'
    paths = {"tracker": write("tracker.json5", "tracker.json5")}
    for user, password in USERS.items():
        paths[user] = write(f"{user}.json5", "client.json5", **{login: f'user: "{user}", password: "{password}"'})
    paths["wrong-password"] = write("wrong.json5", "client.json5", **{'"CHANGE-ME"': '"op-secret-2"'})
    paths["stranger"] = write("stranger.json5", "client.json5", **{login: 'user: "stranger", password: "x"'})
    paths["no-login"] = write("no-login.json5", "client.json5", **{f"auth: {{ usrpwd: {{ {login} }} }},": ""})
    paths["no-ca"] = write("no-ca.json5", "client.json5", **{'root_ca_certificate: "/etc/rtseg/zenoh/ca.pem", ': ""})
    paths["clear-tcp"] = write("tcp.json5", "client.json5", **{"tls/robot.local": "tcp/robot.local"})
    return paths


class Client:
    """A client session: what arrives on KEY/objects and KEY/events, and a publisher on KEY/prompts."""

    def __init__(self, config: Path) -> None:
        self.session = open_zenoh(config)
        self.got: dict[str, list] = {"objects": [], "events": []}
        self.came = threading.Condition()
        self.subs = [self.session.declare_subscriber(f"{KEY}/{t}", self._handler(t)) for t in self.got]
        self.prompts = prompt_publisher(self.session, KEY)

    def _handler(self, topic: str):
        def handle(sample) -> None:
            with self.came:
                self.got[topic].append(json.loads(sample.payload.to_bytes()))
                self.came.notify_all()
        return handle

    def wait_for(self, what: str, predicate) -> None:
        with self.came:
            assert self.came.wait_for(lambda: predicate(self.got), DEADLINE), f"still waiting for {what}"

    def close(self) -> None:
        self.session.close()


def test_the_shipped_tls_login_and_acl(configs, make_session):
    """Over TLS with a login: an operator's prompt is taken and answered; a viewer sees every frame but
    can neither prompt nor publish under the tracker's keys; a wrong password, an unknown user, no
    login, no CA or clear TCP cannot connect at all."""
    from rtseg.capture.replay import Replay
    from rtseg.capture.sources import open_source

    with open_source(str(SHOWCASE / "video.mp4")) as src:
        image = next(iter(src)).image

    stop, errors = threading.Event(), []

    class UntilStopped(Replay):
        def __iter__(self):
            for frame in super().__iter__():
                if stop.is_set():
                    return
                yield frame

    tracker = Publisher(KEY, make_session(), configs["tracker"], overlay_hz=0)
    tracker.discovery = 0.0

    def track() -> None:
        try:
            run(UntilStopped([image], 30.0, 10**9), tracker.session, [tracker])
        except BaseException as exc:  # the test fails on it
            errors.append(exc)

    thread = threading.Thread(target=track, daemon=True)
    thread.start()
    clients = []
    try:
        wait_until(lambda: getattr(tracker, "sub", None) is not None or errors, "the tracker's session")
        for refused in ("wrong-password", "stranger", "no-login", "no-ca", "clear-tcp"):
            with pytest.raises(RtsegError, match="cannot open a Zenoh session with config .*Unable to connect"):
                clients.append(Client(configs[refused]))
        operator, viewer = Client(configs["operator"]), Client(configs["viewer"])
        clients += [operator, viewer]
        for c in (operator, viewer):
            c.wait_for("frames", lambda got: len(got["objects"]) >= 3)
        forger = open_zenoh(configs["viewer"])  # a viewer with no subscriber of its own on KEY/objects
        clients.append(forger)
        forge = forger.declare_publisher(f"{KEY}/objects")
        wait_until(lambda: operator.prompts.matching_status.matching, "the operator to see the prompt subscriber")

        viewer.prompts.put(json.dumps({"point": [563, 300], "request_id": "viewer"}).encode())
        forge.put(json.dumps({"index": -1, "detections": []}).encode())
        operator.prompts.put(json.dumps({"point": [563, 300], "request_id": "operator"}).encode())
        operator.wait_for("the operator's answer", lambda got: any(e.get("request_id") == "operator"
                                                                   for e in got["events"]))
        added = next(e for e in operator.got["events"] if e.get("request_id") == "operator")
        assert added["event"] == "added", added
        for c in (operator, viewer):  # both see the object the operator added, followed
            c.wait_for("the new object", lambda got: any(d["track_id"] == added["id"]
                                                         for m in got["objects"] for d in m["detections"]))
        viewer.wait_for("the viewer's copy of the answer", lambda got: len(got["events"]) >= 1)
        stop.set()
        thread.join(DEADLINE)
        assert not thread.is_alive() and not errors, errors
        events = operator.got["events"] + viewer.got["events"]
        assert [e["request_id"] for e in events] == ["operator", "operator"], events  # none for the viewer
        assert not viewer.prompts.matching_status.matching and not forge.matching_status.matching
        assert all(m["index"] >= 0 for c in (operator, viewer) for m in c.got["objects"])  # nothing forged
    finally:
        stop.set()
        thread.join(DEADLINE)
        for c in clients:
            c.close()
