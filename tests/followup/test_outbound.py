"""The outbound webhook's URL: refused at save time when it points inside, refused again at send time
when its name changes its answer, and a receiver's reply never shown to the host."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from server import netguard
from server.netguard import IPAddress
from server.storage.followup import Message
from tests.followup.channels.conftest import Remote, Reply
from tests.followup.flow import Stage, eventually, stage

INSIDE = [
    "http://127.0.0.1:9/hook",
    "http://[::1]/hook",
    "http://localhost:8080/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://0x7f.1/hook",
    "http://10.0.0.8/hook",
    "http://[::ffff:127.0.0.1]/hook",
]


@pytest.mark.parametrize("url", INSIDE)
async def test_webhook_url_inside_is_refused_on_save(tmp_path: Path, url: str) -> None:
    """Loopback, metadata, private and local-name webhook URLs get 422 url_not_allowed."""
    async with stage(tmp_path, outbound_allow=()) as s, s.host_http() as http:
        r = await http.put(f"/api/rooms/{s.room_id}/followup/settings", json={"webhook_url": url})
        assert (r.status_code, r.json()["error"]["code"]) == (422, "url_not_allowed"), r.text
        assert (await http.get(f"/api/rooms/{s.room_id}/followup")).json()["settings"]["webhook_url"] is None


async def _campaign(s: Stage, http: httpx.AsyncClient) -> list[Message]:
    phone = await s.phone("p0")
    body = {"name": "Thanks", "segment": "attended", "channel": "webhook", "template": "post-stream"}
    r = await http.post(f"/api/rooms/{s.room_id}/followup/campaigns", json=body)
    assert r.status_code == 200, r.text
    await phone.aclose()

    async def finished() -> list[Message] | None:
        async with s.services.db.session() as session:
            rows = (await session.exec(select(Message).where(Message.channel == "webhook"))).all()
        done = [m for m in rows if m.status in ("failed", "dead", "sent")]
        return list(done) if done and len(done) == len(rows) else None

    return await eventually(finished)


async def test_a_name_that_turns_local_is_refused_when_sending(
    tmp_path: Path, remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Public when saved, loopback when sending (DNS rebinding): the message fails, nothing is sent."""
    lookups: list[str] = []

    async def resolve(host: str, port: int, *, within_secs: float = 0) -> list[IPAddress]:
        if host != "hooks.test":
            raise OSError("no such name")
        lookups.append(host)
        return [ipaddress.ip_address("93.184.215.14" if len(lookups) == 1 else "127.0.0.1")]

    monkeypatch.setattr(netguard, "resolve", resolve)
    url = f"http://hooks.test:{httpx.URL(remote.base).port}/hook"
    async with stage(tmp_path, outbound_allow=()) as s, s.host_http() as http:
        r = await http.put(f"/api/rooms/{s.room_id}/followup/settings", json={"webhook_url": url})
        assert r.status_code == 200, r.text
        [message] = await _campaign(s, http)
    assert message.status == "failed" and message.attempts == 1
    assert "hooks.test resolves to a loopback address" in (message.reason or "")
    assert remote.received == [] and len(lookups) == 2


async def test_the_delivery_log_shows_no_reply_body(tmp_path: Path, remote: Remote) -> None:
    """A receiver's error reply is recorded as its status and phrase only: the host never reads it."""
    hook = remote.script("/hook", Reply(403, b"db-admin password: hunter2 " + b"x" * 300))
    async with stage(tmp_path) as s, s.host_http() as http:  # the operator allowed loopback
        await s.settings(webhook_url=hook)
        [message] = await _campaign(s, http)
        log = (await http.get(f"/api/rooms/{s.room_id}/followup/messages")).text
    assert message.reason == "webhook: HTTP 403 Forbidden"
    assert "hunter2" not in log
