"""Helpers for follow-up flow tests: a server with compressed time, a room with a product, phones
with cookies, signed shop events, and waiting for conditions in the database."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlmodel import select
from standardwebhooks.webhooks import Webhook

from server.intents.webhook import shop_secret
from server.storage.followup import Message
from tests.conftest import make_settings
from tests.followup.channels.conftest import LOOPBACK_ALLOWED
from tests.helpers import Client, Running, create_room, serve

T = TypeVar("T")
# Email and SMS configured at addresses where nothing listens: the opt-in box takes both (a server
# offers and accepts only the channels it can send on); a send there fails and is retried.
UNREACHABLE = {"smtp_url": "smtp://127.0.0.1:9?tls=none", "sms_url": "http://127.0.0.1:9/sms"}
# 30 minutes of journey wait become ~0.9 s; retry backoff (30 s and up) becomes tens of ms.
TIME_SCALE = 0.0005
PRODUCT = {
    "name": "Jasmine tea 茉莉花茶",
    "price_minor": 6800,
    "currency": "CNY",
    "stock": 100,
    "sku": "TEA-1",
    "shop_url": "https://shop.example/tea",
}


@dataclass
class Stage:
    running: Running
    room: dict[str, str]
    host: Client
    product: dict[str, Any]

    @property
    def services(self) -> Any:
        return self.running.app.state.services

    @property
    def room_id(self) -> str:
        return self.room["id"]

    def host_http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.running.base, headers={"authorization": f"Bearer {self.room['host_token']}"}
        )

    async def settings(self, **values: Any) -> None:
        async with self.host_http() as http:
            r = await http.put(f"/api/rooms/{self.room_id}/followup/settings", json=values)
            assert r.status_code == 200, r.text

    async def phone(self, name: str = "viewer") -> httpx.AsyncClient:
        """A phone's HTTP client holding its viewer cookie (joined the room)."""
        http = httpx.AsyncClient(base_url=self.running.base)
        r = await http.post(f"/api/rooms/{self.room_id}/join", json={"name": name})
        r.raise_for_status()
        return http

    async def opt_in(self, client: httpx.AsyncClient, **details: Any) -> dict[str, Any]:
        body = {"lang": "en", "wording": "Send me reminders by email.", "tz": "Asia/Shanghai", **details}
        r = await client.post(f"/api/rooms/{self.room_id}/contact", json=body)
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
        return data

    async def shop(self, kind: str, data: dict[str, Any]) -> httpx.Response:
        body = json.dumps({"type": kind, "data": data})
        msg_id = f"msg_{uuid.uuid4().hex}"
        when = datetime.now(tz=UTC)
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": Webhook(shop_secret(self.services, self.room_id)).sign(msg_id, when, body),
            "content-type": "application/json",
        }
        async with httpx.AsyncClient(base_url=self.running.base) as http:
            return await http.post(f"/api/rooms/{self.room_id}/shop/events", content=body, headers=headers)

    async def messages(self, **where: Any) -> list[Message]:
        async with self.services.db.session() as session:
            query = select(Message)
            for key, value in where.items():
                query = query.where(getattr(Message, key) == value)
            return list((await session.exec(query.order_by(Message.id))).all())


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout: float = 10) -> T:
    """Await until ``probe`` returns something truthy (the follow-up loop runs on its own clock)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if loop.time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def stage(tmp: Path, **settings: Any) -> AsyncIterator[Stage]:
    """A server with compressed follow-up time, a room with a product, quiet hours off."""
    values = {
        "followup_time_scale": TIME_SCALE,
        "followup_tick_secs": 0.05,
        "outbound_allow": LOOPBACK_ALLOWED,  # the tests' webhook and SMS receivers
        **settings,
    }
    async with serve(make_settings(tmp, **values)) as running:
        room = await create_room(running)
        host = await Client.connect(
            running.ws, "host", room["id"], {"token": room["host_token"], "name": "Ann"}
        )
        ack = await host.request("product.save", PRODUCT)
        assert ack["type"] == "ack", ack
        s = Stage(running, room, host, ack["data"]["result"])
        await s.settings(quiet_start="00:00", quiet_end="00:00")
        try:
            yield s
        finally:
            await host.close()


LINK = re.compile(r"https?://\S+")


def links_in(text: str) -> list[str]:
    return LINK.findall(text)
