"""Templates render in a sandbox worker process, under its limits: preview, save and send. A hostile
template gets a prompt, clear 422 and never stalls the event loop; one failing at send time fails its
message, once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from server.errors import InvalidInput
from server.followup import templates
from server.sandbox import Limits, Sandbox
from server.storage.followup import Message
from tests.conftest import make_settings
from tests.followup.flow import eventually, stage
from tests.followup.test_render import HOSTILE
from tests.helpers import create_room, serve

# Passes every rule (single loop, sizes within bounds) and runs for seconds: only the deadline stops it.
BURNER = "{% for i in range(1000) %}{% set b = ('y' * 50000)|list|unique|list %}{% endfor %}done"
# Doubles a text in {% set %} blocks (not an operator the rules see): only the memory cap stops it.
DOUBLER = "{% set a = 'x' * 1000 %}" + "{% set a %}{{ a }}{{ a }}{% endset %}" * 40 + "{{ a|length }}"


async def test_render_isolated_names_the_limit_passed() -> None:
    """Past the deadline or the memory cap, a template is bad_template naming that limit."""
    box = Sandbox(
        Limits(deadline_secs=0.5, memory_mb=128, output_chars=50_000), preload=("server.followup.render",)
    )
    try:
        ok = await templates.render_isolated(box, "Hi", "Hi {{ contact.name }}", templates.SAMPLE)
        assert ok == templates.Rendered("Hi", "Hi Li Wei")
        with pytest.raises(
            InvalidInput, match=r"over the time limit: rendering took longer than 0\.5 s"
        ) as slow:
            await templates.render_isolated(box, None, BURNER, templates.SAMPLE)
        assert slow.value.code == "bad_template"
        with pytest.raises(InvalidInput, match="over the memory limit: rendering needed more than 128 MB"):
            await templates.render_isolated(box, None, DOUBLER, templates.SAMPLE)
    finally:
        await box.close()


async def test_every_audit_payload_gets_a_prompt_422_from_preview(tmp_path: Path) -> None:
    """POST .../followup/preview answers each hostile template with 422 bad_template within a second."""
    async with serve(make_settings(tmp_path)) as running:
        room = await create_room(running)
        headers = {"authorization": f"Bearer {room['host_token']}"}
        async with httpx.AsyncClient(base_url=running.base, headers=headers) as http:
            url = f"/api/rooms/{room['id']}/followup/preview"
            await http.post(url, json={"body": "warm {{ coupon }}"})  # the worker starts (once)
            for body, message in HOSTILE.values():
                t = time.monotonic()
                r = await http.post(url, json={"body": body})
                assert r.status_code == 422 and r.json()["error"]["code"] == "bad_template", r.text
                assert message in r.json()["error"]["message"]
                assert time.monotonic() - t < 1.0, body


async def test_a_hostile_preview_does_not_stall_other_clients(tmp_path: Path) -> None:
    """While a template burns CPU in its worker, another client's request is answered at once; the
    preview then gets 422 naming the time limit (2 s)."""
    async with serve(make_settings(tmp_path)) as running:
        room = await create_room(running)
        dispatched = asyncio.Event()
        running.app.state.services.sandbox.on_dispatch = lambda _name: dispatched.set()
        headers = {"authorization": f"Bearer {room['host_token']}"}
        async with (
            httpx.AsyncClient(base_url=running.base, headers=headers) as host,
            httpx.AsyncClient(base_url=running.base) as other,
        ):
            url = f"/api/rooms/{room['id']}/followup/preview"
            preview = asyncio.ensure_future(host.post(url, json={"body": BURNER}))
            await dispatched.wait()
            t = time.monotonic()
            assert (await other.get("/healthz")).text == "ok"
            assert time.monotonic() - t < 1.0
            assert not preview.done()  # answered while the hostile job was still running
            r = await preview
        assert r.status_code == 422 and r.json()["error"]["code"] == "bad_template"
        assert "over the time limit: rendering took longer than 2 s" in r.json()["error"]["message"]


async def test_saving_renders_once_under_the_limits(tmp_path: Path) -> None:
    """A template past a limit with the sample data is refused when saved, naming the limit."""
    async with stage(tmp_path, sandbox_deadline_secs=0.5) as s, s.host_http() as http:
        url = f"/api/rooms/{s.room_id}/followup/templates"
        slow = {"key": "slow", "locale": "en", "body": BURNER}
        r = await http.post(url, json=slow)
        assert r.status_code == 422 and r.json()["error"]["code"] == "bad_template"
        assert "over the time limit" in r.json()["error"]["message"]
        macro = {"key": "m", "locale": "en", "body": HOSTILE["loops in macros"][0]}
        assert "no macros" in (await http.post(url, json=macro)).json()["error"]["message"]
        fine = {"key": "fine", "locale": "en", "body": "Hi {{ contact.name }}"}
        assert (await http.post(url, json=fine)).status_code == 200


async def test_a_template_past_a_limit_at_send_time_fails_its_message_once(tmp_path: Path) -> None:
    """Fine with the sample data, over the deadline with the real room's: the message fails with the
    limit as its reason, after one attempt."""
    body = "{% if room.title != 'Spring tea tasting' %}" + BURNER + "{% endif %}"
    async with stage(tmp_path, sandbox_deadline_secs=0.5) as s, s.host_http() as http:
        phone = await s.phone()
        tpl = {"key": "late", "locale": "zh-CN", "body": body}
        assert (await http.post(f"/api/rooms/{s.room_id}/followup/templates", json=tpl)).status_code == 200
        campaign = {"name": "Late", "segment": "attended", "channel": "inapp", "template": "late"}
        assert (
            await http.post(f"/api/rooms/{s.room_id}/followup/campaigns", json=campaign)
        ).status_code == 200

        async def failed() -> Message | None:
            found = [m for m in await s.messages(template="late") if m.status == "failed"]
            return found[0] if found else None

        message = await eventually(failed)
        assert message.attempts == 1 and "over the time limit" in (message.reason or "")
        await phone.aclose()
