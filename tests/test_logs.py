"""Logs never carry secrets, at any level: a host's session at debug level leaves no cookie, token
or key in them, in plain text or JSON."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from server.logs import REDACTED, configure, redact
from tests.conftest import make_settings
from tests.helpers import create_room, serve


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.mark.parametrize("as_json", [False, True])
async def test_debug_logs_of_a_host_session_hold_no_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_logging: None, as_json: bool
) -> None:
    """Login, console page, API call with a bearer token and a WebSocket with the cookie and hello
    token, all logged at debug level: none of the secrets appears."""
    configure("debug", json=as_json)
    async with serve(make_settings(tmp_path, log_json=as_json)) as running:
        room = await create_room(running)
        rid, token = room["id"], room["host_token"]
        async with httpx.AsyncClient(base_url=running.base) as http:
            r = await http.post(f"/host/{rid}/login", data={"key": room["host_key"]})
            cookie = r.cookies[f"lw_host_{rid}"]
            await http.get(f"/host/{rid}")
            await http.get(f"/api/rooms/{rid}", headers={"authorization": f"Bearer {token}"})
            await http.get(f"/screen/{rid}", params={"k": room["screen_key"]})
        headers = {"cookie": f"lw_host_{rid}={cookie}"}
        async with websockets.connect(f"{running.ws}/ws/host/{rid}", additional_headers=headers) as ws:
            await ws.send(json.dumps({"type": "hello", "data": {"token": token}}))
            assert json.loads(await ws.recv())["type"] == "welcome"
    logged = capsys.readouterr().err
    for name, secret in [("cookie", cookie), ("token", token), ("host key", room["host_key"])]:
        assert secret not in logged, f"the {name} is in the debug log"
    assert room["screen_key"] not in logged
    # The first characters of a token are not left behind either (frames are logged cut short).
    assert token[:24] not in logged and cookie[:24] not in logged
    assert "cookie" in logged.lower() and REDACTED in logged  # the debug logs did speak of them


def test_exception_text_and_extras_are_redacted(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    """A traceback's message and an extra field are redacted like the message."""
    configure("info", json=True)
    try:
        raise RuntimeError("could not reach postgresql://app:hunter2@db/prod")
    except RuntimeError:
        logging.getLogger("livewall.test").exception("failed", extra={"url": "https://x/?token=abc123"})
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert "hunter2" not in line["exc_info"] and "abc123" not in line["url"]
    assert line["message"] == "failed"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("< cookie: lw_host_r1=eyJyIjoiciJ9.Zz.sig; lang=en", "eyJyIjoiciJ9"),
        ("> Authorization: Bearer s3cr3t-t0k3n-value", "s3cr3t"),
        ("[(b'set-cookie', b'lw_viewer=abc.def.ghi; Path=/')]", "abc.def"),
        ('{"type":"hello","data":{"token":"eyJyIjoiciJ9.Zz', "eyJyIjoiciJ9"),
        ('{"type":"hello","data":{"key":"screen-key-123"}}', "screen-key-123"),
        ("GET /screen/r1?k=screenkey&x=1", "screenkey"),
        ("smtp://relay:p4ssw0rd@mail.example:587", "p4ssw0rd"),
        ("signing with whsec_MDEyMzQ1Njc4OWFiY2RlZg==", "MDEyMzQ1"),
        ("{'x-api-key': 'k-123456'}", "k-123456"),
    ],
)
def test_redact(text: str, secret: str) -> None:
    """Each form a secret takes in a log line is redacted."""
    assert secret not in redact(text)


def test_redact_leaves_ordinary_text() -> None:
    """Text without secrets passes unchanged."""
    text = "message 12 sent (webhook: HTTP 400 Bad Request); room r1 has 3 viewers"
    assert redact(text) == text
